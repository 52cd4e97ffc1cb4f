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
    let f = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let s = gcr_runtime::cgroups::slurp(f, 512).ok()?;
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
/// process that started then (one read; one poll for a process already watched, see
/// [`watch_pids`]).
pub fn running(pid: i32, start: u64) -> bool {
    if start != 0 && pid > 0 {
        if let Some(alive) = watched(pid, start) {
            return alive;
        }
    }
    stat(pid).is_some_and(|(s, t)| (start == 0 || t == start) && s != b'Z' && s != b'X')
}

/// Pidfds of the processes [`running`] found running, by pid and start time, in a process
/// that asked for them ([`watch_pids`]); `None` in the others.
static WATCH: std::sync::Mutex<Option<std::collections::HashMap<(i32, u64), OwnedFd>>> =
    std::sync::Mutex::new(None);
/// The most pidfds [`WATCH`] keeps (those of exited processes go first).
const WATCH_MAX: usize = 4096;

/// For a long-lived process (the API service), which asks whether the same containers run
/// on every listing: [`running`] then keeps a pidfd of each process it found running and
/// answers later questions about it with one `poll` — the kernel's own word that this very
/// process has not exited, pid reuse included — instead of opening and parsing
/// /proc/PID/stat (most of a 200-container `docker ps`). A short-lived command gains
/// nothing from it and does not ask.
pub fn watch_pids() {
    if let Ok(mut w) = WATCH.lock() {
        w.get_or_insert_with(std::collections::HashMap::new);
    }
}

/// Whether a pidfd says its process exited (readable) — or cannot say (an error).
fn exited(fd: &OwnedFd) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd on the stack; the count passed is 1; no wait.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n != 0
}

/// [`running`] through [`WATCH`]: `None` when pids are not watched in this process.
fn watched(pid: i32, start: u64) -> Option<bool> {
    let mut guard = WATCH.lock().ok()?;
    let map = guard.as_mut()?;
    if let Some(fd) = map.get(&(pid, start)) {
        if exited(fd) {
            map.remove(&(pid, start));
            return Some(false);
        }
        return Some(true);
    }
    // The pidfd first, then the stat: the process the stat finds is the one the fd holds.
    let fd = pidfd_open(pid);
    let alive = stat(pid).is_some_and(|(s, t)| t == start && s != b'Z' && s != b'X');
    if let (true, Some(fd)) = (alive, fd) {
        if map.len() >= WATCH_MAX {
            map.retain(|_, f| !exited(f));
            if map.len() >= WATCH_MAX {
                map.clear();
            }
        }
        map.insert((pid, start), fd);
    }
    Some(alive)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watched_pids_follow_their_process() {
        watch_pids();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let pid = child.id() as i32;
        let start = start_time(pid).expect("start time");
        assert!(running(pid, start));
        assert!(WATCH
            .lock()
            .unwrap()
            .as_ref()
            .unwrap()
            .contains_key(&(pid, start)));
        // From the pidfd now; another start time is another process.
        assert!(running(pid, start));
        assert!(!running(pid, start + 1));
        // A zombie is not running, and neither is a reaped process.
        child.kill().unwrap();
        assert!(wait_until(|| !running(pid, start)));
        assert!(!WATCH
            .lock()
            .unwrap()
            .as_ref()
            .unwrap()
            .contains_key(&(pid, start)));
        child.wait().unwrap();
        assert!(!running(pid, start));
    }

    fn wait_until(f: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}
