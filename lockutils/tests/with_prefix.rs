//! `#[synchronized_with_prefix]`: a project's prefix declared once on a
//! `mod`, `impl` or `trait` block; a function's own `prefix =` wins.

use lockutils::{synchronized, synchronized_with_prefix};

fn held() -> String {
    lockutils::held_locks().pop().expect("a lock is held").name
}

#[synchronized_with_prefix("nova")]
mod compute {
    use lockutils::synchronized;

    #[synchronized("instance-{id}")]
    pub fn spawn(id: u32) -> String {
        super::held()
    }

    #[lockutils::synchronized("resources")]
    pub fn full_path_attribute() -> String {
        super::held()
    }

    #[synchronized("images", prefix = "glance")]
    pub fn explicit_prefix_wins() -> String {
        super::held()
    }

    #[synchronized("trailing-comma")]
    pub fn trailing_comma() -> String {
        super::held()
    }

    pub mod nested {
        use lockutils::synchronized;

        #[synchronized("nested")]
        pub fn inherits() -> String {
            crate::held()
        }
    }

    #[lockutils::synchronized_with_prefix("cinder")]
    pub mod own {
        use lockutils::synchronized;

        #[synchronized("volume")]
        pub fn own_prefix() -> String {
            crate::held()
        }
    }

    pub struct Manager;

    impl Manager {
        #[synchronized("manager")]
        pub fn method(&self) -> String {
            super::held()
        }
    }

    /// Not synchronized: left alone.
    pub fn plain() -> bool {
        lockutils::held_locks().is_empty()
    }
}

#[test]
fn module_prefix_applies_to_every_synchronized_fn() {
    assert_eq!(compute::spawn(3), "nova-instance-3");
    assert_eq!(compute::full_path_attribute(), "nova-resources");
    assert_eq!(compute::trailing_comma(), "nova-trailing-comma");
    assert_eq!(compute::nested::inherits(), "nova-nested");
    assert_eq!(compute::Manager.method(), "nova-manager");
    assert!(compute::plain());
}

#[test]
fn explicit_and_inner_prefixes_win() {
    assert_eq!(compute::explicit_prefix_wins(), "glance-images");
    assert_eq!(compute::own::own_prefix(), "cinder-volume");
}

struct Scheduler;

#[synchronized_with_prefix("nova-")]
impl Scheduler {
    #[synchronized("select", external)]
    fn select(&self) -> String {
        held()
    }

    #[synchronized("async-select")]
    async fn select_async(&self) -> Vec<String> {
        tokio::task::yield_now().await;
        lockutils::held_locks()
            .into_iter()
            .map(|l| l.name)
            .collect()
    }
}

#[test]
fn impl_block_prefix_and_lock_file_name() {
    let dir = tempfile::tempdir().unwrap();
    lockutils::set_defaults(dir.path());
    assert_eq!(Scheduler.select(), "nova-select");
    assert!(dir.path().join("nova-select").exists());
    // Async guards are not listed per thread; the lock is still prefixed.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let g = lockutils::LockOptions::new("async-select")
        .prefix("nova")
        .lock()
        .unwrap();
    let blocked = std::thread::scope(|s| {
        s.spawn(|| {
            rt.block_on(async {
                tokio::time::timeout(
                    std::time::Duration::from_millis(50),
                    Scheduler.select_async(),
                )
                .await
                .is_err()
            })
        })
        .join()
        .unwrap()
    });
    drop(g);
    assert!(blocked, "select_async did not wait for nova-async-select");
    lockutils::clear_defaults();
}

trait Volumes {
    fn attach(&self) -> String {
        String::new()
    }
}

#[synchronized_with_prefix("cinder")]
impl Volumes for Scheduler {
    #[synchronized("attach")]
    fn attach(&self) -> String {
        held()
    }
}

#[test]
fn trait_impl_block() {
    assert_eq!(Volumes::attach(&Scheduler), "cinder-attach");
}

#[test]
fn runtime_equivalent_prefix() {
    static NOVA: lockutils::Prefix = lockutils::lock_with_prefix("nova");
    let g = NOVA.lock("runtime").unwrap();
    assert_eq!(held(), "nova-runtime");
    drop(g);
}

/// `synchronized` imported at the top level too.
#[synchronized("top-level")]
fn top_level() -> String {
    held()
}

