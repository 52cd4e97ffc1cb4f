//! Small /proc readers and process helpers used to tell whether a recorded process is still
//! the one we started (pid reuse) and to wait for processes that are not our children.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// A process's state letter and start time in clock ticks since boot (fields 3 and 22 of
/// /proc/PID/stat), from one read.
fn stat(pid: i32) -> Option<(u8, u64)> {
    if pid <= 0 {
        return None;
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    let state = *after.as_bytes().first()?;
    Some((state, after.split(' ').nth(19)?.parse().ok()?))
}

/// Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat). This
/// process's own is read once (it is asked for on every start).
pub fn start_time(pid: i32) -> Option<u64> {
    static OWN: std::sync::OnceLock<(i32, Option<u64>)> = std::sync::OnceLock::new();
    if pid == std::process::id() as i32 {
        let (own, t) = *OWN.get_or_init(|| (pid, stat(pid).map(|(_, t)| t)));
        // A forked child asks with its own pid, not the one cached before the fork.
        if own == pid {
            return t;
        }
    }
    stat(pid).map(|(_, t)| t)
}

/// Whether `pid` runs (neither gone nor a zombie) and, when `start` is non-zero, is the
/// process that started then (one read).
pub fn running(pid: i32, start: u64) -> bool {
    stat(pid).is_some_and(|(s, t)| (start == 0 || t == start) && s != b'Z' && s != b'X')
}

/// Whether `pid` is a zombie of the process that started at `start` (0: any).
pub fn zombie(pid: i32, start: u64) -> bool {
    stat(pid).is_some_and(|(s, t)| (start == 0 || t == start) && (s == b'Z' || s == b'X'))
}

/// A pidfd for `pid`, or None when the process is gone.
pub fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the syscall returned a fresh file descriptor that nothing else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits until the process behind `fd` exits or `timeout` passes; true when it exited.
pub fn wait_pidfd(fd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `p` is one valid pollfd on the stack; the count passed is 1.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n > 0 {
            return true;
        }
        if n == 0 || left.is_zero() {
            return false;
        }
    }
}

/// Sends a signal; false when the process does not exist.
pub fn signal(pid: i32, sig: i32) -> bool {
    // SAFETY: kill takes plain integers.
    pid > 0 && unsafe { libc::kill(pid, sig) } == 0
}

/// Name of the user owning a process (uid from /proc/PID/status), numeric if unknown.
pub fn status_field(pid: i32, field: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// The command line of a process, space-joined.
pub fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}
