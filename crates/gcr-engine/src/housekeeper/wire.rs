//! The housekeeper's wire: where its socket lives, who may connect, and the typed messages.
//!
//! The socket is a filesystem `SOCK_SEQPACKET` socket in `<run dir>/housekeeper/`, a
//! directory only its owner (root) can enter, named after the protocol version and a hash
//! of the store root. Never an abstract socket: those belong to the network namespace,
//! so every `--network host` container would reach them. A container's mount namespace
//! does not have the run dir, so no container can find the socket; both sides also check
//! the other's credentials (same user, and for the housekeeper the same mount namespace).
//!
//! One message per packet: a JSON [`Envelope`] of a [`Request`] or an [`Answer`], with a
//! sequence number that pairs them, and descriptors as `SCM_RIGHTS`. A message larger than
//! [`MAX_BODY`] is refused by the sender; one that arrives truncated is answered with
//! [`Answer::Refused`] and changes nothing.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::container::premount::Premount;
use crate::container::rows::{Exit, NewRow, Started, Stored, WireError};

/// The protocol's version, part of the socket's name and of every message: a run only
/// ever talks to a housekeeper that knows its messages. Bump it whenever a message changes.
pub(super) const PROTOCOL: u32 = 3;
/// Largest message (a container row is a few kilobytes; a larger one is not sent, the run
/// then stores it itself).
pub(super) const MAX_BODY: usize = 64 * 1024;
/// Descriptors accepted in one message.
pub(super) const MAX_FDS: usize = 4;

/// What a run asks of the housekeeper.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// A fresh loopback-only network namespace (answered with [`Answer::Netns`]).
    Netns,
    /// Hold the attached descriptors (mount namespaces) until the connection closes.
    Hold,
    /// Make this container's directories and root overlay ([`Answer::Premounted`]).
    Premount(Premount),
    /// Store a new container's row ([`Answer::Stored`]).
    Store(NewRow),
    /// A row this connection stored now runs (no answer).
    Started(Started),
    /// Record the exit of a container this connection holds ([`Answer::Exited`]).
    Exit(Exit),
    /// A no-op round trip: everything sent before has been handled.
    Ping,
}

/// What the housekeeper answers.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Answer {
    /// With one descriptor, or none when it has no namespace.
    Netns,
    /// With the detached mount, or none when it could not make it.
    Premounted,
    Stored(Result<Stored, WireError>),
    Exited(Result<(), WireError>),
    Pong,
    /// The request was not acted on (too large, malformed, or about a container that is
    /// not the caller's); nothing changed.
    Refused(String),
}

/// A message and its sequence number (an answer carries its request's).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Envelope<T> {
    pub v: u32,
    pub seq: u32,
    pub msg: T,
}

/// The directory of the housekeepers' sockets under `run_dir`, made 0700 if missing.
/// None when it is not a directory that only we can enter (and cannot be made so).
fn socket_dir(run_dir: &Path, create: bool) -> Option<PathBuf> {
    let dir = run_dir.join("housekeeper");
    if create {
        let _ = std::fs::create_dir_all(run_dir);
        use std::os::unix::fs::DirBuilderExt;
        if let Err(e) = std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return None;
            }
        }
    }
    private_dir(&dir).then_some(dir)
}

/// Whether `dir` is a real directory (not a symlink) owned by us that nobody else can enter;
/// one of ours that others could is closed first.
pub(super) fn private_dir(dir: &Path) -> bool {
    let Ok(md) = std::fs::symlink_metadata(dir) else {
        return false;
    };
    if !md.file_type().is_dir() || md.uid() != rustix::process::geteuid().as_raw() {
        return false;
    }
    if md.mode() & 0o077 != 0 {
        return std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).is_ok();
    }
    true
}

/// The socket's path for the store at `root`: `<run_dir>/housekeeper/<hash>-p<PROTOCOL>.sock`.
pub(super) fn socket_path(root: &Path, run_dir: &Path, create: bool) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let digest = sha2::Sha256::digest(root.as_os_str().as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    let dir = socket_dir(run_dir, create)?;
    Some(dir.join(format!("{hex}-p{PROTOCOL}.sock")))
}

/// The address of `path` (None when it does not fit in `sun_path`).
pub(super) fn address(path: &Path) -> Option<SocketAddrUnix> {
    SocketAddrUnix::new(path).ok()
}