#[test]
fn outside_a_prefixed_block_no_prefix() {
    assert_eq!(top_level(), "top-level");
}

pub struct Buf<const N: usize>;

pub trait Sized2<const N: usize> {
    fn sized(&self) -> String;
}

/// Braces inside `<..>` are const arguments, not the block's body: every
/// impl here is entered and its functions prefixed.
#[synchronized_with_prefix("nova")]
mod braced_generics {
    use super::{Buf, Sized2};
    use lockutils::synchronized;

    impl Buf<{ 2 * 4 }> {
        #[synchronized("braced-impl")]
        pub fn braced(&self) -> String {
            crate::held()
        }
    }

    /// A function whose signature has braces before its body, then an item
    /// after it.
    pub fn make() -> Buf<{ 2 * 4 }> {
        Buf
    }

    #[synchronized("after-braced-fn")]
    pub fn after_braced_fn() -> String {
        crate::held()
    }

    #[allow(unused_braces)] // the braces are what is tested
    impl<const N: usize> Sized2<{ N }> for Buf<{ N }>
    where
        [(); { N }]: Sized,
    {
        #[synchronized(name = format!("braced-trait-impl-{N}"))]
        fn sized(&self) -> String {
            crate::held()
        }
    }

    pub mod nested {
        use super::Buf;
        use lockutils::synchronized;

        impl Buf<{ 1 + 2 }> {
            #[synchronized("braced-nested")]
            pub fn nested(&self) -> String {
                crate::held()
            }
        }
    }

    /// A `<` that is an operator lasts only until its item's `;`.
    pub const LESS: bool = 1 < 2;

    #[synchronized("after-operator")]
    pub fn after_operator() -> String {
        crate::held()
    }
}

#[test]
fn braced_const_arguments_do_not_hide_the_body() {
    assert_eq!(Buf::<8>.braced(), "nova-braced-impl");
    let _: Buf<8> = braced_generics::make();
    assert_eq!(braced_generics::after_braced_fn(), "nova-after-braced-fn");
    assert_eq!(Buf::<5>.sized(), "nova-braced-trait-impl-5");
    assert_eq!(Buf::<3>.nested(), "nova-braced-nested");
    const { assert!(braced_generics::LESS) };
    assert_eq!(braced_generics::after_operator(), "nova-after-operator");
}

/// The facade re-exported under another path, the case `crate = path` is
/// for.
pub mod my_framework {
    pub mod locks {
        pub use lockutils::*;
    }
}

#[synchronized_with_prefix("nova")]
mod reexported {
    pub struct Service;

    impl Service {
        #[crate::my_framework::locks::synchronized("reexport", crate = crate::my_framework::locks)]
        pub fn method(&self) -> String {
            crate::held()
        }
    }

    #[crate::my_framework::locks::synchronized_with_prefix("glance")]
    pub mod images {
        use crate::my_framework::locks::synchronized;

        #[synchronized("reexport-image")]
        pub fn cache() -> String {
            crate::held()
        }
    }
}

#[test]
fn synchronized_through_a_reexport_gets_the_prefix() {
    assert_eq!(reexported::Service.method(), "nova-reexport");
}

#[test]
fn own_prefix_through_a_reexport_wins() {
    assert_eq!(reexported::images::cache(), "glance-reexport-image");
}

#[synchronized_with_prefix("nova")]
mod conditional {
    use lockutils::synchronized;

    #[cfg_attr(all(), synchronized("cfg-attr"))]
    pub fn cfg_attr() -> String {
        super::held()
    }

    #[cfg_attr(all(), inline, lockutils::synchronized("cfg-attr-several"))]
    pub fn cfg_attr_several() -> String {
        super::held()
    }

    #[cfg_attr(all(), cfg_attr(unix, synchronized("cfg-attr-nested")))]
    pub fn cfg_attr_nested() -> String {
        super::held()
    }
}

#[test]
fn synchronized_under_cfg_attr_gets_the_prefix() {
    assert_eq!(conditional::cfg_attr(), "nova-cfg-attr");
    assert_eq!(conditional::cfg_attr_several(), "nova-cfg-attr-several");
    assert_eq!(conditional::cfg_attr_nested(), "nova-cfg-attr-nested");
}
