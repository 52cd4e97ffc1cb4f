//! The housekeeper's door: a unix socket through which a foreground `gcr run` hands work
//! to the lingering housekeeper (the trash reaper, see [`crate::trash`]) instead of doing it
//! on its own path.
//!
//! - `N`: the housekeeper answers with a fresh loopback-only network namespace (one descriptor),
//!   made ahead on its own time; `-` when it has none. Every namespace is new and handed out
//!   once, exactly what `--network none` makes itself otherwise.
//! - `H` + descriptors: the housekeeper holds them (a container's mount namespace) until the
//!   connection closes. The last reference to a container's mount tree then goes away in
//!   the housekeeper, after the run has returned, not in the container's exit (its unmounts
//!   wait for RCU grace periods). A housekeeper that leaves earlier (it does not stay for
//!   its connections) only gives the teardown back to the container's exit.
//!
//! - `R` + a new container's row (JSON): the housekeeper checks the image the run started
//!   from and stores the row, on its warm database connection; `r` + the outcome.
//!   A run from the image cache sends its row before it starts the container (stored
//!   `created`) and then `S` + the start (no answer): the row is stored while the
//!   container is set up instead of holding it back.
//! - `M` + a container's root (layers, upper and work directories): the housekeeper makes
//!   the directories and the overlay as a detached mount and answers `m` with its
//!   descriptor (`m` without one: the run mounts it the usual way).
//! - `X` + a container's exit: recorded the same way; `x` + the outcome.
//!
//! The socket is abstract, named after the protocol version and the store root. Each side
//! checks that the other runs as its own user; anything unexpected makes the client do the
//! work itself, as without a housekeeper.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};
use sha2::Digest;

use gcr_runtime::LoopbackNetns;
use gcr_store::Store;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::container::premount::Premount;
use crate::container::rows::{self, Exit, NewRow, Stored, WireError};

/// The protocol's version, part of the socket's name: a run only ever talks to a
/// housekeeper that knows its messages (one from another gcr version lingering through an
/// upgrade is simply not found). Bump it whenever a message changes.
const PROTOCOL: u32 = 2;
/// How long a client waits for an answer before doing the work itself.
const ANSWER_MS: i32 = 5;
/// Largest message body (a container row is a few kilobytes).
const MAX_BODY: usize = 64 * 1024;
/// Descriptors accepted in one `H` message.
const MAX_FDS: usize = 4;
/// Network namespaces kept made ahead.
const POOL: usize = 2;
/// Connections served at once; more are refused (their runs do the work themselves).
const MAX_CLIENTS: usize = 256;

fn address(root: &Path) -> Option<SocketAddrUnix> {
    use std::os::unix::ffi::OsStrExt;
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let digest = sha2::Sha256::digest(root.as_os_str().as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    SocketAddrUnix::new_abstract_name(format!("gcr-housekeeper-{PROTOCOL}-{hex}").as_bytes()).ok()
}

fn seqpacket() -> Option<OwnedFd> {
    rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .ok()
}

/// True when the peer of `fd` runs as our effective user.
fn same_user(fd: BorrowedFd<'_>) -> bool {
    rustix::net::sockopt::socket_peercred(fd).is_ok_and(|c| c.uid == rustix::process::geteuid())
}

fn poll_in(fd: BorrowedFd<'_>, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll on one pollfd on our stack.
    unsafe { libc::poll(&mut p, 1, ms) > 0 }
}

fn send(fd: BorrowedFd<'_>, tag: u8, fds: &[BorrowedFd<'_>]) -> bool {
    send_with(fd, tag, &[], fds)
}

fn send_with(fd: BorrowedFd<'_>, tag: u8, body: &[u8], fds: &[BorrowedFd<'_>]) -> bool {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return false;
    }
    let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
    let tag = [tag];
    let iov = [IoSlice::new(&tag), IoSlice::new(body)];
    rustix::net::sendmsg(fd, &iov, &mut control, flags).is_ok_and(|n| n == 1 + body.len())
}

