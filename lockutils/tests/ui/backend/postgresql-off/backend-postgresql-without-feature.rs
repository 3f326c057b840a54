use lockutils::synchronized;

#[synchronized("a", backend = "postgresql://locker@db1/app")]
fn on_postgresql() {}

#[synchronized("b", backend = "postgres://locker@db1/app")]
fn on_postgres() {}

fn main() {}
