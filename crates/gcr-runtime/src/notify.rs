//! Seccomp user notification (`SCMP_ACT_NOTIFY`): the container process loads its filter
//! with SECCOMP_FILTER_FLAG_NEW_LISTENER and sends the listener descriptor the kernel
//! gives it to the runtime side over a socket pair made before clone (SCM_RIGHTS); the
//! runtime side hands it on (gcr-runc sends it to the config's `listenerPath`). The
//! process does not wait: a notified syscall blocks until someone answers it, and the
//! runtime side holds a copy of the descriptor until it is passed on.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::RuntimeError;

/// The socket pair: (runtime side, process side).
pub(crate) fn channel() -> Result<(OwnedFd, OwnedFd), RuntimeError> {
    let mut fds = [0; 2];
    // SAFETY: fds is a two-element array for socketpair to fill.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(RuntimeError::sys("socketpair for the seccomp listener"));
    }
    // SAFETY: socketpair returned two fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Process side, after fork: sends `fd` over `sock` and closes it. No allocation. Returns
/// false when the send failed.
pub(crate) fn child_send(sock: RawFd, fd: RawFd) -> bool {
    let ok = crate::sys::send_fd(sock, fd);
    // SAFETY: close(2) of the listener descriptor the kernel gave this process.
    unsafe { libc::close(fd) };
    ok
}

/// Runtime side, once the process has reached its hold or execve (so it has sent by
/// then, if it loaded a filter): the listener descriptor, if one came.
pub(crate) fn parent_recv(sock: &OwnedFd) -> Option<OwnedFd> {
    crate::sys::recv_fd(sock.as_raw_fd(), libc::MSG_DONTWAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descriptor_crosses_the_pair() {
        let (parent, child) = channel().unwrap();
        assert!(parent_recv(&parent).is_none(), "nothing sent yet");
        let f = std::fs::File::open("/proc/self/status").unwrap();
        let raw = std::os::fd::IntoRawFd::into_raw_fd(f);
        assert!(child_send(child.as_raw_fd(), raw));
        let got = parent_recv(&parent).expect("a descriptor");
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(got), &mut s).unwrap();
        assert!(s.starts_with("Name:"), "{s}");
    }
}
