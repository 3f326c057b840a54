// lockutils-core's lock-file internals are not part of the facade.
use lockutils::file::kept_descriptors;

fn main() {
    let _ = kept_descriptors();
    // `synchronized_with_prefix` names the attribute only; a prefix as a
    // value is `lockutils::Prefix::new("nova")`.
    let _ = lockutils::synchronized_with_prefix("nova");
}
