//! Standard streams of a container process: inherit, given descriptors, or a new pty whose
//! master goes back to the caller. Prepared in the parent, wired up in the child.
//!
//! The pty is opened by the process itself on the container's own `/dev/ptmx` (its devpts
//! instance), as runc does: inside, `tty` names it (`/dev/pts/0`), which a pty of the
//! host's devpts cannot be there. The master comes back to the parent over a socket pair
//! (SCM_RIGHTS) before the command runs.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::error::Stage;
use crate::sys::{child_fail, errno};
use crate::{RuntimeError, Stdio};

/// Prepared stdio: the descriptors the child puts on 0, 1 and 2.
pub(crate) struct StdioPlan {
    fds: Option<[OwnedFd; 3]>,
    /// For a pty: the parent's end of the socket pair the master comes back on...
    pty_parent: Option<OwnedFd>,
    /// ...and the child's (the parent drops its copy once the child is cloned).
    pty_child: Option<OwnedFd>,
    /// The pty's window size before the command runs (`process.consoleSize`).
    console: Option<libc::winsize>,
    /// /dev/null on 0, 1 and 2 inherited ([`Stdio::NullStdin`]).
    null_stdin: bool,
}

fn devnull() -> Result<OwnedFd, RuntimeError> {
    // SAFETY: open of a static path; the descriptor is checked and then owned.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(RuntimeError::sys("opening /dev/null"));
    }
    // SAFETY: fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl StdioPlan {
    pub(crate) fn prepare(stdio: Stdio) -> Result<StdioPlan, RuntimeError> {
        Ok(match stdio {
            Stdio::NullStdin => StdioPlan {
                fds: None,
                pty_parent: None,
                pty_child: None,
                console: None,
                null_stdin: true,
            },
            Stdio::Inherit => StdioPlan {
                fds: None,
                pty_parent: None,
                pty_child: None,
                console: None,
                null_stdin: false,
            },
            Stdio::Fds {
                stdin,
                stdout,
                stderr,
            } => {
                let stdin = match stdin {
                    Some(f) => f,
                    None => devnull()?,
                };
                StdioPlan {
                    fds: Some([stdin, stdout, stderr]),
                    pty_parent: None,
                    pty_child: None,
                    console: None,
                    null_stdin: false,
                }
            }
            Stdio::Pty => {
                let mut sv = [0 as libc::c_int; 2];
                // SAFETY: socketpair into a two-element stack array; both ends are owned
                // below.
                if unsafe {
                    libc::socketpair(
                        libc::AF_UNIX,
                        libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                        0,
                        sv.as_mut_ptr(),
                    )
                } != 0
                {
                    return Err(RuntimeError::sys("socketpair for the pty"));
                }
                // SAFETY: fresh descriptors from socketpair.
                let (p, c) = unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) };
                StdioPlan {
                    fds: None,
                    pty_parent: Some(p),
                    pty_child: Some(c),
                    console: None,
                    null_stdin: false,
                }
            }
        })
    }

    /// Child side: new session, given descriptors onto 0, 1, 2 (a pty comes later, from
    /// [`StdioPlan::open_pty`]).
    pub(crate) fn apply(&self, errfd: RawFd) {
        // SAFETY: setsid/fcntl/dup2 on descriptors the parent prepared.
        unsafe {
            libc::setsid();
            if self.null_stdin {
                let n = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
                if n < 0 || (n != 0 && libc::dup2(n, 0) < 0) {
                    child_fail(errfd, Stage::Stdio as u32, errno());
                }
                if n != 0 {
                    libc::close(n);
                }
                return;
            }
            let Some(fds) = &self.fds else { return };
            // Move sources above 2 first so dup2 cannot clobber a source we still need.
            let mut raw = [0; 3];
            for (i, f) in fds.iter().enumerate() {
                raw[i] = libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3);
                if raw[i] < 0 {
                    child_fail(errfd, Stage::Stdio as u32, errno());
                }
            }
            for (i, r) in raw.iter().enumerate() {
                if libc::dup2(*r, i as i32) < 0 {
                    child_fail(errfd, Stage::Stdio as u32, errno());
                }
            }
        }
    }
}

impl StdioPlan {
    /// The window size a new pty gets before the command runs (from the spec's
    /// `process.consoleSize`).
    pub(crate) fn set_console(&mut self, size: Option<oci_spec::runtime::Box>) {
        self.console = size.map(|b| libc::winsize {
            ws_row: b.height().min(u16::MAX as u64) as u16,
            ws_col: b.width().min(u16::MAX as u64) as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        });
    }

    /// Descriptors a helper process must keep open until the final process takes them.
    pub(crate) fn raw_fds(&self) -> Vec<RawFd> {
        self.fds
            .as_ref()
            .map(|f| f.iter().map(|f| f.as_raw_fd()).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain(self.pty_child.as_ref().map(|c| c.as_raw_fd()))
            .collect()
    }

    /// The child's end of the pty's socket pair, which it must keep until it sends.
    pub(crate) fn pty_fd(&self) -> Option<RawFd> {
        self.pty_child.as_ref().map(|c| c.as_raw_fd())
    }

    /// Child side, in the container's mount namespace (after pivot_root for a new
    /// container): opens a pty on its `/dev/ptmx`, makes the slave the controlling terminal
    /// and 0, 1 and 2, and sends the master to the parent. Nothing without a pty.
    pub(crate) fn open_pty(&self, errfd: RawFd) {
        let Some(sock) = &self.pty_child else {
            return;
        };
        let fail = |e: i32| -> ! { child_fail(errfd, Stage::Stdio as u32, e) };
        // SAFETY: open/ioctl/dup2/sendmsg/close on descriptors made here, with stack
        // buffers for the control message; all async-signal-safe system calls.
        unsafe {
            let m = libc::open(
                c"/dev/ptmx".as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            );
            if m < 0 {
                fail(errno());
            }
            let unlock: libc::c_int = 0;
            if libc::ioctl(m, libc::TIOCSPTLCK, &unlock) != 0 {
                fail(errno());
            }
            let s = libc::ioctl(m, libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY);
            if s < 0 {
                fail(errno());
            }
            if libc::ioctl(s, libc::TIOCSCTTY, 0) != 0 {
                fail(errno());
            }
            if let Some(ws) = &self.console {
                libc::ioctl(s, libc::TIOCSWINSZ, ws);
            }
            for i in 0..3 {
                if libc::dup2(s, i) < 0 {
                    fail(errno());
                }
            }
            if s > 2 {
                libc::close(s);
            }
            if !crate::sys::send_fd(sock.as_raw_fd(), m) {
                fail(errno());
            }
            libc::close(m);
            libc::close(sock.as_raw_fd());
        }
    }

    /// Parent side, once the child is cloned: our copy of the child's end goes (so that a
    /// child that dies before sending is seen as gone).
    pub(crate) fn forget_child_end(&mut self) {
        self.pty_child = None;
    }

    /// Parent side, after the child reported success: the pty master it sent. None without
    /// a pty or when it sent none.
    pub(crate) fn master(&mut self) -> Option<OwnedFd> {
        let p = self.pty_parent.take()?;
        crate::sys::recv_fd(p.as_raw_fd(), 0)
    }
}
