//! Processes drop started: who they are beyond their pid, and how to end them.
//!
//! A pid can be reused by an unrelated process after the one drop started
//! exits, so drop records the start time as well (`/proc/<pid>/stat` field
//! 22) and never signals a pid whose start time differs.
#![allow(unsafe_code)]

use std::time::{Duration, Instant};

/// The start time of a live process, in clock ticks since boot; `None` when
/// no such process exists (or it is a zombie already reaped).
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: skip past
    // its last `)`. Field 3 (state) is then the first field after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // Fields 4..=21 come next; field 22 is the 19th after the state.
    fields.nth(18)?.parse().ok()
}

/// Whether `pid` is still the very process that started at `start`.
pub fn is_same_process(pid: u32, start: u64) -> bool {
    start_time(pid) == Some(start)
}

/// Sends `signal` to `pid`. Returns whether it was delivered.
pub fn signal(pid: u32, signal: i32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) has no memory-safety preconditions; pid > 0 names one process.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// Sends `signal` to every process of the group `pgid`.
pub fn signal_group(pgid: u32, signal: i32) -> bool {
    let Ok(pgid) = i32::try_from(pgid) else {
        return false;
    };
    if pgid <= 1 {
        return false;
    }
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
    unsafe { libc::kill(-pgid, signal) == 0 }
}

/// Whether any process still belongs to the group `pgid`.
pub fn group_exists(pgid: u32) -> bool {
    let Ok(pgid) = i32::try_from(pgid) else {
        return false;
    };
    if pgid <= 1 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence.
    let found = unsafe { libc::kill(-pgid, 0) } == 0;
    found || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Stops the process `pid` if it is still the one that started at `start`:
/// SIGTERM, up to `grace` to exit, then SIGKILL. Returns `false` when the
/// pid belongs to no process or to another one, which is left alone.
pub fn terminate(pid: u32, start: u64, grace: Duration) -> bool {
    if !is_same_process(pid, start) {
        return false;
    }
    signal(pid, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !is_same_process(pid, start) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if is_same_process(pid, start) {
        signal(pid, libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(2);
        while is_same_process(pid, start) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    true
}

/// Raises this process's open-file limit to its hard limit, so the server's
/// connection cap, not `EMFILE`, is what limits it.
pub fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max.min(65_536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn knows_its_own_start_time() {
        let me = std::process::id();
        let start = start_time(me).expect("own stat is readable");
        assert!(is_same_process(me, start));
        assert!(!is_same_process(me, start + 1));
    }

    #[test]
    fn terminate_spares_a_process_with_another_start_time() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let start = start_time(pid).unwrap();
        assert!(!terminate(pid, start + 1, Duration::from_millis(100)));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the other process lives"
        );
        // Reap in a thread so the zombie disappears as soon as it exits.
        let reaper = std::thread::spawn(move || child.wait());
        assert!(terminate(pid, start, Duration::from_secs(2)));
        assert!(!reaper.join().unwrap().unwrap().success());
    }

    #[test]
    fn missing_pids_have_no_start_time() {
        assert_eq!(start_time(u32::MAX - 1), None);
        assert!(!signal(0, 0));
    }
}
