//! Where the service listens and who may talk to it: `unix:///path` (the socket's directory
//! made or closed up root-only, 0700, or 0750 owned by `--group`; the socket 0600, or 0660
//! with the group; never an abstract socket) or `tcp://IP:PORT` (loopback only, unless the
//! service has `--tls`: then any address, every client with a certificate, see
//! [`crate::tls`]). Every unix connection's peer credentials (SO_PEERCRED) are checked: the
//! service's own uid, or a member of the group.

use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::errors::ApiError;

/// An address to serve on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl Host {
    /// The default: `unix:///run/gcr/gcr.sock`.
    pub fn default_unix() -> Host {
        Host::Unix(PathBuf::from("/run/gcr/gcr.sock"))
    }

    /// Parses `unix:///abs/path` or `tcp://IP:PORT` (`localhost` is 127.0.0.1); a TCP
    /// address that is not loopback is refused unless `tls` (client certificates required).
    pub fn parse(s: &str, tls: bool) -> Result<Host, ApiError> {
        if let Some(p) = s.strip_prefix("unix://") {
            let path = PathBuf::from(p);
            if !path.is_absolute() || path.file_name().is_none() {
                return Err(ApiError::BadHost(s.to_string()));
            }
            if tls {
                return Err(ApiError::TlsOnUnix(s.to_string()));
            }
            return Ok(Host::Unix(path));
        }
        if let Some(a) = s.strip_prefix("tcp://") {
            let a = a.trim_end_matches('/');
            let a = match a.strip_prefix("localhost:") {
                Some(port) => format!("127.0.0.1:{port}"),
                None => a.to_string(),
            };
            let addr: SocketAddr = a.parse().map_err(|_| ApiError::BadHost(s.to_string()))?;
            if !addr.ip().is_loopback() && !tls {
                return Err(ApiError::NotLoopback(s.to_string()));
            }
            return Ok(Host::Tcp(addr));
        }
        Err(ApiError::BadHost(s.to_string()))
    }
}

#[cfg(test)]
impl Host {
    fn parse_plain(s: &str) -> Result<Host, ApiError> {
        Host::parse(s, false)
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Unix(p) => write!(f, "unix://{}", p.display()),
            Host::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// Resolves `--group`: a group name from /etc/group or a numeric gid.
pub fn group_id(name: &str) -> Result<u32, ApiError> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    let text =
        std::fs::read_to_string("/etc/group").map_err(|e| ApiError::io("reading /etc/group", e))?;
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let n = f.next()?;
            let gid = f.nth(1)?.parse::<u32>().ok()?;
            (n == name).then_some(gid)
        })
        .next()
        .ok_or_else(|| ApiError::NoSuchGroup(name.to_string()))
}

/// Prepares the socket's directory and binds the socket with its permissions.
pub fn bind_unix(
    path: &Path,
    group: Option<u32>,
) -> Result<std::os::unix::net::UnixListener, ApiError> {
    let dir = path
        .parent()
        .ok_or_else(|| ApiError::BadHost(path.display().to_string()))?;
    let dir_mode = if group.is_some() { 0o750 } else { 0o700 };
    // A directory others share (sticky like /tmp, or readable or writable by others like
    // /run) is not taken over: closing it up would lock every other user out of it.
    if let Ok(meta) = std::fs::symlink_metadata(dir) {
        let mode = meta.mode();
        if meta.is_dir() && (mode & 0o1000 != 0 || mode & 0o006 != 0) {
            return Err(ApiError::io(
                format!(
                    "the socket directory {} is shared with other users (mode {:o}); give the socket a directory of its own in --host (gcr makes it root-only)",
                    dir.display(),
                    mode & 0o7777
                ),
                std::io::Error::from(std::io::ErrorKind::PermissionDenied),
            ));
        }
    }
    if let Err(e) = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(dir_mode)
        .create(dir)
    {
        return Err(ApiError::io(format!("creating {}", dir.display()), e));
    }
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| ApiError::io(format!("checking {}", dir.display()), e))?;
    let me = rustix::process::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != me {
        return Err(ApiError::io(
            format!(
                "the socket directory {} is not a directory owned by uid {me}; choose another --host",
                dir.display()
            ),
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        ));
    }
    let chown = |p: &Path| -> Result<(), ApiError> {
        if let Some(g) = group {
            std::os::unix::fs::lchown(p, None, Some(g))
                .map_err(|e| ApiError::io(format!("giving {} to gid {g}", p.display()), e))?;
        }
        Ok(())
    };
    chown(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(dir_mode))
        .map_err(|e| ApiError::io(format!("closing up {}", dir.display()), e))?;
    match std::fs::symlink_metadata(path) {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {
            std::fs::remove_file(path)
                .map_err(|e| ApiError::io(format!("removing the stale {}", path.display()), e))?;
        }
        Ok(_) => {
            return Err(ApiError::io(
                format!(
                    "{} exists and is not a socket; remove it or choose another --host",
                    path.display()
                ),
                std::io::Error::from(std::io::ErrorKind::AlreadyExists),
            ))
        }
        Err(_) => {}
    }
    let l = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| ApiError::io(format!("binding {}", path.display()), e))?;
    chown(path)?;
    let sock_mode = if group.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(sock_mode))
        .map_err(|e| ApiError::io(format!("setting the mode of {}", path.display()), e))?;
    Ok(l)
}

