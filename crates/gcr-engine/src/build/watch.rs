//! The watcher of a build step's cgroup: a small process forked before the step starts that
//! outlives a killed `gcr build` and then kills whatever runs in the step's group and
//! removes it.
//!
//! The build keeps the write end of a pipe whose read end only the watcher holds. A step
//! that ends normally is reported with one byte (the watcher exits, leaving the group to
//! the build); end of file without it means the build died (SIGKILL, a crash, Ctrl-C),
//! because the kernel closes a dead process's descriptors. The watcher then writes
//! `cgroup.kill` (v2), SIGKILLs every pid in `cgroup.procs` until none is left, and removes
//! the group's directories. It runs in its own session with the terminal's signals ignored,
//! so a Ctrl-C aimed at the build does not take it down first, and holds no other
//! descriptor, so nobody waiting for the build's output waits for it.
//!
//! It is forked from a process that may have other threads, so it only makes system calls
//! on data prepared before the fork (no allocation, no locks).

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// How long the watcher keeps killing and waits for the group to empty.
const KILL_ROUNDS: u32 = 500;
/// Pause between rounds, in nanoseconds (10 ms: 5 s in all).
const ROUND_NS: libc::c_long = 10_000_000;

/// The paths the watcher uses, as C strings made before the fork.
struct Plan {
    kill: Vec<CString>,
    procs: Vec<CString>,
    dirs: Vec<CString>,
}

impl Plan {
    fn new(dirs: &[&Path]) -> Result<Plan, String> {
        let c = |p: &Path| {
            CString::new(p.as_os_str().as_bytes())
                .map_err(|_| format!("cgroup path {} contains a NUL byte", p.display()))
        };
        let mut plan = Plan {
            kill: Vec::new(),
            procs: Vec::new(),
            dirs: Vec::new(),
        };
        for d in dirs {
            plan.kill.push(c(&d.join("cgroup.kill"))?);
            plan.procs.push(c(&d.join("cgroup.procs"))?);
            plan.dirs.push(c(d)?);
        }
        Ok(plan)
    }
}

/// A running watcher; dropping it without [`StepWatch::release`] has it kill and remove
/// the group, and waits for that.
pub(crate) struct StepWatch {
    pid: libc::pid_t,
    done: Option<OwnedFd>,
}

impl StepWatch {
    /// Forks the watcher of the group whose directories are `dirs` (which need not exist
    /// yet).
    pub(crate) fn start(dirs: &[&Path]) -> Result<StepWatch, String> {
        let plan = Plan::new(dirs)?;
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| {
            format!(
                "cannot create the pipe of a build step's watcher: {e}; check the open file limit"
            )
        })?;
        // SAFETY: the child runs `watch`, which only makes system calls on `plan` (built
        // above) and stack buffers and ends in _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            watch(&plan, r.as_raw_fd());
        }
        if pid < 0 {
            return Err(format!(
                "cannot fork the watcher of a build step: {}; check the process limit",
                std::io::Error::last_os_error()
            ));
        }
        drop(r);
        Ok(StepWatch { pid, done: Some(w) })
    }

    /// The step ended and the build removes its group itself: the watcher exits without
    /// touching it.
    pub(crate) fn release(mut self) {
        if let Some(w) = self.done.take() {
            // SAFETY: a one-byte write from a static buffer to our pipe.
            unsafe { libc::write(w.as_raw_fd(), c"x".as_ptr().cast(), 1) };
        }
    }
}

impl Drop for StepWatch {
    fn drop(&mut self) {
        drop(self.done.take());
        let mut status = 0;
        // SAFETY: waitpid of our own child into a local.
        while unsafe { libc::waitpid(self.pid, &mut status, 0) } < 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
        {}
    }
}

