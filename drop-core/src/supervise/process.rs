//! Processes drop started, known by pid *and* start time, and the one way
//! drop ends them.
//!
//! A pid can be reused by an unrelated process after the one drop started
//! exits, so drop records the start time as well (`/proc/<pid>/stat` field
//! 22) and never signals a pid whose start time differs. Ending is always
//! the same: SIGTERM to the process group, a grace period, then SIGKILL.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::Pid;

/// How often a process being ended is looked at.
const POLL: Duration = Duration::from_millis(20);
/// How long SIGKILL is given to take effect.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// A signal drop sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Asks to end (SIGTERM).
    Term,
    /// Ends at once (SIGKILL).
    Kill,
}

impl Signal {
    fn raw(self) -> rustix::process::Signal {
        match self {
            Signal::Term => rustix::process::Signal::TERM,
            Signal::Kill => rustix::process::Signal::KILL,
        }
    }
}

/// What `/proc/<pid>/stat` says of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// The state letter: `R`, `S`, `Z` (zombie) …
    pub state: char,
    /// Its process group.
    pub pgid: u32,
    /// Clock ticks since boot at its start.
    pub start_time: u64,
}

impl ProcStat {
    /// Reads the stat of `pid`; `None` when there is no such process.
    pub fn read(pid: u32) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Self::parse(&stat)
    }

    /// Parses the text of a stat file.
    fn parse(stat: &str) -> Option<Self> {
        // The command name (field 2) may hold spaces and parentheses: skip
        // past its last `)`. Field 3 (state) is then the first field after it.
        let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
        let state = fields.next()?.chars().next()?;
        let pgid = fields.nth(1)?.parse().ok()?; // field 5
        let start_time = fields.nth(16)?.parse().ok()?; // field 22
        Some(ProcStat {
            state,
            pgid,
            start_time,
        })
    }

    /// Whether the process still runs: a zombie has ended and only waits
    /// for its parent.
    pub fn is_live(&self) -> bool {
        self.state != 'Z' && self.state != 'X'
    }
}

/// One process, as drop recorded it: its pid and when it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcessId {
    /// The process id; for processes drop starts, also their group id.
    pub pid: u32,
    /// `/proc/<pid>/stat` field 22 at its start.
    pub start_time: u64,
}

/// How ending a process went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// It was running and has been ended.
    Stopped,
    /// Nothing of it was running.
    NotRunning,
    /// The pid now belongs to another process, which was left alone.
    PidReused,
}

impl ProcessId {
    /// The live process `pid` as it is now; `None` when there is none.
    pub fn of(pid: u32) -> Option<Self> {
        let stat = ProcStat::read(pid).filter(ProcStat::is_live)?;
        Some(ProcessId {
            pid,
            start_time: stat.start_time,
        })
    }

    /// This very process.
    pub fn current() -> Self {
        Self::of(std::process::id()).expect("this process can read its own stat")
    }

    /// A process recorded in a state file, when both halves are there.
    pub fn recorded(pid: Option<u32>, start_time: Option<u64>) -> Option<Self> {
        Some(ProcessId {
            pid: pid?,
            start_time: start_time?,
        })
    }

    /// Whether this process still runs (not another one with its pid).
    pub fn is_alive(&self) -> bool {
        ProcStat::read(self.pid).is_some_and(|s| s.is_live() && s.start_time == self.start_time)
    }

    /// Sends `signal` to this process alone, if it is still this process.
    /// Returns whether it was delivered.
    pub fn signal(&self, signal: Signal) -> bool {
        self.is_alive() && send(self.pid, signal, rustix::process::kill_process)
    }

    /// Ends this process and, when it leads a process group, the whole
    /// group: SIGTERM, up to `grace` for everything to exit, then SIGKILL.
    /// A pid that now names another process is left alone, and so is a
    /// group whose recorded leader is gone: its id may have been reused by
    /// a group of someone else's since (see [`end_leftovers`] for a leader
    /// whose end was just seen).
    pub fn terminate_group(&self, grace: Duration) -> StopOutcome {
        terminate_groups(&[*self], grace)[0]
    }
}

