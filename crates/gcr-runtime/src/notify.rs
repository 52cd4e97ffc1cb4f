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
    const SPACE: usize = 24; // CMSG_SPACE(sizeof(int)) on 64-bit Linux
    #[repr(C, align(8))]
    struct Cmsg([u8; SPACE]);
    let mut cbuf = Cmsg([0; SPACE]);
    let mut byte = [b'F'];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: msghdr is plain data; its pointers refer to the stack buffers above, which
    // outlive the sendmsg; the control buffer holds one cmsg with one int.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) as _;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>(), fd);
        let ok = libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) == 1;
        libc::close(fd);
        ok
    }
}

/// Runtime side, once the process has reached its hold or execve (so it has sent by
/// then, if it loaded a filter): the listener descriptor, if one came.
pub(crate) fn parent_recv(sock: &OwnedFd) -> Option<OwnedFd> {
    let mut cbuf = [0u64; 4];
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: as in `child_send`; recvmsg fills the buffers above, and a received
    // descriptor (MSG_CMSG_CLOEXEC) becomes ours.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
        let n = libc::recvmsg(
            sock.as_raw_fd(),
            &mut msg,
            libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC,
        );
        if n != 1 {
            return None;
        }
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_level != libc::SOL_SOCKET || (*c).cmsg_type != libc::SCM_RIGHTS
        {
            return None;
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
        (fd >= 0).then(|| OwnedFd::from_raw_fd(fd))
    }
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
