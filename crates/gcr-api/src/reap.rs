//! Reaping: `start` forks each container's guard from the service (the CLI's process would
//! exit and leave it to init), so the service reaps its exited children itself — except
//! the processes it waits for on purpose (exec'd commands), which are registered under
//! the same lock before they can exit unnoticed.

use std::collections::HashSet;
use std::sync::Mutex;

/// Children the service waits for itself (their pids), and the lock that orders their
/// registration before a sweep.
#[derive(Default)]
pub(crate) struct Reaper {
    own: Mutex<HashSet<i32>>,
}

impl Reaper {
    /// Runs `spawn` (which starts a child and returns its pid) with the sweep held off,
    /// and registers the child as one the caller will wait for.
    pub fn spawn_own<T>(&self, spawn: impl FnOnce() -> Option<(i32, T)>) -> Option<T> {
        let mut own = self.own.lock().ok()?;
        let (pid, v) = spawn()?;
        own.insert(pid);
        Some(v)
    }

    /// The caller reaped its own child `pid`.
    pub fn release(&self, pid: i32) {
        if let Ok(mut own) = self.own.lock() {
            own.remove(&pid);
        }
    }

    /// Reaps every exited child that is not registered.
    pub fn sweep(&self) {
        let Ok(own) = self.own.lock() else { return };
        for pid in zombie_children() {
            if own.contains(&pid) {
                continue;
            }
            let mut status = 0;
            // SAFETY: waitpid on one of our own exited children, WNOHANG; `status` is a
            // valid out pointer.
            unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        }
    }
}

/// Pids of this process's children that have exited (state Z in /proc/PID/stat).
fn zombie_children() -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // "pid (comm) S ppid ...": the fields after the last ')'.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let mut f = rest.split_whitespace();
            let state = f.next();
            let ppid = f.next().and_then(|p| p.parse::<i32>().ok());
            state == Some("Z") && ppid == Some(me)
        })
        .collect()
}
