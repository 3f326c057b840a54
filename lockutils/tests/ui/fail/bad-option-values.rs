use lockutils::synchronized;

#[synchronized("a", external = "yes")]
fn flag_not_bool() {}

#[synchronized("b", mode = shared)]
fn unknown_mode() {}

#[synchronized("c", prefix = nova)]
fn prefix_not_a_string() {}

#[synchronized("d", timeout)]
fn timeout_without_value() {}

fn main() {
    flag_not_bool();
    unknown_mode();
    prefix_not_a_string();
    timeout_without_value();
}