/// What one receive gave.
enum Recv {
    Msg(u8, Vec<u8>, Vec<OwnedFd>),
    /// Nothing to read yet.
    Again,
    /// End of the connection, or an error.
    Closed,
}

/// Receives one message: its tag and the descriptors it carried.
fn recv(fd: BorrowedFd<'_>) -> Recv {
    let mut tag = [0u8; 1];
    let mut body = vec![0u8; MAX_BODY];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let flags = RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC;
    let mut iov = [IoSliceMut::new(&mut tag), IoSliceMut::new(&mut body)];
    let got = rustix::net::recvmsg(fd, &mut iov, &mut control, flags);
    let mut fds = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(it) = m {
            fds.extend(it);
        }
    }
    match got {
        Ok(m)
            if m.bytes >= 1 && m.bytes <= 1 + MAX_BODY && !m.flags.contains(ReturnFlags::TRUNC) =>
        {
            body.truncate(m.bytes - 1);
            Recv::Msg(tag[0], body, fds)
        }
        Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => Recv::Again,
        _ => Recv::Closed,
    }
}

/// An answer: its tag, its body and the descriptors that came with it.
type Answer = (u8, Vec<u8>, Vec<OwnedFd>);

/// A run's connection to the housekeeper of its store.
pub struct Client {
    fd: OwnedFd,
    /// Answers read while waiting for another one (answers come in the order of the
    /// requests, which is not always the order they are needed in).
    early: std::sync::Mutex<Vec<Answer>>,
    /// A namespace was asked for and the answer is yet to be read.
    asked: std::sync::atomic::AtomicBool,
}

impl Client {
    /// Connects to the housekeeper of the store at `root` when one is there, and asks it
    /// for a network namespace when `want_netns` (the answer is read by [`Client::netns`]).
    pub fn connect(root: &Path, want_netns: bool) -> Option<Client> {
        let addr = address(root)?;
        let fd = seqpacket()?;
        rustix::net::connect(&fd, &addr).ok()?;
        if !same_user(fd.as_fd()) {
            return None;
        }
        let asked = want_netns && send(fd.as_fd(), b'N', &[]);
        Some(Client {
            fd,
            early: std::sync::Mutex::new(Vec::new()),
            asked: asked.into(),
        })
    }