pub(super) fn seqpacket(flags: SocketFlags) -> Option<OwnedFd> {
    rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC | flags,
        None,
    )
    .ok()
}

/// The peer's pid when it runs as our effective user (SO_PEERCRED).
pub(super) fn peer_of_same_user(fd: BorrowedFd<'_>) -> Option<i32> {
    let c = rustix::net::sockopt::socket_peercred(fd).ok()?;
    (c.uid == rustix::process::geteuid()).then(|| c.pid.as_raw_nonzero().get())
}

/// The identity (device, inode) of a process's mount namespace.
fn mount_ns(pid: &str) -> Option<(u64, u64)> {
    let md = std::fs::metadata(format!("/proc/{pid}/ns/mnt")).ok()?;
    Some((md.dev(), md.ino()))
}

/// Whether process `pid` is in our mount namespace: a process in a container (another
/// mount namespace) is never served, even as root with the socket bind-mounted in.
pub(super) fn in_our_mount_ns(pid: i32) -> bool {
    match (mount_ns(&pid.to_string()), mount_ns("self")) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

pub(super) fn poll_in(fd: BorrowedFd<'_>, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll on one pollfd on our stack.
    unsafe { libc::poll(&mut p, 1, ms) > 0 }
}

/// Sends `msg` with `fds`; false when it is too large or the peer is gone.
pub(super) fn send<T: Serialize>(
    fd: BorrowedFd<'_>,
    seq: u32,
    msg: &T,
    fds: &[BorrowedFd<'_>],
) -> bool {
    let Ok(body) = serde_json::to_vec(&Envelope {
        v: PROTOCOL,
        seq,
        msg,
    }) else {
        return false;
    };
    if body.len() > MAX_BODY || fds.len() > MAX_FDS {
        return false;
    }
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return false;
    }
    let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
    let iov = [IoSlice::new(&body)];
    rustix::net::sendmsg(fd, &iov, &mut control, flags).is_ok_and(|n| n == body.len())
}

/// What one receive gave.
pub(super) enum Recv<T> {
    Msg(Envelope<T>, Vec<OwnedFd>),
    /// A message that cannot be read (too large, not ours): the reason; nothing to act on.
    Bad(String),
    /// Nothing to read yet.
    Again,
    /// End of the connection, or an error.
    Closed,
}

/// Receives one message and the descriptors it carried.
pub(super) fn recv<T: serde::de::DeserializeOwned>(fd: BorrowedFd<'_>) -> Recv<T> {
    let mut body = vec![0u8; MAX_BODY];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let flags = RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC;
    let mut iov = [IoSliceMut::new(&mut body)];
    let got = rustix::net::recvmsg(fd, &mut iov, &mut control, flags);
    let mut fds = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(it) = m {
            fds.extend(it);
        }
    }
    let m = match got {
        Ok(m) => m,
        Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => return Recv::Again,
        Err(_) => return Recv::Closed,
    };
    if m.flags.contains(ReturnFlags::TRUNC) {
        return Recv::Bad(format!(
            "a message over the limit of {} KiB was dropped",
            MAX_BODY / 1024
        ));
    }
    if m.flags.contains(ReturnFlags::CTRUNC) {
        return Recv::Bad(format!(
            "a message with more than {MAX_FDS} descriptors was dropped"
        ));
    }
    if m.bytes == 0 {
        // SEQPACKET: a zero-length read is the peer's hang-up.
        return Recv::Closed;
    }
    body.truncate(m.bytes);
    match serde_json::from_slice::<Envelope<T>>(&body) {
        Ok(e) if e.v == PROTOCOL => Recv::Msg(e, fds),
        Ok(e) => Recv::Bad(format!(
            "protocol version {} is not this housekeeper's {PROTOCOL}",
            e.v
        )),
        Err(e) => Recv::Bad(format!("a malformed message was dropped ({e})")),
    }
}

/// `NS_GET_NSTYPE` of linux/nsfs.h: `_IO(0xb7, 0x3)`.
const NS_GET_NSTYPE: libc::Ioctl = 0xb703;

/// The namespace type (`CLONE_NEW*`) of a namespace descriptor; None for anything else.
pub(super) fn ns_type(fd: BorrowedFd<'_>) -> Option<i32> {
    // SAFETY: NS_GET_NSTYPE takes no argument and only inspects the descriptor.
    let kind = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) };
    (kind > 0).then_some(kind)
}
