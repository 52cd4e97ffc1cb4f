//! `--init`: a tiny pid-1 reaper that runs in the container's first process itself, so no
//! init binary is needed in the image. It forks the user command, forwards signals to it,
//! reaps every zombie and exits with the command's status (128 + signal when it was killed).
//! It shows itself as `gcr-init` (its name and command line), not as the copy of the
//! caller it is: the caller's arguments (a service's store and socket paths) are none of
//! the container's business.

use std::os::fd::RawFd;
use std::ptr;

use crate::error::Stage;
use crate::process::ProcessPlan;
use crate::sys::{child_fail, errno};

/// The reaper's name, as `/proc/1/comm` and `/proc/1/cmdline` show it.
const NAME: &[u8] = b"gcr-init\0";

/// Where this process's command line lies in its memory (`arg_start`..`arg_end` of
/// /proc/self/stat; empty when unknown), read by the caller before the clone: the reaper, a
/// copy of it, writes its own name there.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ArgArea {
    start: usize,
    end: usize,
}

/// This process's [`ArgArea`], read once (it never moves).
pub(crate) fn arg_area() -> ArgArea {
    static AREA: std::sync::OnceLock<ArgArea> = std::sync::OnceLock::new();
    *AREA.get_or_init(|| {
        let read = || -> Option<ArgArea> {
            let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
            let rest = &stat[stat.rfind(')')? + 1..];
            // Field 3 (state) is the first after the name; arg_start and arg_end are 48, 49.
            let mut f = rest.split_whitespace().skip(45);
            let start = f.next()?.parse().ok()?;
            let end = f.next()?.parse().ok()?;
            Some(ArgArea { start, end })
        };
        read().unwrap_or_default()
    })
}

/// Runs in the container's pid 1 after all setup. Never returns.
pub(crate) fn run_reaper(errfd: RawFd, plan: &ProcessPlan, args: ArgArea) -> ! {
    // SAFETY: only async-signal-safe system calls on stack data follow; the forked command
    // ends in execve (through plan.exec) or _exit.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, ptr::null_mut());
        let pid = libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0, 0, 0, 0) as i32;
        if pid < 0 {
            child_fail(errfd, Stage::Init as u32, errno());
        }
        if pid == 0 {
            plan.exec(errfd);
        }
        // The command holds the error pipe until its execve; the reaper lets go now.
        libc::close(errfd);
        libc::prctl(libc::PR_SET_NAME, NAME.as_ptr());
        if args.start != 0 && args.end > args.start {
            // This process's own copy of the caller's argument strings (the stack the
            // kernel made at its execve, private and writable): the name, then zeros.
            let (p, len) = (args.start as *mut u8, args.end - args.start);
            let n = NAME.len().min(len);
            ptr::copy_nonoverlapping(NAME.as_ptr(), p, n);
            ptr::write_bytes(p.add(n), 0, len - n);
        }
        let mut info: libc::siginfo_t = std::mem::zeroed();
        loop {
            let sig = libc::sigwaitinfo(&all, &mut info);
            if sig < 0 {
                continue;
            }
            if sig != libc::SIGCHLD {
                libc::kill(pid, sig);
                continue;
            }
            loop {
                let mut status = 0;
                let r = libc::waitpid(-1, &mut status, libc::WNOHANG);
                if r <= 0 {
                    break;
                }
                if r == pid {
                    let code = if libc::WIFSIGNALED(status) {
                        128 + libc::WTERMSIG(status)
                    } else {
                        libc::WEXITSTATUS(status)
                    };
                    libc::_exit(code);
                }
            }
        }
    }
}
