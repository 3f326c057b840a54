use lockutils::synchronized;

trait Store {
    #[synchronized("store")]
    fn put(&self);
}

fn main() {}
