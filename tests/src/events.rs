//! The event log shared by `lockutils-holder` processes, and its checks.
//!
//! Each line is `<event> <pid> <unix_micros>`, written with one `write` call on
//! a file opened with `O_APPEND`, so lines from concurrent processes never
//! interleave. `enter` is logged right after the lock is acquired and `exit`
//! right before it is released, so each `[enter, exit]` interval lies inside
//! the time the process held the lock: two exclusive holders' intervals must
//! never overlap.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch, from the system clock (comparable
/// across processes on one machine).
pub fn unix_micros() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("system clock is after 1970");
    u64::try_from(since_epoch.as_micros()).expect("timestamp fits in u64")
}

/// What a log line records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The lock was just acquired.
    Enter,
    /// The lock is about to be released.
    Exit,
    /// The lock file was removed (safe removal returned `true`).
    Removed,
}

impl Event {
    /// The word that starts the log line.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Enter => "enter",
            Event::Exit => "exit",
            Event::Removed => "removed",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        [Event::Enter, Event::Exit, Event::Removed]
            .into_iter()
            .find(|e| e.as_str() == word)
    }
}

/// An open event log, appended to by one process.
#[derive(Debug)]
pub struct EventLog {
    file: File,
}

impl EventLog {
    /// Opens (creating if needed) the log at `path` for appending.
    ///
    /// # Errors
    /// Any error opening the file.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(EventLog { file })
    }

    /// Appends `<event> <pid> <now>` as a single `write`.
    ///
    /// # Errors
    /// Any write error, or a short write (which would break the format).
    pub fn record(&self, event: Event) -> io::Result<()> {
        let line = format!(
            "{} {} {}\n",
            event.as_str(),
            std::process::id(),
            unix_micros()
        );
        let written = (&self.file).write(line.as_bytes())?;
        if written != line.len() {
            return Err(io::Error::other(format!(
                "short write to the event log: {written} of {} bytes",
                line.len()
            )));
        }
        Ok(())
    }
}

/// One parsed log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// What happened.
    pub event: Event,
    /// The process it happened in.
    pub pid: u32,
    /// When, in Unix microseconds.
    pub micros: u64,
}

/// Reads every line of the log at `path`.
///
/// # Panics
/// If the file cannot be read or a line is malformed.
pub fn read_log(path: &Path) -> Vec<Record> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read event log {}: {e}", path.display()));
    text.lines().map(parse_line).collect()
}

fn parse_line(line: &str) -> Record {
    let fields: Vec<&str> = line.split(' ').collect();
    let parsed = match fields.as_slice() {
        [event, pid, micros] => Event::parse(event).and_then(|event| {
            Some(Record {
                event,
                pid: pid.parse().ok()?,
                micros: micros.parse().ok()?,
            })
        }),
        _ => None,
    };
    parsed.unwrap_or_else(|| panic!("malformed event log line {line:?}"))
}

/// The time one process held the lock: from its `enter` to its `exit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    /// The holder.
    pub pid: u32,
    /// When it logged `enter`, in Unix microseconds.
    pub enter: u64,
    /// When it logged `exit`, in Unix microseconds.
    pub exit: u64,
}

impl Interval {
    /// Whether the two intervals share any time (touching ends do not count:
    /// one process may log `enter` in the microsecond another logged `exit`).
    pub fn overlaps(&self, other: &Interval) -> bool {
        self.enter < other.exit && other.enter < self.exit
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} [{}, {}]", self.pid, self.enter, self.exit)
    }
}

/// Pairs each process's `enter` with its next `exit`; `removed` lines are
/// skipped.
///
/// # Panics
/// If a process logs `exit` without `enter`, `enter` twice, or ends the log
/// holding (an `enter` without `exit`).
pub fn intervals(records: &[Record]) -> Vec<Interval> {
    let mut open: Vec<(u32, u64)> = Vec::new();
    let mut done = Vec::new();
    for r in records {
        let pos = open.iter().position(|&(pid, _)| pid == r.pid);
        match (r.event, pos) {
            (Event::Enter, None) => open.push((r.pid, r.micros)),
            (Event::Exit, Some(i)) => {
                let (pid, enter) = open.swap_remove(i);
                assert!(
                    enter <= r.micros,
                    "pid {pid}: exit {} before enter {enter}",
                    r.micros
                );
                done.push(Interval {
                    pid,
                    enter,
                    exit: r.micros,
                });
            }
            (Event::Removed, _) => {}
            (event, _) => panic!("pid {}: unexpected {event:?} in the event log", r.pid),
        }
    }
    assert!(open.is_empty(), "holders that never logged exit: {open:?}");
    done
}