    /// The loopback-only network namespace asked for at connect, if the housekeeper had one.
    pub fn netns(&self) -> Option<OwnedFd> {
        let asked = self.asked.swap(false, std::sync::atomic::Ordering::Relaxed);
        if !asked {
            return None;
        }
        let waiting = self
            .early
            .lock()
            .is_ok_and(|e| e.iter().any(|(t, ..)| *t == b'N'));
        if !waiting && !poll_in(self.fd.as_fd(), ANSWER_MS) {
            return None;
        }
        let (_, mut fds) = self.answer_with_fds(b'N')?;
        let fd = fds.pop().filter(|_| fds.is_empty())?;
        // Only ever join what is a network namespace.
        // SAFETY: NS_GET_NSTYPE takes no argument and only inspects the descriptor.
        let kind = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) };
        (kind == libc::CLONE_NEWNET).then_some(fd)
    }

    /// Sends a request and waits for its answer (as long as it takes: an answer that is
    /// not waited for could still commit). None when the housekeeper is gone.
    fn ask<Q: Serialize, A: DeserializeOwned>(&self, tag: u8, q: &Q) -> Option<A> {
        if !send_json(self.fd.as_fd(), tag, q) {
            return None;
        }
        self.answer(tag.to_ascii_lowercase())
    }

    /// Waits for the answer tagged `tag` (as long as it takes: an answer that is not
    /// waited for could still commit). None when the housekeeper is gone.
    fn answer<A: DeserializeOwned>(&self, tag: u8) -> Option<A> {
        self.answer_with_fds(tag)
            .and_then(|(body, _)| serde_json::from_slice(&body).ok())
    }

    /// [`Client::answer`] with the descriptors that came with it.
    fn answer_with_fds(&self, tag: u8) -> Option<(Vec<u8>, Vec<OwnedFd>)> {
        if let Ok(mut early) = self.early.lock() {
            if let Some(i) = early.iter().position(|(t, ..)| *t == tag) {
                let (_, body, fds) = early.remove(i);
                return Some((body, fds));
            }
        }
        loop {
            if !poll_in(self.fd.as_fd(), -1) {
                continue;
            }
            match recv(self.fd.as_fd()) {
                Recv::Msg(t, body, fds) if t == tag => return Some((body, fds)),
                Recv::Msg(t, body, fds) => {
                    if let Ok(mut early) = self.early.lock() {
                        early.push((t, body, fds));
                    }
                }
                Recv::Again => continue,
                Recv::Closed => return None,
            }
        }
    }

    /// Asks for a container's root overlay, made ahead ([`Client::premounted`] reads it).
    pub(crate) fn send_premount(&self, p: &Premount) -> bool {
        send_json(self.fd.as_fd(), b'M', p)
    }

    /// The overlay asked for with [`Client::send_premount`], as a detached mount.
    pub(crate) fn premounted(&self) -> Option<OwnedFd> {
        let (_, mut fds) = self.answer_with_fds(b'm')?;
        let fd = fds.pop().filter(|_| fds.is_empty())?;
        // Only ever attach a mount: fsmount descriptors are O_PATH files of a mount root.
        let st = rustix::fs::fstat(&fd).ok()?;
        (rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory)
            .then_some(fd)
    }

    /// Has the housekeeper store a new container's row ([`rows::store_new`]).
    pub(crate) fn store_new(&self, req: &NewRow) -> Option<Result<Stored, WireError>> {
        self.ask(b'R', req)
    }

    /// Sends a new container's row to be stored; [`Client::stored_new`] reads the answer.
    pub(crate) fn send_new(&self, req: &NewRow) -> bool {
        send_json(self.fd.as_fd(), b'R', req)
    }

    /// The answer to [`Client::send_new`]; None when the housekeeper is gone.
    pub(crate) fn stored_new(&self) -> Option<Result<Stored, WireError>> {
        self.answer(b'r')
    }

    /// Waits until the housekeeper has handled everything sent before (a no-op round
    /// trip), so that the store can be used here without racing it.
    pub(crate) fn flush(&self) {
        let _: Option<()> = self.ask(b'P', &());
    }

    /// Records that a row stored `created` runs; there is no answer (the housekeeper
    /// handles its connection's messages in order, so a later exit comes after it).
    pub(crate) fn started(&self, s: &rows::Started) -> bool {
        send_json(self.fd.as_fd(), b'S', s)
    }

    /// Has the housekeeper record a container's exit ([`rows::store_exit`]).
    pub(crate) fn store_exit(&self, e: &Exit) -> Option<Result<(), WireError>> {
        self.ask(b'X', e)
    }

    /// Hands `fds` to the housekeeper, which holds them until this connection closes.
    pub fn hold(&self, fds: &[BorrowedFd<'_>]) -> bool {
        send(self.fd.as_fd(), b'H', fds)
    }
}

/// Sends `v` as JSON under `tag` (a request or an answer); false when the peer is gone.
fn send_json<T: Serialize + ?Sized>(fd: BorrowedFd<'_>, tag: u8, v: &T) -> bool {
    serde_json::to_vec(v).is_ok_and(|b| send_with(fd, tag, &b, &[]))
}

/// `NS_GET_NSTYPE` of linux/nsfs.h: `_IO(0xb7, 0x3)`.
const NS_GET_NSTYPE: libc::Ioctl = 0xb703;

/// One connected run.
struct Conn {
    fd: OwnedFd,
    held: Vec<OwnedFd>,
    /// Root overlays made for this run (with their directories): when it ends without
    /// having stored the container, the directories go (see `Server::forget`).
    made: Vec<Premount>,
}

/// The housekeeper's side: a listening socket, its connections and a namespace made ahead.
pub struct Server {
    root: std::path::PathBuf,
    listener: OwnedFd,
    conns: Vec<Conn>,
    /// Namespaces made ahead, oldest first (the oldest is the likeliest to be done).
    pool: std::collections::VecDeque<LoopbackNetns>,
}

