//! The housekeeper's door: a unix socket through which a foreground `gcr run` hands work
//! to the lingering housekeeper (the trash reaper, see [`crate::trash`]) instead of doing it
//! on its own path.
//!
//! - [`Request::Netns`]: a fresh loopback-only network namespace (one descriptor), made
//!   ahead on the housekeeper's own time; none when it has none. Every namespace is new and
//!   handed out once, exactly what `--network none` makes itself otherwise.
//! - [`Request::Hold`] + mount namespace descriptors: held until the connection closes, so
//!   that the last reference to a container's mount tree goes away in the housekeeper,
//!   after the run has returned (its unmounts wait for RCU grace periods).
//! - [`Request::Premount`]: the container's upper and work directories and its root
//!   overlay, made as a detached mount and handed back. Every path is checked: the layers
//!   are the store's own snapshot or mountpoint directories, the container directory is a
//!   new one under `containers/`, all opened beneath the store root without following
//!   symlinks.
//! - [`Request::Store`], [`Request::Started`], [`Request::Exit`]: the run's row, its start
//!   and its exit, written on the housekeeper's warm database connection with the same
//!   functions the run would use itself ([`crate::container::rows`]); a row is only ever
//!   inserted, and a start or an exit is only accepted for a container that this
//!   connection stored or whose holder is the caller.
//!
//! Where the socket lives and who may connect: see [`wire`]. Anything unexpected (no
//! housekeeper, a refusal, no answer within [`ANSWER_TIMEOUT_MS`]) makes the run do the
//! work itself, as without a housekeeper.

mod server;
pub(crate) mod wire;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

pub use server::Server;
pub(crate) use wire::{Answer, Request};

use crate::container::premount::Premount;
use crate::container::rows::{self, Exit, NewRow, Stored, WireError};
use wire::{Envelope, Recv};

/// How long a client waits for a namespace before making its own.
const NETNS_MS: i32 = 5;
/// How long a client waits for any other answer before giving up on the housekeeper
/// (its writes are then checked and done on the run's own store).
pub(crate) const ANSWER_TIMEOUT_MS: i32 = 10_000;

/// A run's connection to the housekeeper of its store.
pub struct Client {
    fd: OwnedFd,
    next_seq: AtomicU32,
    /// Answers read while waiting for another one.
    early: Mutex<Vec<(u32, Answer, Vec<OwnedFd>)>>,
    /// The sequence number of the namespace request, when one is yet to be read.
    netns_seq: Mutex<Option<u32>>,
    /// The sequence number of the premount request, when one is yet to be read.
    premount_seq: Mutex<Option<u32>>,
    /// The sequence number of the row sent ahead, when its answer is yet to be read.
    store_seq: Mutex<Option<u32>>,
    /// Set once the housekeeper failed to answer in time: nothing more is asked.
    dead: AtomicBool,
}

impl Client {
    /// Connects to the housekeeper of the store at `root` (socket under `run_dir`) when one
    /// is there, and asks it for a network namespace when `want_netns`.
    pub fn connect(root: &Path, run_dir: &Path, want_netns: bool) -> Option<Client> {
        let path = wire::socket_path(root, run_dir, false)?;
        let addr = wire::address(&path)?;
        let fd = wire::seqpacket(rustix::net::SocketFlags::empty())?;
        rustix::net::connect(&fd, &addr).ok()?;
        wire::peer_of_same_user(fd.as_fd())?;
        let c = Client {
            fd,
            next_seq: AtomicU32::new(1),
            early: Mutex::new(Vec::new()),
            netns_seq: Mutex::new(None),
            premount_seq: Mutex::new(None),
            store_seq: Mutex::new(None),
            dead: AtomicBool::new(false),
        };
        if want_netns {
            let seq = c.send(&Request::Netns, &[]);
            *c.netns_seq.lock().ok()? = seq;
        }
        Some(c)
    }

    /// Sends a request; its sequence number, None when it could not be sent.
    fn send(&self, req: &Request, fds: &[BorrowedFd<'_>]) -> Option<u32> {
        if self.dead.load(Ordering::Relaxed) {
            return None;
        }
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        wire::send(self.fd.as_fd(), seq, req, fds).then_some(seq)
    }

    /// The loopback-only network namespace asked for at connect, if the housekeeper had one.
    pub fn netns(&self) -> Option<OwnedFd> {
        let seq = self.netns_seq.lock().ok()?.take()?;
        let waiting = self
            .early
            .lock()
            .is_ok_and(|e| e.iter().any(|(s, ..)| *s == seq));
        if !waiting && !wire::poll_in(self.fd.as_fd(), NETNS_MS) {
            // Not in time: the answer, when it comes, is kept and dropped with the client.
            return None;
        }
        let (Answer::Netns, mut fds) = self.answer(seq)? else {
            return None;
        };
        let fd = fds.pop().filter(|_| fds.is_empty())?;
        // Only ever join what is a network namespace.
        (wire::ns_type(fd.as_fd()) == Some(libc::CLONE_NEWNET)).then_some(fd)
    }

    /// Waits for the answer to request `seq`, at most [`ANSWER_TIMEOUT_MS`]. None when
    /// the housekeeper is gone, refused it or did not answer in time.
    fn answer(&self, seq: u32) -> Option<(Answer, Vec<OwnedFd>)> {
        if let Ok(mut early) = self.early.lock() {
            if let Some(i) = early.iter().position(|(s, ..)| *s == seq) {
                let (_, a, fds) = early.remove(i);
                return accept(a, fds);
            }
        }
        let deadline =
            std::time::Instant::now() + std::time::Duration::from_millis(ANSWER_TIMEOUT_MS as u64);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if self.dead.load(Ordering::Relaxed) || left.is_zero() {
                self.dead.store(true, Ordering::Relaxed);
                return None;
            }
            if !wire::poll_in(self.fd.as_fd(), left.as_millis().max(1) as i32) {
                continue;
            }
            match wire::recv::<Answer>(self.fd.as_fd()) {
                Recv::Msg(Envelope { seq: s, msg, .. }, fds) if s == seq => {
                    return accept(msg, fds)
                }
                Recv::Msg(Envelope { seq: 0, .. }, _) => {
                    // A message of ours could not be read: nothing more goes this way.
                    self.dead.store(true, Ordering::Relaxed);
                    return None;
                }
                Recv::Msg(Envelope { seq: s, msg, .. }, fds) => {
                    if let Ok(mut early) = self.early.lock() {
                        early.push((s, msg, fds));
                    }
                }
                Recv::Again => continue,
                Recv::Bad(_) | Recv::Closed => {
                    self.dead.store(true, Ordering::Relaxed);
                    return None;
                }
            }
        }
    }