/// [`read_log`] then [`intervals`].
///
/// # Panics
/// As those two.
pub fn read_intervals(path: &Path) -> Vec<Interval> {
    intervals(&read_log(path))
}

/// The first pair of overlapping intervals, if any.
pub fn find_overlap(intervals: &[Interval]) -> Option<(Interval, Interval)> {
    let mut sorted = intervals.to_vec();
    sorted.sort_by_key(|i| (i.enter, i.exit));
    let mut latest: Option<Interval> = None;
    for i in sorted {
        if let Some(prev) = latest {
            if prev.overlaps(&i) {
                return Some((prev, i));
            }
        }
        if latest.is_none_or(|prev| i.exit > prev.exit) {
            latest = Some(i);
        }
    }
    None
}

/// Asserts that no two intervals overlap: the lock was never held twice.
///
/// # Panics
/// Naming the first two overlapping holders.
pub fn assert_no_overlap(intervals: &[Interval]) {
    if let Some((a, b)) = find_overlap(intervals) {
        panic!(
            "two processes held the lock at once: {a} and {b} (of {} holds)",
            intervals.len()
        );
    }
}

/// Groups intervals by holder, each group in log order.
pub fn by_pid(intervals: &[Interval]) -> BTreeMap<u32, Vec<Interval>> {
    let mut map: BTreeMap<u32, Vec<Interval>> = BTreeMap::new();
    for i in intervals {
        map.entry(i.pid).or_default().push(*i);
    }
    map
}

/// Asserts that each of `pids`, and no other process, held the lock exactly
/// `rounds` times.
///
/// # Panics
/// Naming the first process with another count, or an unexpected one.
#[track_caller]
pub fn assert_rounds(intervals: &[Interval], pids: &[u32], rounds: usize) {
    let holds = by_pid(intervals);
    for pid in pids {
        let n = holds.get(pid).map_or(0, Vec::len);
        assert_eq!(n, rounds, "pid {pid} held the lock {n} times, not {rounds}");
    }
    if let Some(stranger) = holds.keys().find(|pid| !pids.contains(pid)) {
        panic!("pid {stranger} is not one of the expected holders {pids:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(event: Event, pid: u32, micros: u64) -> Record {
        Record { event, pid, micros }
    }

    #[test]
    fn lines_round_trip() {
        assert_eq!(parse_line("enter 12 345"), rec(Event::Enter, 12, 345));
        assert_eq!(parse_line("removed 1 2"), rec(Event::Removed, 1, 2));
    }

    #[test]
    #[should_panic(expected = "malformed")]
    fn malformed_lines_are_rejected() {
        parse_line("enter 12");
    }

    #[test]
    fn interleaved_processes_pair_up() {
        let log = [
            rec(Event::Enter, 1, 10),
            rec(Event::Enter, 2, 15),
            rec(Event::Exit, 1, 20),
            rec(Event::Removed, 1, 21),
            rec(Event::Exit, 2, 30),
        ];
        let got = intervals(&log);
        assert_eq!(got.len(), 2);
        assert_eq!(
            find_overlap(&got),
            Some((got[0], got[1])),
            "15..30 overlaps 10..20"
        );
    }

    #[test]
    fn touching_intervals_do_not_overlap_but_nested_ones_do() {
        let a = Interval {
            pid: 1,
            enter: 0,
            exit: 100,
        };
        let touching = Interval {
            pid: 2,
            enter: 100,
            exit: 150,
        };
        let nested = Interval {
            pid: 3,
            enter: 200,
            exit: 210,
        };
        let outer = Interval {
            pid: 4,
            enter: 160,
            exit: 300,
        };
        assert_eq!(find_overlap(&[a, touching]), None);
        assert_eq!(
            find_overlap(&[a, touching, outer, nested]),
            Some((outer, nested))
        );
    }

    #[test]
    #[should_panic(expected = "never logged exit")]
    fn unfinished_holds_are_rejected() {
        intervals(&[rec(Event::Enter, 1, 10)]);
    }
}
