//! `--console-socket`: the pty master of a container with `process.terminal` is sent over
//! the given unix socket with SCM_RIGHTS (what runc does and containerd's shim expects).

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::OciError;

/// Connects to `socket` and sends `master` (with the name "/dev/ptmx" as the payload).
pub(crate) fn send_master(socket: &Path, master: &OwnedFd) -> Result<(), OciError> {
    send_fd(
        socket,
        b"/dev/ptmx",
        master,
        "cannot connect to the console socket",
        "cannot send the terminal over the console socket",
    )
}

/// Connects to the unix socket `path` and sends `payload` with `fd` attached (SCM_RIGHTS):
/// the console socket's terminal and the seccomp agent's listener. `connect` and `send`
/// say what failed.
pub(crate) fn send_fd(
    path: &Path,
    payload: &[u8],
    fd: &OwnedFd,
    connect: &'static str,
    send: &'static str,
) -> Result<(), OciError> {
    let stream = UnixStream::connect(path).map_err(|e| OciError::io(connect, path, e))?;
    let iov = [IoSlice::new(payload)];
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) } as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    // SAFETY: msghdr is plain data; its pointers refer to the live buffers above, and the
    // control buffer (8-byte aligned) holds one cmsg with one int.
    let n = unsafe {
        let mut m: libc::msghdr = std::mem::zeroed();
        m.msg_iov = iov.as_ptr() as *mut libc::iovec;
        m.msg_iovlen = 1;
        m.msg_control = cbuf.as_mut_ptr().cast();
        m.msg_controllen = space as _;
        let c = libc::CMSG_FIRSTHDR(&m);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>(), fd.as_raw_fd());
        libc::sendmsg(stream.as_raw_fd(), &m, libc::MSG_NOSIGNAL)
    };
    if n < 0 || n as usize != payload.len() {
        return Err(OciError::io(send, path, std::io::Error::last_os_error()));
    }
    Ok(())
}
