//! The `lockutils-pg-holder` example's path, for the tests and the bench
//! (each includes this file with `#[path]`).

/// The `lockutils-pg-holder` example, which `cargo test` builds beside the
/// test, and `cargo bench` (release) beside the bench
/// (target/{profile}/examples/).
pub fn holder_bin() -> std::path::PathBuf {
    // target/{profile}/deps/{test}-{hash} -> target/{profile}/examples/
    let exe = std::env::current_exe().unwrap();
    let holder = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/lockutils-pg-holder");
    assert!(
        holder.is_file(),
        "{} is missing: run `cargo build -p lockutils-postgres --example lockutils-pg-holder` \
         (add --release for the bench)",
        holder.display()
    );
    holder
}
