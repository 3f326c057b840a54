//! Names computed from the arguments: one lock per instance. Calls for two
//! instances run at the same time; calls for one instance take turns.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use common::{on_threads, rendezvous, Section, HOLD};
use lockutils::synchronized;

static TOGETHER: AtomicUsize = AtomicUsize::new(0);

/// Both callers must be inside at once, or `rendezvous` gives up.
#[synchronized("instance-{uuid}")]
fn meet(uuid: &str) -> bool {
    TOGETHER.fetch_add(1, SeqCst);
    rendezvous(&TOGETHER, 2)
}

#[test]
fn different_instances_run_concurrently() {
    let uuids = ["6f0f5a4e-1", "9b2c7d1a-2"];
    on_threads(2, |i| {
        assert!(meet(uuids[i]), "the other instance was shut out")
    });
}

#[synchronized("instance-{uuid}")]
fn work(uuid: &str, section: &Section) {
    section.visit(HOLD);
}

#[test]
fn one_instance_serializes() {
    let section = Section::new();
    on_threads(4, |_| (0..5).for_each(|_| work("3d1c2b7e-3", &section)));
    assert_eq!(section.visits(), 20);
    assert_eq!(section.max(), 1);
}

struct Instance {
    uuid: String,
    host: u32,
}

#[synchronized(name = format!("instance-{}", instance.uuid))]
fn by_expression(instance: &Instance, section: &Section) -> String {
    section.visit(HOLD);
    lockutils::held_locks().pop().unwrap().name
}

impl Instance {
    #[synchronized(name = &self.uuid)]
    fn by_field(&self, section: &Section) -> String {
        section.visit(HOLD);
        lockutils::held_locks().pop().unwrap().name
    }

    /// The name is borrowed, not moved: the body still owns `self`.
    #[synchronized(name = self.uuid.clone() + "-moved", prefix = "nova")]
    fn into_host(self) -> (u32, String) {
        (self.host, lockutils::held_locks().pop().unwrap().name)
    }
}

impl std::fmt::Display for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.uuid, self.host)
    }
}

impl Instance {
    /// `{self}` and format specs work like in `format!`.
    #[synchronized("{self}-{slot:03}")]
    fn slot_name(&self, slot: u8) -> String {
        lockutils::held_locks().pop().unwrap().name
    }
}

#[test]
fn names_from_expressions_fields_and_self() {
    let section = Section::new();
    let a = Instance {
        uuid: "a1".into(),
        host: 7,
    };
    on_threads(4, |i| {
        let name = if i % 2 == 0 {
            by_expression(&a, &section)
        } else {
            a.by_field(&section)
        };
        assert!(name == "instance-a1" || name == "a1", "{name}");
    });
    assert_eq!(a.slot_name(4), "a1@7-004");
    assert_eq!(a.into_host(), (7, "nova-a1-moved".to_string()));
}

/// A width or precision taken from an argument names a parameter.
#[synchronized("w-{id:>width$}-{ratio:.prec$}")]
fn spec_arguments_name(id: u32, width: usize, ratio: f64, prec: usize) -> String {
    lockutils::held_locks().pop().unwrap().name
}

#[test]
fn width_and_precision_from_parameters() {
    assert_eq!(spec_arguments_name(7, 3, 0.5, 2), "w-  7-0.50");
}

#[test]
fn per_instance_names_are_collected_after_use() {
    assert!(meet_alone("collected-1"));
    assert!(!lockutils::Registry::global().contains("instance-collected-1"));
}

#[synchronized("instance-{uuid}")]
fn meet_alone(uuid: &str) -> bool {
    lockutils::Registry::global().contains(&format!("instance-{uuid}"))
}
