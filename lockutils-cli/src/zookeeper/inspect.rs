//! `lockutils list` and `lockutils show NAME` with a ZooKeeper backend.

use lockutils_zookeeper::{CoordinationUrl, LockSummary};

use super::report::{Contender, ZkLockReport};
use super::{describe, failure, identity, Zk};
use crate::duration;
use crate::inspect::{truncate, State};
use crate::output::{print_table, Cell, Paint};
use crate::{exit, Failure};

/// At most this many locks are inspected at once by `list`.
const WORKERS: usize = 8;

/// `lockutils list --backend zookeeper://…`.
pub(crate) fn list(url: &CoordinationUrl, json: bool) -> Result<i32, Failure> {
    let zk = Zk::connect(url)?;
    let summaries = zk.coordinator.locks().map_err(|e| failure(&e))?;
    let reports = reports(&zk, &summaries);
    if json {
        crate::output::print_json(&reports)?;
        return Ok(exit::OK);
    }
    if reports.is_empty() {
        eprintln!("lockutils: no locks under {} on {}", url.root(), zk.shown);
        return Ok(exit::OK);
    }
    print_table(&list_rows(&reports, &Paint::stdout()));
    Ok(exit::OK)
}

/// Reports for the listed locks: free ones from the listing, the others
/// from a look at each contender (a few locks at a time).
fn reports(zk: &Zk, summaries: &[LockSummary]) -> Vec<ZkLockReport> {
    let mut out: Vec<Option<ZkLockReport>> = summaries
        .iter()
        .map(|s| {
            (s.holders == 0 && s.waiters == 0)
                .then(|| ZkLockReport::new(&s.name, &s.path, &zk.shown, true, vec![], vec![]))
        })
        .collect();
    let busy: Vec<usize> = (0..out.len()).filter(|&i| out[i].is_none()).collect();
    let chunk = busy.len().div_ceil(WORKERS).max(1);
    let found: Vec<(usize, ZkLockReport)> = std::thread::scope(|scope| {
        let workers: Vec<_> = busy
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|&i| (i, inspect_one(zk, &summaries[i])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    for (i, report) in found {
        out[i] = Some(report);
    }
    out.into_iter()
        .zip(summaries)
        .map(|(r, s)| {
            r.unwrap_or_else(|| {
                ZkLockReport::unknown(&s.name, &s.path, &zk.shown, "not examined".into())
            })
        })
        .collect()
}

fn inspect_one(zk: &Zk, summary: &LockSummary) -> ZkLockReport {
    match zk.coordinator.inspect(&summary.name) {
        Ok(info) => ZkLockReport::from_info(&info, &zk.shown, true),
        Err(e) => ZkLockReport::unknown(&summary.name, &summary.path, &zk.shown, describe(&e)),
    }
}

/// `lockutils show NAME --backend zookeeper://…`.
pub(crate) fn show(
    url: &CoordinationUrl,
    name: &str,
    prefix: Option<&str>,
    json: bool,
) -> Result<i32, Failure> {
    let identity = identity(url, name, prefix)?;
    let zk = Zk::connect(url)?;
    let info = zk.coordinator.inspect(&identity).map_err(|e| failure(&e))?;
    // No contender: a free lock, whose node may be gone (or never was).
    let exists = !info.contenders.is_empty()
        || zk
            .coordinator
            .locks()
            .map_err(|e| failure(&e))?
            .iter()
            .any(|s| s.name == identity);
    let report = ZkLockReport::from_info(&info, &zk.shown, exists);
    if json {
        crate::output::print_json(&report)?;
    } else {
        print_table(&show_rows(&report, &Paint::stdout()));
    }
    Ok(exit::OK)
}

fn state_cell(r: &ZkLockReport, paint: &Paint) -> Cell {
    r.state.cell(r.state_text(), paint)
}

/// `NAME STATE WAITING HELD FOR HOLDERS`, as for lock files.
pub(crate) fn list_rows(reports: &[ZkLockReport], paint: &Paint) -> Vec<Vec<Cell>> {
    let mut rows = vec![["NAME", "STATE", "WAITING", "HELD FOR", "HOLDERS"]
        .iter()
        .map(|h| Cell::new(*h, paint.bold(h)))
        .collect::<Vec<_>>()];
    for r in reports {
        let waiting = match r.waiter_count {
            Some(0) => "-".to_owned(),
            Some(n) => n.to_string(),
            None => "?".to_owned(),
        };
        let held_for = match (r.state, r.held_at_most()) {
            (State::Unknown, _) => Cell::new("?", paint.dim("?")),
            (_, Some(age)) => Cell::plain(format!("≤{}", duration::human(age))),
            (_, None) => Cell::plain("-"),
        };
        let holders = match &r.error {
            Some(e) => Cell::new(truncate(e, 60), paint.dim(&truncate(e, 60))),
            None if r.holders.is_empty() => Cell::plain("-"),
            None => Cell::plain(
                r.holders
                    .iter()
                    .map(|h| truncate(&h.who(), 48))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        };
        rows.push(vec![
            Cell::plain(&r.name),
            state_cell(r, paint),
            Cell::plain(waiting),
            held_for,
            holders,
        ]);
    }
    rows
}

/// `show`: the lock, its node, then one line per contender.
pub(crate) fn show_rows(r: &ZkLockReport, paint: &Paint) -> Vec<Vec<Cell>> {
    let label = |l: &str| Cell::new(l, paint.bold(l));
    let node = if r.exists {
        r.path.clone()
    } else {
        format!(
            "{} (no such node: nobody holds or waits for this lock; ZooKeeper removes the \
             node of a free lock)",
            r.path
        )
    };
    let mut rows = vec![
        vec![label("lock"), Cell::plain(&r.name)],
        vec![label("node"), Cell::plain(node)],
        vec![label("backend"), Cell::plain(&r.url)],
        vec![label("state"), state_cell(r, paint)],
    ];
    let line = |c: &Contender| Cell::plain(c.line());
    rows.extend(r.holders.iter().map(|h| vec![label("holder"), line(h)]));
    rows.extend(r.waiters.iter().map(|w| vec![label("waiter"), line(w)]));
    if let Some(age) = r.held_at_most() {
        rows.push(vec![
            label("held for"),
            Cell::plain(format!(
                "at most {}: a contender's node is created when it queues, before it holds",
                duration::human(age)
            )),
        ]);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::super::report::contender;
    use super::*;
    use crate::output::table_lines;
    use lockutils_core::Mode;

    #[test]
    fn list_table() {
        let url = "zookeeper://svc@zk1:2181/lockutils";
        let reports = [
            ZkLockReport::new(
                "nova-1",
                "/lockutils/nova-1",
                url,
                true,
                vec![contender(
                    "write-a-0000000000",
                    Mode::Exclusive,
                    0,
                    "h:1 lockutils hold sh",
                    125,
                )],
                vec![contender(
                    "write-b-0000000001",
                    Mode::Exclusive,
                    1,
                    "h:2",
                    9,
                )],
            ),
            ZkLockReport::new("nova-2", "/lockutils/nova-2", url, true, vec![], vec![]),
            ZkLockReport::new(
                "reports",
                "/lockutils/reports",
                url,
                true,
                vec![
                    contender("read-a-0000000000", Mode::Shared, 0, "h:3", 60),
                    contender("read-b-0000000001", Mode::Shared, 1, "", 30),
                ],
                vec![],
            ),
            ZkLockReport::unknown("secret", "/lockutils/secret", url, "not authorized".into()),
        ];
        assert_eq!(
            table_lines(&list_rows(&reports, &Paint::plain())),
            [
                "NAME     STATE             WAITING  HELD FOR  HOLDERS",
                "nova-1   held exclusive    1        ≤2m05s    h:1 lockutils hold sh",
                "nova-2   free              -        -         -",
                "reports  held shared by 2  -        ≤1m00s    h:3, session 0x10000a2b3c4d0001",
                "secret   unknown           ?        ?         not authorized",
            ]
        );
    }

    #[test]
    fn show_lines() {
        let r = ZkLockReport::new(
            "nova-1",
            "/lockutils/nova-1",
            "zookeeper://svc@zk1:2181/lockutils",
            true,
            vec![contender(
                "write-a-0000000000",
                Mode::Exclusive,
                0,
                "h:1",
                125,
            )],
            vec![contender("read-b-0000000001", Mode::Shared, 1, "h:2", 9)],
        );
        assert_eq!(
            table_lines(&show_rows(&r, &Paint::plain())),
            [
                "lock      nova-1",
                "node      /lockutils/nova-1",
                "backend   zookeeper://svc@zk1:2181/lockutils",
                "state     held exclusive",
                "holder    exclusive  write-a-0000000000  seq 0  token 4294967296  \
                 session 0x10000a2b3c4d0000  queued 2m05s ago  data \"h:1\"",
                "waiter    shared  read-b-0000000001  seq 1  token 4294967297  \
                 session 0x10000a2b3c4d0001  queued 9s ago  data \"h:2\"",
                "held for  at most 2m05s: a contender's node is created when it queues, before it holds",
            ]
        );
        let gone = ZkLockReport::new("x", "/l/x", "zookeeper://h:2181/l", false, vec![], vec![]);
        let lines = table_lines(&show_rows(&gone, &Paint::plain()));
        assert!(
            lines[1].starts_with("node     /l/x (no such node"),
            "{lines:?}"
        );
        assert_eq!(lines[3], "state    free");
        assert_eq!(lines.len(), 4);
    }
}
