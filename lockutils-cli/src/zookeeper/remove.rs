//! `lockutils remove NAME…` and `lockutils clean` with a ZooKeeper backend.
//!
//! A lock is removed by deleting its lock node (and any candidate nodes
//! under it) with `Coordinator::clear`; in the kazoo layout the lock node
//! itself is kept (kazoo and tooz lock objects refer to it), only its
//! candidates go. Without `--force` only a free lock
//! is removed, the way the file backend removes lock files: take the lock
//! exclusively without waiting (so nobody can take it meanwhile: newcomers
//! queue behind), check that nobody queued, then clear it while holding it.
//! A held lock is skipped (exit 75). `--force` clears it anyway: holders see
//! their lock lost (their guards report `NodeDeleted`), waiters queue again.

use std::collections::HashSet;

use lockutils_core::Error;
use lockutils_zookeeper::{CoordinationUrl, Layout, ZkLockOptions};

use super::report::{Contender, ZkLockReport};
use super::{failure, host_name, identity, Zk};
use crate::output::Paint;
use crate::{exit, Failure};

/// What became of one lock.
enum Outcome {
    Removed,
    /// No lock node.
    Absent,
    /// Held: skipped, with who holds it.
    Held(ZkLockReport),
    /// Free, but others queued while we held it for removal.
    Queued(usize),
    /// `clean --dry-run`: free, would be removed.
    WouldRemove,
    /// `--force`: cleared, with what was under it.
    Cleared {
        deleted: usize,
        contenders: Vec<(bool, Contender)>,
    },
}

struct Remover<'z> {
    zk: &'z Zk,
    /// The data of the candidate node taken for a removal.
    identifier: String,
}

impl Remover<'_> {
    /// Removes the lock `name` (with `prefix`: the lock `identity`) if it
    /// is free; see the module docs.
    fn remove_if_free(
        &self,
        name: &str,
        prefix: Option<&str>,
        identity: &str,
    ) -> Result<Outcome, Error> {
        let mut opts = ZkLockOptions::new(name)
            .coordinator(&self.zk.coordinator)
            .identifier(&self.identifier)
            .blocking(false);
        if let Some(p) = prefix {
            opts = opts.prefix(p);
        }
        let taken = opts.lock();
        let guard = match taken {
            Ok(g) => g,
            Err(e) if e.is_contention() => return self.held(identity),
            Err(e) => return Err(e),
        };
        // Someone queued behind us: the lock is in use; let them have it.
        let others = self
            .zk
            .coordinator
            .inspect(identity)?
            .contenders
            .iter()
            .filter(|c| c.node != guard.node().rsplit('/').next().unwrap_or_default())
            .count();
        if others > 0 {
            guard.unlock()?;
            return Ok(Outcome::Queued(others));
        }
        let cleared = self.zk.coordinator.clear(identity);
        // Our candidate was deleted with the others: releasing deletes nothing.
        drop(guard);
        cleared.map(|_| Outcome::Removed)
    }

    /// Who holds `identity`, for a lock found held.
    fn held(&self, identity: &str) -> Result<Outcome, Error> {
        let info = self.zk.coordinator.inspect(identity)?;
        Ok(Outcome::Held(ZkLockReport::from_info(
            &info,
            &self.zk.shown,
            true,
        )))
    }

    /// Clears `identity` whoever holds it.
    fn clear(&self, identity: &str) -> Result<Outcome, Error> {
        let info = self.zk.coordinator.inspect(identity)?;
        let contenders = info
            .contenders
            .iter()
            .map(|c| (c.holder, Contender::from_info(c)))
            .collect();
        let deleted = self.zk.coordinator.clear(identity)?;
        Ok(Outcome::Cleared {
            deleted,
            contenders,
        })
    }
}

/// Whether lock nodes exist: a lock with contenders has one; for the
/// others, the root's listing (taken once, when first needed) says.
struct Existence<'z> {
    zk: &'z Zk,
    listed: Option<HashSet<String>>,
}

impl Existence<'_> {
    fn exists(&mut self, identity: &str) -> Result<bool, Error> {
        if !self.zk.coordinator.inspect(identity)?.contenders.is_empty() {
            return Ok(true);
        }
        let listed = match &mut self.listed {
            Some(l) => l,
            none => none.insert(
                self.zk
                    .coordinator
                    .locks()?
                    .into_iter()
                    .map(|s| s.name)
                    .collect(),
            ),
        };
        Ok(listed.contains(identity))
    }
}

