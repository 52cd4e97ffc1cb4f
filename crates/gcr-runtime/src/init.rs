//! `--init`: a tiny pid-1 reaper that runs in the container's first process itself, so no
//! init binary is needed in the image. It forks the user command, forwards signals to it,
//! reaps every zombie and exits with the command's status (128 + signal when it was killed).

use std::os::fd::RawFd;
use std::ptr;

use crate::error::Stage;
use crate::process::ProcessPlan;
use crate::sys::{child_fail, errno};

/// Runs in the container's pid 1 after all setup. Never returns.
pub(crate) fn run_reaper(errfd: RawFd, plan: &ProcessPlan) -> ! {
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
