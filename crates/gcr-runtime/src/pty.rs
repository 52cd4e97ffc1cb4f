//! Pseudo-terminals for `-it` (the pair itself is opened by the container's process on its own
//! devpts, see `stdio.rs`): [`relay`], which copies
//! the host terminal to the master and back, with the host tty in raw mode (restored on
//! every exit path by a guard) and window-size changes forwarded on SIGWINCH.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::RuntimeError;

/// Puts a terminal in raw mode and restores the saved settings when dropped.
pub struct RawModeGuard {
    fd: RawFd,
    saved: libc::termios,
}

impl RawModeGuard {
    /// Raw mode on `fd`; None when `fd` is not a terminal.
    pub fn new(fd: BorrowedFd<'_>) -> Option<RawModeGuard> {
        let fd = fd.as_raw_fd();
        // SAFETY: tcgetattr/tcsetattr on a caller-owned descriptor with stack structs.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut saved) != 0 {
                return None;
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            libc::tcsetattr(fd, libc::TCSANOW, &raw);
            Some(RawModeGuard { fd, saved })
        }
    }
}

impl Drop for RawModeGuard {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in new() on the same descriptor.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// The window size (rows, columns) of the terminal `fd`; None when it is not one or has
/// no size yet.
pub fn window_size(fd: RawFd) -> Option<(u16, u16)> {
    // SAFETY: TIOCGWINSZ into a zeroed stack struct.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        (libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_row > 0)
            .then_some((ws.ws_row, ws.ws_col))
    }
}

/// A signalfd that reads SIGWINCH, which is blocked in the calling thread (run the reader
/// in its own thread and leave SIGWINCH out of [`crate::signal_forwarder`]).
pub fn winch_signalfd() -> Result<OwnedFd, RuntimeError> {
    // SAFETY: signal mask and signalfd on stack data; the descriptor is owned below.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGWINCH);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(RuntimeError::sys("signalfd"));
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Copies the window size of `from` (a host tty) to `to` (the pty master).
pub fn copy_winsize(from: RawFd, to: RawFd) {
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ with a stack winsize.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Writes all of `buf` to `fd`, waiting for room on a non-blocking one (a caller's stdout
/// may be); false when it cannot (a closed reader).
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        // SAFETY: writing from a valid slice.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            match crate::sys::errno() {
                libc::EINTR => continue,
                libc::EAGAIN => {
                    let mut p = libc::pollfd {
                        fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    unsafe { libc::poll(&mut p, 1, -1) };
                    continue;
                }
                _ => return false,
            }
        }
        if n == 0 {
            return false;
        }
        buf = &buf[n as usize..];
    }
    true
}

/// Relays `input` -> master and master -> `output` until the container side closes.
///
/// `input` is put in raw mode when it is a terminal (restored on return, also on error) and
/// SIGWINCH resizes the pty. SIGWINCH is blocked in the calling thread and read from a
/// signalfd, so run the relay in its own thread and leave SIGWINCH out of
/// [`crate::signal_forwarder`] (pass `forward_winch = false`).
///
/// Without `input` (Docker's `-t` without `-i`) nothing is read and the window size comes
/// from `output`.
pub fn relay(
    master: OwnedFd,
    input: Option<BorrowedFd<'_>>,
    output: BorrowedFd<'_>,
) -> Result<(), RuntimeError> {
    relay_with(master, input, output, None)
}

/// Where [`relay_with`] hands the container's output.
pub type Tee<'a> = &'a mut dyn FnMut(&[u8]);

/// [`relay`], also handing everything the container writes to `tee` (a foreground run's
/// log). A failing `output` (a closed stdout) ends the relay as without a tee.
pub fn relay_with(
    master: OwnedFd,
    input: Option<BorrowedFd<'_>>,
    output: BorrowedFd<'_>,
    mut tee: Option<Tee<'_>>,
) -> Result<(), RuntimeError> {
    let _raw = input.and_then(RawModeGuard::new);
    let (m, o) = (master.as_raw_fd(), output.as_raw_fd());
    let i = input.map_or(o, |i| i.as_raw_fd());
    copy_winsize(i, m);
    let sfd = winch_signalfd()?;
    let mut input_open = input.is_some();
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: m,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if input_open { i } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: fds is a valid array of pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as _, -1) };
        if n < 0 {
            if crate::sys::errno() == libc::EINTR {
                continue;
            }
            return Err(RuntimeError::sys("poll on the pty"));
        }
        if fds[2].revents != 0 {
            let mut info = [0u8; 128];
            // SAFETY: reading one signalfd_siginfo into a stack buffer of its size.
            unsafe { libc::read(sfd.as_raw_fd(), info.as_mut_ptr().cast(), info.len()) };
            copy_winsize(i, m);
        }
        if fds[0].revents != 0 {
            // SAFETY: reading into a stack buffer.
            let r = unsafe { libc::read(m, buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                if r < 0 && crate::sys::errno() == libc::EINTR {
                    continue;
                }
                return Ok(()); // EIO: every slave descriptor is closed, the container is gone.
            }
            if let Some(t) = tee.as_mut() {
                t(&buf[..r as usize]);
            }
            if !write_all(o, &buf[..r as usize]) {
                return Ok(());
            }
        }
        if input_open && fds[1].revents != 0 {
            // SAFETY: reading into a stack buffer.
            let r = unsafe { libc::read(i, buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 || !write_all(m, &buf[..r as usize]) {
                input_open = false;
            }
        }
    }
}
