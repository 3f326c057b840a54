//! The crate's runtime thread, seen from outside: shared by the tests and
//! the bench (included with `#[path]`).

/// Voluntary context switches of the crate's runtime thread so far: how
/// often it woke up. Panics if the thread is not running (yet), rather
/// than count nothing.
pub fn runtime_thread_wakeups() -> u64 {
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() == "lockutils-pg" {
            let status = std::fs::read_to_string(dir.join("status")).unwrap();
            return status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap();
        }
    }
    panic!("no `lockutils-pg` runtime thread in this process")
}