/// [`ProcessId::terminate_group`] for several processes at once: one
/// grace period for all of them.
pub fn terminate_groups(ids: &[ProcessId], grace: Duration) -> Vec<StopOutcome> {
    let targets: Vec<Result<Target, StopOutcome>> = ids.iter().map(Target::of).collect();
    let live: Vec<Target> = targets.iter().filter_map(|t| t.ok()).collect();
    for target in &live {
        target.signal(Signal::Term);
    }
    if !wait_until_gone(&live, grace) {
        for target in live.iter().filter(|t| t.is_alive()) {
            target.signal(Signal::Kill);
        }
        wait_until_gone(&live, KILL_WAIT);
    }
    targets
        .into_iter()
        .map(|t| t.map_or_else(|outcome| outcome, |_| StopOutcome::Stopped))
        .collect()
}

/// What is signalled to end a process.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The group it leads (or led: its members live on).
    Group(u32),
    /// The process alone: it leads no group.
    Process(ProcessId),
}

impl Target {
    /// What to signal to end `id`, or why nothing is.
    fn of(id: &ProcessId) -> Result<Target, StopOutcome> {
        match ProcStat::read(id.pid).filter(ProcStat::is_live) {
            Some(stat) if stat.start_time != id.start_time => Err(StopOutcome::PidReused),
            Some(stat) if stat.pgid != id.pid => Ok(Target::Process(*id)),
            Some(_) => Ok(Target::Group(id.pid)),
            None => Err(StopOutcome::NotRunning),
        }
    }

    fn signal(&self, signal: Signal) {
        match self {
            Target::Group(pgid) => {
                signal_group(*pgid, signal);
            }
            Target::Process(id) if id.is_alive() => {
                send(id.pid, signal, rustix::process::kill_process);
            }
            Target::Process(_) => {}
        }
    }

    fn is_alive(&self) -> bool {
        match self {
            Target::Group(pgid) => has_live_members(*pgid),
            Target::Process(id) => id.is_alive(),
        }
    }
}

/// Kills what is left of the group `pgid` once its leader's end was just
/// seen (reaped by its parent, or found gone by a poll): while a member
/// lives the group id cannot be reused, so these are the leader's.
pub fn end_leftovers(pgid: u32) {
    if has_live_members(pgid) {
        signal_group(pgid, Signal::Kill);
        wait_until_gone(&[Target::Group(pgid)], KILL_WAIT);
    }
}

/// Waits up to `within` until none of `targets` is alive. Returns whether
/// they all went.
fn wait_until_gone(targets: &[Target], within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if !targets.iter().any(Target::is_alive) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// Sends `signal` to every process of the group `pgid`. Returns whether it
/// was delivered. Callers name a group drop made (`process_group(0)`).
pub fn signal_group(pgid: u32, signal: Signal) -> bool {
    send(pgid, signal, rustix::process::kill_process_group)
}

fn send(
    pid: u32,
    signal: Signal,
    kill: fn(Pid, rustix::process::Signal) -> rustix::io::Result<()>,
) -> bool {
    // 0 would mean our own group, 1 init; a negative value every process.
    i32::try_from(pid)
        .ok()
        .filter(|&pid| pid > 1)
        .and_then(Pid::from_raw)
        .is_some_and(|pid| kill(pid, signal.raw()).is_ok())
}

/// Whether a live process (not a zombie) belongs to the group `pgid`.
pub fn has_live_members(pgid: u32) -> bool {
    let exists = i32::try_from(pgid)
        .ok()
        .filter(|&pgid| pgid > 1)
        .and_then(Pid::from_raw)
        .is_some_and(|pgid| {
            match rustix::process::test_kill_process_group(pgid) {
                Ok(()) => true,
                // It exists, but is not ours to signal.
                Err(e) => e == rustix::io::Errno::PERM,
            }
        });
    exists && !group_members(pgid).is_empty()
}

/// The live processes of the group `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    live_pids()
        .filter(|&pid| ProcStat::read(pid).is_some_and(|s| s.is_live() && s.pgid == pgid))
        .collect()
}