    /// Asks for a container's root overlay, made ahead ([`Client::premounted`] reads it).
    pub(crate) fn send_premount(&self, p: &Premount) -> bool {
        let seq = self.send(&Request::Premount(p.clone()), &[]);
        pending(&self.premount_seq, seq)
    }

    /// The overlay asked for with [`Client::send_premount`], as a detached mount.
    pub(crate) fn premounted(&self) -> Option<OwnedFd> {
        let seq = self.premount_seq.lock().ok()?.take()?;
        let (Answer::Premounted, mut fds) = self.answer(seq)? else {
            return None;
        };
        let fd = fds.pop().filter(|_| fds.is_empty())?;
        // Only ever attach a mount: fsmount descriptors are O_PATH files of a mount root.
        let st = rustix::fs::fstat(&fd).ok()?;
        (rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory)
            .then_some(fd)
    }

    fn stored(&self, seq: u32) -> Option<Result<Stored, WireError>> {
        match self.answer(seq)? {
            (Answer::Stored(r), _) => Some(r),
            _ => None,
        }
    }

    /// Has the housekeeper store a new container's row ([`rows::store_new`]).
    pub(crate) fn store_new(&self, req: &NewRow) -> Option<Result<Stored, WireError>> {
        let seq = self.send(&Request::Store(req.clone()), &[])?;
        self.stored(seq)
    }

    /// Sends a new container's row to be stored; [`Client::stored_new`] reads the answer.
    pub(crate) fn send_new(&self, req: &NewRow) -> bool {
        let seq = self.send(&Request::Store(req.clone()), &[]);
        pending(&self.store_seq, seq)
    }

    /// The answer to [`Client::send_new`]; None when the housekeeper is gone.
    pub(crate) fn stored_new(&self) -> Option<Result<Stored, WireError>> {
        let seq = self.store_seq.lock().ok()?.take()?;
        self.stored(seq)
    }

    /// Waits until the housekeeper has handled everything sent before (a no-op round
    /// trip), so that the store can be used here without racing it.
    pub(crate) fn flush(&self) {
        if let Some(seq) = self.send(&Request::Ping, &[]) {
            let _ = self.answer(seq);
        }
    }

    /// Records that a row stored `created` runs; there is no answer (the housekeeper
    /// handles its connection's messages in order, so a later exit comes after it).
    pub(crate) fn started(&self, s: &rows::Started) -> bool {
        self.send(&Request::Started(s.clone()), &[]).is_some()
    }

    /// Has the housekeeper record a container's exit ([`rows::store_exit`]).
    pub(crate) fn store_exit(&self, e: &Exit) -> Option<Result<(), WireError>> {
        let seq = self.send(&Request::Exit(e.clone()), &[])?;
        match self.answer(seq)? {
            (Answer::Exited(r), _) => Some(r),
            _ => None,
        }
    }

    /// Hands mount namespace descriptors to the housekeeper, which holds them until this
    /// connection closes.
    pub fn hold(&self, fds: &[BorrowedFd<'_>]) -> bool {
        self.send(&Request::Hold, fds).is_some()
    }
}

/// Removes the sockets of housekeepers that are gone from `run_dir` (a housekeeper killed
/// before it could remove its own), and their directory once empty. A live housekeeper
/// holds its socket's lock, so its socket stays.
pub fn remove_stale_sockets(run_dir: &Path) {
    use std::os::fd::AsRawFd;
    let dir = run_dir.join("housekeeper");
    if !wire::private_dir(&dir) {
        return;
    }
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for lock in entries.flatten().map(|e| e.path()) {
        if lock.extension().is_none_or(|x| x != "lock") {
            continue;
        }
        let Ok(f) = std::fs::OpenOptions::new().write(true).open(&lock) else {
            continue;
        };
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            let _ = std::fs::remove_file(lock.with_extension("sock"));
            let _ = std::fs::remove_file(&lock);
        }
    }
    let _ = std::fs::remove_dir(&dir);
}

/// Remembers the sequence number of a request whose answer is read later; false when the
/// request could not be sent.
fn pending(slot: &Mutex<Option<u32>>, seq: Option<u32>) -> bool {
    match slot.lock() {
        Ok(mut g) => {
            *g = seq;
            seq.is_some()
        }
        Err(_) => false,
    }
}

/// An answer as the client takes it: a refusal is no answer (the run does the work).
fn accept(a: Answer, fds: Vec<OwnedFd>) -> Option<(Answer, Vec<OwnedFd>)> {
    match a {
        Answer::Refused(_) => None,
        a => Some((a, fds)),
    }
}

#[cfg(test)]
mod tests;
