//! Keeping a detached container's exit code when its supervisor dies.
//!
//! A detached container's init is a child of its supervisor (`gcr __supervise`), so only the
//! supervisor can wait for it. If the supervisor is killed, the kernel re-parents the
//! container and whoever reaps it gets the status. Two measures keep it:
//!
//! - The guard: the process forked by `start`/`run -d` makes itself a child subreaper, forks
//!   the supervisor and re-executes as `gcr __supervise guard ROOT RUN_DIR ID SUPERVISOR_PID`.
//!   It only sleeps in `waitid`: when the supervisor exits normally it exits too; when the
//!   supervisor is killed, the container becomes the guard's child and the guard records its
//!   exit. (Killing the guard alone loses nothing: the supervisor still holds the container.)
//! - The exit file `<run dir>/<id>/exit`: whoever waits for the container (supervisor or
//!   guard) first looks at the status without reaping (`WNOWAIT`), appends `PID CODE` to it,
//!   then reaps. A zombie container therefore always means "its status is about to be
//!   written", and a container that is gone either has its line in the file or its status
//!   is truly unknown (both supervisor and guard were killed). [`lost_exit`] is what
//!   `reconcile` uses; an unknown status is recorded as 255 (Docker's code for it) with an
//!   `exit-unknown` event, never as a clean exit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::procfs;
use super::record::{self, Record, State};
use crate::Engine;

/// The code recorded when a container's exit status cannot be known.
pub const UNKNOWN_EXIT: i32 = 255;

fn exit_file(run_dir: &Path, id: &str) -> PathBuf {
    run_dir.join(id).join("exit")
}

/// Appends `pid code` to the container's exit file (one short write: atomic in O_APPEND).
fn note_exit(run_dir: &Path, id: &str, pid: i32, code: i32) {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if crate::rundir::ensure(run_dir).is_err() {
        return;
    }
    let dir = run_dir.join(id);
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(exit_file(run_dir, id))
    {
        let _ = f.write_all(format!("{pid} {code}\n").as_bytes());
    }
}

/// The code noted for `pid` in the container's exit file, if any.
pub(crate) fn noted_exit(run_dir: &Path, id: &str, pid: i32) -> Option<i32> {
    let text = std::fs::read_to_string(exit_file(run_dir, id)).ok()?;
    text.lines().rev().find_map(|l| {
        let (p, c) = l.split_once(' ')?;
        (p.parse::<i32>().ok()? == pid).then(|| c.trim().parse().ok())?
    })
}

/// The exit code of a wait status, as a shell reports it.
fn code_of(si: &libc::siginfo_t) -> i32 {
    // SAFETY: waitid filled `si` for an exited child, so si_status is the valid union member.
    let status = unsafe { si.si_status() };
    match si.si_code {
        libc::CLD_EXITED => status,
        libc::CLD_KILLED | libc::CLD_DUMPED => 128 + status,
        _ => UNKNOWN_EXIT,
    }
}

/// Waits for an exited child (`pid`, or any when 0) without reaping it: its pid and code.
fn peek_exit(pid: i32) -> Option<(i32, i32)> {
    // SAFETY: siginfo_t is plain data; all zeroes is a valid value.
    let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let (idtype, id) = if pid > 0 {
        (libc::P_PID, pid as libc::id_t)
    } else {
        (libc::P_ALL, 0)
    };
    loop {
        // SAFETY: waitid writes only into `si`, a valid siginfo_t on our stack.
        let r = unsafe { libc::waitid(idtype, id, &mut si, libc::WEXITED | libc::WNOWAIT) };
        if r == 0 {
            break;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return None;
        }
    }
    // SAFETY: waitid succeeded, so si_pid is set.
    let got = unsafe { si.si_pid() };
    Some((got, code_of(&si)))
}

/// Reaps the exited child `pid` (after [`peek_exit`]).
fn reap_now(pid: i32) {
    let mut status = 0;
    // SAFETY: waiting for our own, already exited child with a valid out pointer.
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
}

/// Waits for the container `pid` (a child of the caller), notes its code in the exit file,
/// then reaps it. Returns the code ([`UNKNOWN_EXIT`] when it cannot be waited for).
pub(crate) fn reap_noted(run_dir: &Path, id: &str, pid: i32) -> i32 {
    match peek_exit(pid) {
        Some((_, code)) => {
            note_exit(run_dir, id, pid, code);
            reap_now(pid);
            code
        }
        None => UNKNOWN_EXIT,
    }
}

/// What became of a container whose holder is gone, as far as anyone can tell.
pub(crate) enum Lost {
    /// It still runs (or another process is about to record it).
    Running,
    /// It exited with this code (noted by whoever reaped it).
    Exited(i32),
    /// It is gone and nobody noted its status.
    Unknown,
}

/// Looks for the fate of container `r` (its holder is gone): still running, an exit noted
/// in its exit file, or unknown. A zombie is waited for (up to 2 s): its reaper notes the
/// status before reaping it.
pub(crate) fn lost_exit(run_dir: &Path, r: &Record) -> Lost {
    let pid = r.pid.unwrap_or(0);
    let start = r.extra.pid_start;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if let Some(code) = noted_exit(run_dir, &r.id, pid) {
            return Lost::Exited(code);
        }
        if procfs::running(pid, start) {
            return Lost::Running;
        }
        if !procfs::zombie(pid, start) {
            // Gone: noted before it was reaped, or never.
            return match noted_exit(run_dir, &r.id, pid) {
                Some(code) => Lost::Exited(code),
                None => Lost::Unknown,
            };
        }
        if Instant::now() >= deadline {
            return Lost::Running;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Entry point of `gcr __supervise guard ROOT RUN_DIR ID SUPERVISOR_PID`.
pub fn main(args: &[String]) -> i32 {
    let [root, run_dir, id, supervisor] = args else {
        return 2;
    };
    let Ok(supervisor) = supervisor.parse::<i32>() else {
        return 2;
    };
    super::supervise::drop_startup_pages();
    let (root, run_dir) = (Path::new(root), Path::new(run_dir));
    // Children: the supervisor, and after it died, its orphans (the container).
    while let Some((pid, code)) = peek_exit(0) {
        if pid == supervisor {
            reap_now(pid);
            continue;
        }
        note_exit(run_dir, id, pid, code);
        reap_now(pid);
        record_orphan_exit(root, run_dir, id, pid, code);
    }
    0
}

/// Records the exit of container `id` (process `pid`) whose supervisor died, unless the row
/// moved on meanwhile (another process recorded it, or `pid` was not its process).
fn record_orphan_exit(root: &Path, run_dir: &Path, id: &str, pid: i32, code: i32) {
    let Ok(engine) = Engine::open(root, run_dir) else {
        return;
    };
    let Ok(r) = engine.store().and_then(|s| record::find(s.conn(), id)) else {
        return;
    };
    if r.pid == Some(pid) && matches!(r.state, State::Running | State::Paused | State::Stopping) {
        let _ = engine.record_exit(&r, code, None);
    }
}