impl Server {
    /// Listens on the store's address; None when another process already does.
    pub fn bind(root: &Path) -> Option<Server> {
        let addr = address(root)?;
        let listener = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None,
        )
        .ok()?;
        rustix::net::bind(&listener, &addr).ok()?;
        rustix::net::listen(&listener, 64).ok()?;
        // The first run of a burst asks at once: have a namespace on the way.
        Some(Server {
            root: root.to_path_buf(),
            listener,
            conns: Vec::new(),
            pool: std::iter::once(LoopbackNetns::start()).collect(),
        })
    }

    /// Descriptors to poll for input: the listener, then each connection.
    pub fn poll_fds(&self) -> Vec<libc::pollfd> {
        std::iter::once(&self.listener)
            .chain(self.conns.iter().map(|c| &c.fd))
            .map(|fd| libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect()
    }

    /// Handles what `poll` reported on the descriptors of [`Server::poll_fds`] (same order).
    /// Returns what closed connections held, for the caller to close off its own path.
    pub fn serve(&mut self, ready: &[libc::pollfd], store: Option<&Store>) -> Vec<OwnedFd> {
        let mut gone = Vec::new();
        for (i, p) in ready.iter().enumerate().skip(1) {
            if p.revents == 0 {
                continue;
            }
            if !self.answer(i - 1, store) {
                gone.push(i - 1);
            }
        }
        // What a closed connection held: the last reference to a container's mounts.
        let mut held = Vec::new();
        for i in gone.into_iter().rev() {
            let mut c = self.conns.swap_remove(i);
            held.append(&mut c.held);
            self.forget(&c.made, store);
        }
        if ready.first().is_some_and(|p| p.revents != 0) {
            self.accept();
        }
        // One more at a time, while no run is going on: back-to-back runs then find one
        // made during an earlier gap.
        if self.conns.is_empty() && self.pool.len() < POOL {
            self.pool.push_back(LoopbackNetns::start());
        }
        held
    }

    /// A run ended: the directories made for containers it never stored go to the trash.
    /// Containers it stored look after themselves.
    fn forget(&self, made: &[Premount], store: Option<&Store>) {
        for p in made {
            let dir = &p.dir;
            let Some(id) = dir.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if *dir != self.root.join("containers").join(id) || !dir.exists() {
                continue;
            }
            if store.is_none_or(|s| crate::container::record::find(s.conn(), id).is_ok()) {
                continue;
            }
            let _ = std::fs::rename(dir, self.root.join("trash").join(id));
        }
    }

    fn accept(&mut self) {
        while let Ok(fd) =
            rustix::net::accept_with(&self.listener, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK)
        {
            if self.conns.len() < MAX_CLIENTS && same_user(fd.as_fd()) {
                self.conns.push(Conn {
                    fd,
                    held: Vec::new(),
                    made: Vec::new(),
                });
            }
        }
    }

    /// Reads and answers one message of connection `i`; false when it is closed.
    fn answer(&mut self, i: usize, store: Option<&Store>) -> bool {
        let fd = self.conns[i].fd.as_fd();
        match recv(fd) {
            Recv::Msg(b'N', ..) => {
                // The next one is made once no run is going on (see `serve`): made now, it
                // would compete with this run for the CPU. Without one, the answer carries
                // no descriptor (the run then makes its own).
                let ns = self
                    .pool
                    .pop_front()
                    .unwrap_or_else(LoopbackNetns::start)
                    .wait()
                    .ok();
                let ns: Vec<BorrowedFd<'_>> = ns.iter().map(AsFd::as_fd).collect();
                send(fd, b'N', &ns)
            }
            Recv::Msg(b'H', _, fds) => {
                if self.conns[i].held.len() + fds.len() <= MAX_FDS * 4 {
                    self.conns[i].held.extend(fds);
                }
                true
            }
            Recv::Msg(b'R', body, _) => {
                let res = match (serde_json::from_slice::<NewRow>(&body), store) {
                    (Ok(req), Some(st)) => rows::store_new(st, req).map_err(WireError::from),
                    _ => Err(WireError::Other("the housekeeper cannot store it".into())),
                };
                send_json(fd, b'r', &res)
            }
            Recv::Msg(b'P', ..) => send_json(fd, b'p', &()),
            Recv::Msg(b'M', body, _) => {
                let p = serde_json::from_slice::<Premount>(&body).ok();
                let mount = p.as_ref().and_then(Premount::make);
                let mount: Vec<BorrowedFd<'_>> = mount.iter().map(AsFd::as_fd).collect();
                let sent = send(fd, b'm', &mount);
                self.conns[i].made.extend(p);
                sent
            }
            Recv::Msg(b'S', body, _) => {
                // No answer: a failure leaves the row `created`, as the exit will show.
                if let (Ok(st), Some(store)) =
                    (serde_json::from_slice::<rows::Started>(&body), store)
                {
                    let _ = rows::store_started(store, &st);
                }
                true
            }
            Recv::Msg(b'X', body, _) => {
                let res = match (serde_json::from_slice::<Exit>(&body), store) {
                    (Ok(e), Some(st)) => rows::store_exit(st, &e).map_err(WireError::from),
                    _ => Err(WireError::Other("the housekeeper cannot record it".into())),
                };
                send_json(fd, b'x', &res)
            }
            Recv::Msg(..) | Recv::Again => true,
            Recv::Closed => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    fn root_or_skip(test: &str) -> bool {
        if rustix::process::geteuid().is_root() {
            return true;
        }
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{test}: needs root, and skipping is not allowed when CI=true"
        );
        eprintln!("skipped {test}: needs root");
        false
    }

    /// Serves `server` until `done` is set.
    fn serve_until(server: &mut Server, done: &std::sync::atomic::AtomicBool) {
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            let mut fds = server.poll_fds();
            // SAFETY: poll on a vector of pollfds we own, with its length.
            if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 10) } > 0 {
                server.serve(&fds, None);
            }
        }
    }

    fn ns_inode(fd: BorrowedFd<'_>) -> u64 {
        rustix::fs::fstat(fd).unwrap().st_ino
    }

    #[test]
    fn serves_fresh_network_namespaces_and_holds_descriptors_until_close() {
        if !root_or_skip("serves_fresh_network_namespaces_and_holds_descriptors_until_close") {
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let mut server = Server::bind(root.path()).expect("bind");
        assert!(
            Server::bind(root.path()).is_none(),
            "a second housekeeper of the same store must not listen"
        );
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| serve_until(&mut server, &done));
            let ours = std::fs::File::open("/proc/self/ns/net").unwrap();
            let mut seen = Vec::new();
            for _ in 0..2 {
                let c = Client::connect(root.path(), true).expect("connect");
                let ns = c.netns().expect("a namespace");
                let ino = ns_inode(ns.as_fd());
                assert_ne!(ino, ns_inode(ours.as_fd()), "not the host's namespace");
                assert!(!seen.contains(&ino), "each namespace is handed out once");
                seen.push(ino);
            }
            // A client that did not ask gets nothing.
            let c = Client::connect(root.path(), false).expect("connect");
            assert!(c.netns().is_none());
            // Held until the connection closes: the pipe's write end stays open till then.
            let mut fds = [0; 2];
            // SAFETY: pipe2 fills a two-element array.
            assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
            // SAFETY: pipe2 returned two fresh descriptors that we now own.
            let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            assert!(c.hold(&[w.as_fd()]));
            drop(w);
            assert!(
                !poll_in(r.as_fd(), 200),
                "EOF while the housekeeper holds it"
            );
            drop(c);
            assert!(
                poll_in(r.as_fd(), 2000),
                "no EOF after the connection closed"
            );
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
    }

    #[test]
    fn no_housekeeper_means_no_connection() {
        let root = tempfile::tempdir().unwrap();
        assert!(Client::connect(root.path(), true).is_none());
    }
}