/// The watcher process.
fn watch(plan: &Plan, done: RawFd) -> ! {
    // SAFETY: system calls with constant arguments or our own descriptor; no memory is
    // touched but a stack byte.
    unsafe {
        libc::setsid();
        for sig in [
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGPIPE,
            libc::SIGTSTP,
            libc::SIGTTIN,
            libc::SIGTTOU,
        ] {
            libc::signal(sig, libc::SIG_IGN);
        }
        libc::prctl(libc::PR_SET_NAME, c"gcr-build-watch".as_ptr(), 0, 0, 0);
        close_all_but(done);
        let mut b = 0u8;
        let n = loop {
            let n = libc::read(done, (&mut b as *mut u8).cast(), 1);
            if n >= 0 || errno() != libc::EINTR {
                break n;
            }
        };
        if n == 1 {
            libc::_exit(0);
        }
    }
    kill_group(plan);
    remove_group(plan);
    // SAFETY: _exit ends the watcher without running the parent's atexit handlers.
    unsafe { libc::_exit(0) }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Closes every descriptor but `keep`.
fn close_all_but(keep: RawFd) {
    let keep = keep as libc::c_uint;
    // SAFETY: close_range on descriptor ranges of this process.
    unsafe {
        if keep > 0 {
            libc::syscall(libc::SYS_close_range, 0 as libc::c_uint, keep - 1, 0);
        }
        libc::syscall(libc::SYS_close_range, keep + 1, libc::c_uint::MAX, 0);
    }
}

fn pause() {
    let t = libc::timespec {
        tv_sec: 0,
        tv_nsec: ROUND_NS,
    };
    // SAFETY: nanosleep with a valid timespec and no remainder.
    unsafe { libc::nanosleep(&t, std::ptr::null_mut()) };
}

/// Kills every process of the group until none is left (or the rounds run out).
fn kill_group(plan: &Plan) {
    for f in &plan.kill {
        // SAFETY: open/write/close of a NUL-terminated path from the plan.
        unsafe {
            let fd = libc::open(f.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd >= 0 {
                libc::write(fd, c"1".as_ptr().cast(), 1);
                libc::close(fd);
            }
        }
    }
    for _ in 0..KILL_ROUNDS {
        let mut found = false;
        for f in &plan.procs {
            found |= for_each_pid(f, |pid| {
                // SAFETY: kill(2) of a pid read from the group.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            });
        }
        if !found {
            return;
        }
        pause();
    }
}

/// Calls `f` with each pid listed in `path`; returns whether there was any.
fn for_each_pid(path: &CString, mut f: impl FnMut(libc::pid_t)) -> bool {
    // SAFETY: open of a NUL-terminated path; the descriptor is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return false;
    }
    let mut buf = [0u8; 512];
    let mut any = false;
    let mut cur: Option<libc::pid_t> = None;
    loop {
        // SAFETY: reads into a stack buffer of its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        for &c in &buf[..n as usize] {
            if c.is_ascii_digit() {
                let d = libc::pid_t::from(c - b'0');
                cur = Some(cur.unwrap_or(0).saturating_mul(10).saturating_add(d));
            } else if let Some(pid) = cur.take() {
                any = true;
                f(pid);
            }
        }
    }
    if let Some(pid) = cur {
        any = true;
        f(pid);
    }
    // SAFETY: closes the descriptor opened above.
    unsafe { libc::close(fd) };
    any
}

/// Removes the group's directories, waiting while the kernel still reports them busy.
fn remove_group(plan: &Plan) {
    for d in &plan.dirs {
        for _ in 0..KILL_ROUNDS {
            // SAFETY: rmdir of a NUL-terminated path from the plan.
            if unsafe { libc::rmdir(d.as_ptr()) } == 0 || errno() != libc::EBUSY {
                break;
            }
            pause();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_are_read_whole_across_reads() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("cgroup.procs");
        // More than one read buffer, with a pid straddling its end and no final newline.
        let pids: Vec<i32> = (0..200).map(|i| 4_000_000 + i * 7).collect();
        let text: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
        std::fs::write(&p, text.join("\n")).unwrap();
        let c = CString::new(p.as_os_str().as_bytes()).unwrap();
        let mut seen = Vec::new();
        assert!(for_each_pid(&c, |pid| seen.push(pid)));
        assert_eq!(seen, pids);
        std::fs::write(&p, "").unwrap();
        assert!(!for_each_pid(&c, |_| panic!("no pid")));
        let missing = CString::new("/nonexistent/cgroup.procs").unwrap();
        assert!(!for_each_pid(&missing, |_| panic!("no file")));
    }

    #[test]
    fn a_released_watcher_leaves_the_group_and_a_dropped_one_removes_it() {
        let tmp = tempfile::tempdir().unwrap();
        let kept = tmp.path().join("kept");
        let removed = tmp.path().join("removed");
        std::fs::create_dir(&kept).unwrap();
        std::fs::create_dir(&removed).unwrap();
        StepWatch::start(&[kept.as_path()]).unwrap().release();
        assert!(kept.is_dir(), "a released watcher removed its group");
        drop(StepWatch::start(&[removed.as_path()]).unwrap());
        assert!(!removed.exists(), "a dropped watcher left its group");
    }
}
