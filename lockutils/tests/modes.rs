//! `mode = read` / `mode = write`: readers share the lock, writers exclude
//! readers and each other, in-process and with external locks.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use common::{on_threads, rendezvous, Section, HOLD};
use lockutils::synchronized;

static READERS: AtomicUsize = AtomicUsize::new(0);

#[synchronized("modes-catalog", mode = read)]
fn read_together() -> bool {
    READERS.fetch_add(1, SeqCst);
    rendezvous(&READERS, 2)
}

#[test]
fn two_readers_are_inside_together() {
    on_threads(2, |_| {
        assert!(read_together(), "the other reader never came in")
    });
}

static INSIDE: Section = Section::new();
static WRITERS_INSIDE: AtomicUsize = AtomicUsize::new(0);
static READERS_SEEN_BY_WRITER: AtomicUsize = AtomicUsize::new(0);
static MAX_READERS: AtomicUsize = AtomicUsize::new(0);

#[synchronized("modes-data", mode = read)]
fn reader() {
    assert_eq!(
        WRITERS_INSIDE.load(SeqCst),
        0,
        "a reader came in beside a writer"
    );
    INSIDE.enter();
    MAX_READERS.fetch_max(INSIDE.inside(), SeqCst);
    std::thread::sleep(HOLD);
    INSIDE.leave();
}

#[synchronized("modes-data", mode = write)]
fn writer() {
    let writers = WRITERS_INSIDE.fetch_add(1, SeqCst) + 1;
    assert_eq!(writers, 1, "two writers inside");
    READERS_SEEN_BY_WRITER.fetch_max(INSIDE.inside(), SeqCst);
    std::thread::sleep(HOLD);
    WRITERS_INSIDE.fetch_sub(1, SeqCst);
}

#[test]
fn writers_exclude_readers_and_each_other() {
    on_threads(6, |i| {
        for _ in 0..5 {
            if i % 3 == 0 {
                writer();
            } else {
                reader();
            }
        }
    });
    assert_eq!(READERS_SEEN_BY_WRITER.load(SeqCst), 0);
    assert!(MAX_READERS.load(SeqCst) >= 1);
}

static EXT_READERS: AtomicUsize = AtomicUsize::new(0);

#[synchronized("modes-ext", external, mode = read, lock_path = env!("CARGO_TARGET_TMPDIR"))]
fn external_reader() -> bool {
    EXT_READERS.fetch_add(1, SeqCst);
    rendezvous(&EXT_READERS, 2)
}

#[synchronized("modes-ext", external, mode = write, lock_path = env!("CARGO_TARGET_TMPDIR"))]
fn external_writer() -> Vec<lockutils::HeldLock> {
    lockutils::held_locks()
}

#[test]
fn external_readers_share_and_writers_take_the_file_exclusively() {
    on_threads(2, |_| assert!(external_reader()));
    let held = external_writer();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].mode, lockutils::Mode::Exclusive);
    assert_eq!(
        held[0].path.as_deref(),
        Some(
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join("modes-ext")
                .as_path()
        )
    );
}