/// `lockutils remove NAME… --backend zookeeper://…`.
pub(crate) fn remove(
    url: &CoordinationUrl,
    names: &[String],
    prefix: Option<&str>,
    force: bool,
) -> Result<i32, Failure> {
    // Check every name before removing anything.
    let identities = names
        .iter()
        .map(|n| identity(url, n, prefix).map(|i| i.into_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    let zk = Zk::connect(url)?;
    let mut existence = Existence {
        zk: &zk,
        listed: None,
    };
    let remover = Remover {
        zk: &zk,
        identifier: format!("{}:{} lockutils remove", host_name(), std::process::id()),
    };
    let paint = Paint::stdout();
    let mut code = exit::OK;
    for (name, identity) in names.iter().zip(&identities) {
        let path = zk.lock_node(identity);
        let outcome = match existence.exists(identity) {
            Ok(false) => Ok(Outcome::Absent),
            Ok(true) if force => remover.clear(identity),
            Ok(true) => remover.remove_if_free(name, prefix, identity),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(Outcome::Removed) => println!("{} {name} ({path})", paint.green("removed")),
            Ok(Outcome::Absent) => println!(
                "{} {name}: no lock node at {path} (nobody holds or waits for it)",
                paint.dim("skipped")
            ),
            Ok(Outcome::Held(report)) => {
                println!(
                    "{} {name}: {} ({path}); a held lock is removed only with --force",
                    paint.yellow("skipped"),
                    report.holders_sentence()
                );
                if code == exit::OK {
                    code = exit::CONFLICT;
                }
            }
            Ok(Outcome::Queued(n)) => {
                println!(
                    "{} {name}: {n} contender(s) queued for it while it was being removed \
                     ({path}); it is in use: try again later, or use --force",
                    paint.yellow("skipped")
                );
                if code == exit::OK {
                    code = exit::CONFLICT;
                }
            }
            Ok(Outcome::Cleared {
                deleted,
                contenders,
            }) => print_cleared(
                name,
                &path,
                deleted,
                url.layout() == Layout::Kazoo,
                &contenders,
                &paint,
            ),
            Ok(Outcome::WouldRemove) => {}
            Err(e) => {
                eprintln!("lockutils: {}", super::describe(&e));
                code = exit::FAILURE;
            }
        }
    }
    Ok(code)
}

fn print_cleared(
    name: &str,
    path: &str,
    deleted: usize,
    node_kept: bool,
    contenders: &[(bool, Contender)],
    paint: &Paint,
) {
    let what = match (deleted, node_kept) {
        (0, false) => "the lock node (it had no contenders)".to_owned(),
        (1, false) => "1 contender node and the lock node".to_owned(),
        (n, false) => format!("{n} contender nodes and the lock node"),
        // kazoo and tooz lock objects refer to the node: it stays.
        (0, true) => "nothing (no contenders; the lock node stays, kazoo layout)".to_owned(),
        (1, true) => "1 contender node (the lock node stays, kazoo layout)".to_owned(),
        (n, true) => format!("{n} contender nodes (the lock node stays, kazoo layout)"),
    };
    println!("{} {name} ({path}): deleted {what}", paint.green("removed"));
    for (holder, c) in contenders {
        let role = if *holder { "holder" } else { "waiter" };
        println!("  {role}  {}", c.line());
    }
    if contenders.iter().any(|(holder, _)| *holder) {
        println!(
            "  the holders were not asked: they now see the lock as lost (node deleted); \
             waiters queue again"
        );
    }
}

/// `lockutils clean --backend zookeeper://…`: removes every free lock under
/// the root, as `remove` does without `--force`.
pub(crate) fn clean(url: &CoordinationUrl, dry_run: bool) -> Result<i32, Failure> {
    let zk = Zk::connect(url)?;
    let summaries = zk.coordinator.locks().map_err(|e| failure(&e))?;
    let remover = Remover {
        zk: &zk,
        identifier: format!("{}:{} lockutils clean", host_name(), std::process::id()),
    };
    let paint = Paint::stdout();
    let (mut removed, mut skipped, mut code) = (0, 0, exit::OK);
    for s in &summaries {
        // Only nodes that are their own lock name: the lock taken for the
        // removal is then exactly this node.
        if identity(url, &s.name, None).ok().as_deref() != Some(s.name.as_str()) {
            skipped += 1;
            println!("{} {}: not a lock name", paint.dim("skipped"), s.name);
            continue;
        }
        let outcome = if s.holders > 0 || s.waiters > 0 {
            remover.held(&s.name)
        } else if dry_run {
            Ok(Outcome::WouldRemove)
        } else {
            remover.remove_if_free(&s.name, None, &s.name)
        };
        match outcome {
            Ok(Outcome::Removed) => {
                removed += 1;
                println!("{} {}", paint.green("removed"), s.name);
            }
            Ok(Outcome::WouldRemove) => {
                removed += 1;
                println!("{} {}", paint.green("would remove"), s.name);
            }
            Ok(Outcome::Held(report)) => {
                skipped += 1;
                println!(
                    "{} {}: {}",
                    paint.yellow("skipped"),
                    s.name,
                    report.holders_sentence()
                );
            }
            Ok(Outcome::Queued(n)) => {
                skipped += 1;
                println!(
                    "{} {}: {n} contender(s) queued for it meanwhile",
                    paint.yellow("skipped"),
                    s.name
                );
            }
            Ok(Outcome::Absent) => {
                skipped += 1;
                println!("{} {}: removed meanwhile", paint.dim("skipped"), s.name);
            }
            Ok(Outcome::Cleared { .. }) => {}
            Err(e) => {
                eprintln!("lockutils: {}", super::describe(&e));
                code = exit::FAILURE;
            }
        }
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    println!(
        "{verb} {removed}, skipped {skipped} under {} on {}",
        url.root(),
        zk.shown
    );
    Ok(code)
}
