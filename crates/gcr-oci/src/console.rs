//! `--console-socket`: the pty master of a container with `process.terminal` is sent over
//! the given unix socket with SCM_RIGHTS (what runc does and containerd's shim expects).

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::OciError;

/// Connects to `socket` and sends `master` (with the name "/dev/ptmx" as the payload).
pub(crate) fn send_master(socket: &Path, master: &OwnedFd) -> Result<(), OciError> {
    let stream = UnixStream::connect(socket)
        .map_err(|e| OciError::io("cannot connect to the console socket", socket, e))?;
    let payload = b"/dev/ptmx";
    let iov = [IoSlice::new(payload)];
    // SAFETY: CMSG_SPACE/CMSG_LEN only compute sizes.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) } as usize;
    let mut cbuf = vec![0u8; space];
    // SAFETY: msghdr is plain data; the pointers refer to live buffers above.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer holds one cmsg of CMSG_SPACE(int) bytes, as sized above.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>(), master.as_raw_fd());
    }
    // SAFETY: sendmsg on our connected socket with the message built above.
    let n = unsafe { libc::sendmsg(stream.as_raw_fd(), &msg, 0) };
    if n < 0 {
        return Err(OciError::io(
            "cannot send the terminal over the console socket",
            socket,
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}
