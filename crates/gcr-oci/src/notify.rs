//! `linux.seccomp.listenerPath`: the listener descriptor of a filter with `SCMP_ACT_NOTIFY`
//! goes to the agent listening there, as the runtime spec says and runc does — one
//! connection, one message: the container process state (`ociVersion`, `fds`
//! `["seccompFd"]`, `pid`, `metadata` from `listenerMetadata`, `state`) as JSON with the
//! descriptor attached (SCM_RIGHTS).

use std::os::fd::OwnedFd;
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
    crate::console::send_fd(path, msg, fd, what, what)
}
