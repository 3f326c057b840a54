//! Log events: acquiring, waiting and releasing a lock each emit an event
//! naming the lock, with how long it waited or was held.
//!
//! A small recording `Subscriber` stands in for tracing-subscriber. It is
//! installed once, as the global default, and hands each event to a recorder
//! of the thread that emitted it, so parallel tests do not see each other's
//! events. (Per-thread `with_default` subscribers would make the global
//! max-level hint, which `tracing` and lockutils both consult first, flicker
//! while other tests install and drop theirs.)

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex, Once};
use std::thread;

use lockutils_core::{LockOptions, Registry};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One recorded event: level, target and fields (the message as `message`).
#[derive(Clone, Debug)]
struct Recorded {
    level: Level,
    target: String,
    fields: BTreeMap<String, String>,
}

impl Recorded {
    fn message(&self) -> &str {
        self.fields.get("message").map_or("", String::as_str)
    }

    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    fn secs(&self, name: &str) -> f64 {
        let raw = self
            .field(name)
            .unwrap_or_else(|| panic!("no field {name} in {self:?}"));
        raw.parse()
            .unwrap_or_else(|_| panic!("field {name} is not a number: {raw:?}"))
    }
}

type Sink = Arc<Mutex<Vec<Recorded>>>;

/// Where this thread's events go while `recording` runs; `notify` gets a
/// copy of each as it happens.
struct Active {
    events: Sink,
    notify: Option<mpsc::Sender<Recorded>>,
}

thread_local! {
    static ACTIVE: RefCell<Option<Active>> = const { RefCell::new(None) };
}

/// The global subscriber: passes each event to the emitting thread's `Active`.
struct Recorder {
    next_span: AtomicU64,
}

struct FieldVisitor<'a>(&'a mut BTreeMap<String, String>);

impl Visit for FieldVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, SeqCst) + 1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut FieldVisitor(&mut fields));
        let rec = Recorded {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields,
        };
        ACTIVE.with(|a| {
            if let Some(active) = &*a.borrow() {
                if let Some(tx) = &active.notify {
                    let _ = tx.send(rec.clone());
                }
                active.events.lock().unwrap().push(rec);
            }
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Runs `f` with a recorder installed on this thread; returns its result and
/// the lockutils events it recorded.
fn recording<T>(
    notify: Option<mpsc::Sender<Recorded>>,
    f: impl FnOnce() -> T,
) -> (T, Vec<Recorded>) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        tracing::subscriber::set_global_default(Recorder {
            next_span: AtomicU64::new(0),
        })
        .expect("no other global subscriber in this test binary")
    });
    let events: Sink = Arc::default();
    ACTIVE.with(|a| {
        *a.borrow_mut() = Some(Active {
            events: Arc::clone(&events),
            notify,
        })
    });
    let out = f();
    ACTIVE.with(|a| *a.borrow_mut() = None);
    let all = events.lock().unwrap().clone();
    (
        out,
        all.into_iter()
            .filter(|e| e.target == "lockutils")
            .collect(),
    )
}

fn find<'e>(events: &'e [Recorded], message: &str, lock: &str) -> &'e Recorded {
    events
        .iter()
        .find(|e| e.message() == message && e.field("lock") == Some(lock))
        .unwrap_or_else(|| panic!("no {message:?} event for {lock:?} in {events:#?}"))
}

#[test]
fn acquire_and_release_events_name_the_lock_and_time_it() {
    let reg = Registry::new();
    let ((), events) = recording(None, || {
        let g = LockOptions::new("tr-basic")
            .registry(&reg)
            .caller("tests::tr_basic")
            .lock()
            .unwrap();
        drop(g);
    });
    let acquired = find(&events, "lock acquired", "tr-basic");
    assert_eq!(acquired.level, Level::DEBUG);
    assert!(acquired.secs("waited_secs") >= 0.0);
    assert_eq!(acquired.field("mode"), Some("exclusive"));
    assert_eq!(acquired.field("caller"), Some("tests::tr_basic"));
    assert_eq!(
        acquired.field("path"),
        None,
        "in-process locks have no file"
    );
    let released = find(&events, "lock released", "tr-basic");
    assert!(released.secs("held_secs") >= 0.0);
    let pos = |m| events.iter().position(|e| e.message() == m).unwrap();
    assert!(pos("lock acquired") < pos("lock released"));
}

#[test]
fn external_and_shared_acquisitions_log_mode_and_path() {
    let dir = common::tempdir();
    let reg = Registry::new();
    let ((), events) = recording(None, || {
        drop(
            LockOptions::new("tr-file")
                .registry(&reg)
                .external(true)
                .lock_path(dir.path())
                .shared()
                .lock()
                .unwrap(),
        );
    });
    let acquired = find(&events, "lock acquired", "tr-file");
    assert_eq!(acquired.field("mode"), Some("shared"));
    let path = dir.path().join("tr-file");
    assert_eq!(acquired.field("path"), Some(&*path.to_string_lossy()));
    find(&events, "lock released", "tr-file");
}

#[test]
fn a_contended_acquisition_logs_that_it_waits() {
    let reg = Registry::new();
    let opts = LockOptions::new("tr-wait").registry(&reg);
    let (waiting_tx, waiting_rx) = mpsc::channel::<Recorded>();
    let (held_tx, held_rx) = mpsc::channel();
    let (waited, events) = thread::scope(|s| {
        s.spawn(move || {
            let g = opts.lock().unwrap();
            held_tx.send(()).unwrap();
            // Release once the other thread says it is waiting.
            while let Ok(e) = waiting_rx.recv_timeout(std::time::Duration::from_secs(10)) {
                if e.message().starts_with("acquiring lock") {
                    break;
                }
            }
            drop(g);
        });
        held_rx.recv().unwrap();
        recording(Some(waiting_tx), || {
            let g = opts.lock().unwrap();
            lockutils_core::LockGuard::waited(&g)
        })
    });
    let waiting = find(
        &events,
        "acquiring lock: waiting for another holder",
        "tr-wait",
    );
    assert_eq!(waiting.level, Level::DEBUG);
    let acquired = find(&events, "lock acquired", "tr-wait");
    assert!(acquired.secs("waited_secs") > 0.0);
    assert!((acquired.secs("waited_secs") - waited.as_secs_f64()).abs() < 1e-6);
    find(&events, "lock released", "tr-wait");
}

#[test]
fn async_acquisitions_log_too() {
    let reg = Registry::new();
    let ((), events) = recording(None, || {
        let g = common::block_on(LockOptions::new("tr-async").registry(&reg).lock_async()).unwrap();
        drop(g);
    });
    assert!(find(&events, "lock acquired", "tr-async").secs("waited_secs") >= 0.0);
    assert!(find(&events, "lock released", "tr-async").secs("held_secs") >= 0.0);
}

#[test]
fn creating_the_lock_directory_is_logged() {
    let dir = common::tempdir();
    let locks = dir.path().join("new-locks");
    let ((), events) = recording(None, || {
        drop(
            LockOptions::new("tr-mkdir")
                .registry(&Registry::new())
                .external(true)
                .lock_path(&locks)
                .lock()
                .unwrap(),
        );
    });
    let created = events
        .iter()
        .find(|e| e.message() == "created lock path")
        .unwrap_or_else(|| panic!("no directory creation event in {events:#?}"));
    assert_eq!(created.level, Level::INFO);
    assert_eq!(created.field("path"), Some(&*locks.to_string_lossy()));
}
