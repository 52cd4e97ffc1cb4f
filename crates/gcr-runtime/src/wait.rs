//! Waiting for a container process and forwarding the caller's signals to it while a
//! foreground `run` waits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::ExitStatus;
use crate::{sys, Running, RuntimeError};

/// Waits for the process of `r` to end and reaps it.
pub fn wait_exit(r: &Running) -> Result<ExitStatus, RuntimeError> {
    sys::waitpid(r.pid).map(ExitStatus::from_wait)
}

const FORWARDED: [libc::c_int; 7] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// Forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 (and SIGWINCH when asked) to a
/// container process until dropped.
///
/// The signals are blocked in the calling thread and taken by a helper thread with
/// sigwait; create the forwarder from the main thread before starting other threads so
/// that no thread runs the default action of a forwarded signal.
pub struct SignalForwarder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    old: libc::sigset_t,
}

/// Starts forwarding signals to `pid` (see [`SignalForwarder`]).
pub fn signal_forwarder(pid: i32, forward_winch: bool) -> Result<SignalForwarder, RuntimeError> {
    // SAFETY: sigset manipulation and pthread_sigmask on stack values.
    let (set, old) = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            if s != libc::SIGWINCH || forward_winch {
                libc::sigaddset(&mut set, s);
            }
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        (set, old)
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("gcr-signals".into())
        .spawn(move || loop {
            let mut sig = 0;
            // SAFETY: sigwait on a set blocked in this thread (inherited mask).
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                continue;
            }
            if flag.load(Ordering::SeqCst) {
                return;
            }
            // SAFETY: sending a signal to the container's pid.
            unsafe { libc::kill(pid, sig) };
        })
        .map_err(|e| RuntimeError::Sys {
            what: "starting the signal thread",
            source: e,
        })?;
    Ok(SignalForwarder {
        stop,
        thread: Some(thread),
        old,
    })
}

impl Drop for SignalForwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            use std::os::unix::thread::JoinHandleExt;
            // SAFETY: waking our own helper thread with a signal it waits for.
            unsafe { libc::pthread_kill(t.as_pthread_t() as _, libc::SIGUSR2) };
            let _ = t.join();
        }
        // SAFETY: restoring the mask saved at creation.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}