/// Live processes that were started with `flag FILE` among their
/// arguments, FILE directly in `dir`: how drop finds processes of its own
/// whose pids it lost (cloudflared's `--config` files live in a folder of
/// drop's).
pub fn started_with_file_in(flag: &str, dir: &Path) -> Vec<ProcessId> {
    live_pids()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
                args.windows(2).any(|w| {
                    let file = Path::new(std::ffi::OsStr::from_bytes(w[1]));
                    w[0] == flag.as_bytes() && file.parent() == Some(dir)
                })
            })
        })
        .filter_map(ProcessId::of)
        .collect()
}

fn live_pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    #[test]
    fn knows_its_own_start_time() {
        let me = ProcessId::current();
        assert!(me.is_alive());
        let other = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!other.is_alive());
    }

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 777 1 1";
        let stat = ProcStat::parse(line).unwrap();
        assert_eq!(
            stat,
            ProcStat {
                state: 'S',
                pgid: 42,
                start_time: 777
            }
        );
        assert_eq!(ProcStat::parse("42 (x) Z 1"), None);
    }

    #[test]
    fn terminate_spares_a_process_with_another_start_time() {
        let mut child = Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let id = ProcessId::of(child.id()).unwrap();
        let impostor = ProcessId {
            start_time: id.start_time + 1,
            ..id
        };
        assert_eq!(
            impostor.terminate_group(Duration::from_millis(100)),
            StopOutcome::PidReused
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the other process lives"
        );
        // Reap in a thread so the zombie disappears as soon as it exits.
        let reaper = std::thread::spawn(move || child.wait());
        assert_eq!(
            id.terminate_group(Duration::from_secs(2)),
            StopOutcome::Stopped
        );
        assert!(!reaper.join().unwrap().unwrap().success());
    }

    #[test]
    fn a_group_that_ignores_sigterm_is_killed_after_the_grace_period() {
        let mut child = Command::new("sh")
            .args(["-c", "trap '' TERM; sleep 1000 & sleep 1000; wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let id = ProcessId::of(child.id()).unwrap();
        assert_eq!(group_members(id.pid).len(), 3);
        let reaper = std::thread::spawn(move || child.wait());
        let started = Instant::now();
        assert_eq!(
            id.terminate_group(Duration::from_millis(300)),
            StopOutcome::Stopped
        );
        assert!(started.elapsed() >= Duration::from_millis(300));
        reaper.join().unwrap().unwrap();
        assert!(!has_live_members(id.pid), "nothing of the group is left");
    }

    /// A recorded leader that is gone leaves its group alone: the group id
    /// may belong to someone else by now. Only a leader whose end was just
    /// seen has its leftovers ended.
    #[test]
    fn a_group_whose_leader_is_gone_is_ended_only_as_leftovers() {
        // The leader waits for its stdin to close, so that its identity is
        // read while it lives; then it exits, leaving its two sleeps.
        let mut leader = Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & read _ || true"])
            .stdin(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let id = ProcessId::of(leader.id()).unwrap();
        drop(leader.stdin.take());
        leader.wait().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(group_members(id.pid).len(), 2, "the two sleeps live on");
        assert_eq!(
            id.terminate_group(Duration::from_millis(100)),
            StopOutcome::NotRunning
        );
        assert_eq!(group_members(id.pid).len(), 2, "left alone");
        end_leftovers(id.pid);
        assert!(group_members(id.pid).is_empty());
    }

    #[test]
    fn missing_pids_are_nobody() {
        assert_eq!(ProcessId::of(u32::MAX - 1), None);
        assert!(!signal_group(0, Signal::Term));
        assert!(!signal_group(1, Signal::Term));
        let gone = ProcessId {
            pid: u32::MAX - 1,
            start_time: 1,
        };
        assert_eq!(
            gone.terminate_group(Duration::ZERO),
            StopOutcome::NotRunning
        );
    }
}
