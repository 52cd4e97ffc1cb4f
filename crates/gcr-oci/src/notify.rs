//! `linux.seccomp.listenerPath`: the listener descriptor of a filter with `SCMP_ACT_NOTIFY`
//! goes to the agent listening there, as the runtime spec says and runc does — one
//! connection, one message: the container process state (`ociVersion`, `fds`
//! `["seccompFd"]`, `pid`, `metadata` from `listenerMetadata`, `state`) as JSON with the
//! descriptor attached (SCM_RIGHTS).

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::hooks::Doc;
use crate::OciError;

/// The message for the agent: the process state with the container's (`doc`, `status`).
pub(crate) fn state_json(doc: &Doc, status: &str, pid: i32, metadata: Option<&str>) -> Vec<u8> {
    let state: serde_json::Value =
        serde_json::from_slice(&doc.json(status, pid)).unwrap_or_default();
    let mut v = serde_json::json!({
        "ociVersion": crate::state::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state,
    });
    if let Some(m) = metadata.filter(|m| !m.is_empty()) {
        v["metadata"] = m.into();
    }
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Connects to `path` and sends `msg` with `fd`.
pub(crate) fn send(path: &Path, msg: &[u8], fd: &OwnedFd) -> Result<(), OciError> {
    let what = "cannot send the seccomp listener to linux.seccomp.listenerPath";
    let stream = UnixStream::connect(path).map_err(|e| OciError::io(what, path, e))?;
    let iov = [IoSlice::new(msg)];
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
    if n < 0 || n as usize != msg.len() {
        return Err(OciError::io(what, path, std::io::Error::last_os_error()));
    }
    Ok(())
}