/// [`bind_unix`] as a tokio listener; `what` names the socket in errors.
pub fn unix_listener(
    path: &Path,
    group: Option<u32>,
    what: &str,
) -> Result<tokio::net::UnixListener, ApiError> {
    let l = bind_unix(path, group)?;
    l.set_nonblocking(true)
        .map_err(|e| ApiError::io(format!("setting up {what}"), e))?;
    tokio::net::UnixListener::from_std(l).map_err(|e| ApiError::io(format!("setting up {what}"), e))
}

/// Whether a unix peer may use the API: the service's own uid, or (with `group`) a member of
/// that group, by its primary gid or its supplementary groups.
pub fn peer_allowed(cred: &tokio::net::unix::UCred, group: Option<u32>) -> bool {
    let me = rustix::process::geteuid().as_raw();
    if cred.uid() == me || cred.uid() == 0 {
        return true;
    }
    let Some(g) = group else { return false };
    if cred.gid() == g {
        return true;
    }
    let Some(pid) = cred.pid() else { return false };
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .is_some_and(|gs| gs.split_whitespace().any(|x| x.parse() == Ok(g)))
}

/// A connection's peer, as a request's handler can ask about it: a duplicate of the
/// connection's socket (shared by its requests, closed with the last of them). A long
/// operation whose answer is quiet for a while (a build's RUN step) asks [`Peer::gone`]
/// whether the client still waits: hyper only notices a closed connection when it writes.
#[derive(Clone, Debug)]
pub(crate) struct Peer(std::sync::Arc<std::os::fd::OwnedFd>);

impl Peer {
    /// The peer of the connection on `fd` (None if it cannot be duplicated).
    pub(crate) fn of(fd: std::os::fd::BorrowedFd<'_>) -> Option<Peer> {
        fd.try_clone_to_owned()
            .ok()
            .map(|f| Peer(std::sync::Arc::new(f)))
    }

    /// True once the client has closed the connection or shut down its side of it (what
    /// dockerd, a Go server, takes as a client gone: its read of the connection ends).
    pub(crate) fn gone(&self) -> bool {
        self.poll() & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
    }

    /// True once the client has closed the connection both ways (on a unix socket: closed
    /// it). A hijacked attach's client half-closes when its stdin ends and still reads.
    pub(crate) fn closed(&self) -> bool {
        self.poll() & (libc::POLLHUP | libc::POLLERR) != 0
    }

    fn poll(&self) -> libc::c_short {
        use std::os::fd::AsRawFd;
        let mut p = libc::pollfd {
            fd: self.0.as_raw_fd(),
            events: libc::POLLRDHUP,
            revents: 0,
        };
        // SAFETY: poll of one pollfd on our stack, without waiting.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        if n > 0 {
            p.revents
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            Host::parse_plain("unix:///tmp/x/gcr.sock").unwrap(),
            Host::Unix("/tmp/x/gcr.sock".into())
        );
        assert_eq!(
            Host::parse_plain("tcp://localhost:2375").unwrap(),
            Host::Tcp("127.0.0.1:2375".parse().unwrap())
        );
        assert!(matches!(
            Host::parse_plain("tcp://0.0.0.0:2375"),
            Err(ApiError::NotLoopback(_))
        ));
        assert!(matches!(
            Host::parse_plain("tcp://192.168.1.2:2375"),
            Err(ApiError::NotLoopback(_))
        ));
        assert!(matches!(
            Host::parse_plain("unix://rel/path"),
            Err(ApiError::BadHost(_))
        ));
        assert!(matches!(
            Host::parse_plain("http://x"),
            Err(ApiError::BadHost(_))
        ));
        assert!(matches!(
            Host::parse_plain("unix://"),
            Err(ApiError::BadHost(_))
        ));
        assert_eq!(
            Host::parse("tcp://0.0.0.0:2376", true).unwrap(),
            Host::Tcp("0.0.0.0:2376".parse().unwrap())
        );
        assert!(matches!(
            Host::parse("unix:///tmp/x/gcr.sock", true),
            Err(ApiError::TlsOnUnix(_))
        ));
    }

    #[test]
    fn a_peer_is_gone_when_it_shuts_down_and_closed_when_it_closes() {
        use std::os::fd::AsFd;
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let peer = Peer::of(ours.as_fd()).unwrap();
        assert!(!peer.gone() && !peer.closed());
        theirs.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(
            peer.gone(),
            "a half-close is a client gone (as dockerd takes it)"
        );
        assert!(!peer.closed(), "a half-closed client still reads");
        drop(theirs);
        assert!(peer.gone() && peer.closed());
        // The duplicate keeps watching after the connection's own descriptor is closed.
        drop(ours);
        assert!(peer.closed());
    }
}
