//! The housekeeper's side of the door: a listening socket, its connections, and the checks
//! every request passes before it acts (see [`super::wire`] for who may connect).

use std::collections::{HashSet, VecDeque};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use gcr_runtime::LoopbackNetns;
use gcr_store::Store;

use super::wire::{self, Answer, Envelope, Recv, Request};
use crate::container::record;
use crate::container::rows::{self, WireError};

/// Network namespaces kept made ahead.
const POOL: usize = 2;
/// Connections served at once; more are refused (their runs do the work themselves).
const MAX_CLIENTS: usize = 256;
/// Mount namespaces one connection may have held.
const MAX_HELD: usize = 16;

/// One connected run.
struct Conn {
    fd: OwnedFd,
    /// The caller's pid (SO_PEERCRED, in our pid namespace).
    pid: i32,
    held: Vec<OwnedFd>,
    /// Container directories this connection had made (see `Server::forget`).
    made: Vec<PathBuf>,
    /// Locks on those directories, held until the connection closes.
    locks: Vec<OwnedFd>,
    /// Containers whose rows this connection stored: the only ones it may start.
    stored: HashSet<String>,
    /// Who the ledger names for what this connection changes: our uid (peers are of the
    /// same user) and the program that called the connected gcr; looked up at its first
    /// write, off the way of the requests that come before.
    actor: Option<gcr_store::Actor>,
}

/// The housekeeper's side: a listening socket, its connections and namespaces made ahead.
pub struct Server {
    root: PathBuf,
    path: PathBuf,
    listener: OwnedFd,
    /// flock on `<socket>.lock`, held while listening: one housekeeper per socket.
    _lock: std::fs::File,
    conns: Vec<Conn>,
    /// Namespaces made ahead, oldest first (the oldest is the likeliest to be done).
    pool: VecDeque<LoopbackNetns>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Still holding the lock: the socket and its lock file are ours to remove (one
        // housekeeper per store is already ensured by the trash lock), and the directory
        // goes when no other store's housekeeper is in it.
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(self.path.with_extension("lock"));
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

impl Server {
    /// Listens on the store's socket under `run_dir`; None when another housekeeper does or
    /// the socket's directory is not private.
    pub fn bind(root: &Path, run_dir: &Path) -> Option<Server> {
        let path = wire::socket_path(root, run_dir, true)?;
        let addr = wire::address(&path)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.with_extension("lock"))
            .ok()?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return None;
        }
        // A socket left by a housekeeper that died: ours now (we hold the lock).
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_socket()) {
            let _ = std::fs::remove_file(&path);
        }
        let listener = wire::seqpacket(rustix::net::SocketFlags::NONBLOCK)?;
        rustix::net::bind(&listener, &addr).ok()?;
        rustix::net::listen(&listener, 64).ok()?;
        Some(Server {
            root: root.to_path_buf(),
            path,
            listener,
            _lock: lock,
            conns: Vec::new(),
            // The first run of a burst asks at once: have a namespace on the way.
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
            if p.revents != 0 && !self.answer(i - 1, store) {
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
        held
    }

    /// Makes one more network namespace ahead, while no run is going on: back-to-back runs
    /// then find one made during an earlier gap.
    pub fn refill(&mut self) {
        if self.conns.is_empty() && self.pool.len() < POOL {
            self.pool.push_back(LoopbackNetns::start());
        }
    }

    /// Before it stops serving: answers every message already waiting on every connection
    /// (a run's `Started` or `Exit` sent just before must not be lost with the socket; its
    /// sender may be killed before it could notice and do it itself). Returns what closed
    /// connections held, as [`Server::serve`].
    pub fn drain(&mut self, store: Option<&Store>) -> Vec<OwnedFd> {
        let mut held = Vec::new();
        for _ in 0..64 {
            let mut fds = self.poll_fds();
            fds[0].events = 0; // no new connections now
                               // SAFETY: poll on a vector of pollfds we own, with its length, not waiting.
            if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) } <= 0 {
                break;
            }
            held.append(&mut self.serve(&fds, store));
        }
        held
    }

    /// A run ended: the directories made for it whose container it never stored go to
    /// the trash. Only directories this housekeeper made for that connection are looked at.
    fn forget(&self, made: &[PathBuf], store: Option<&Store>) {
        for dir in made {
            let Some(id) = dir.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if store.is_none_or(|s| record::find(s.conn(), id).is_ok()) {
                continue;
            }
            let _ = std::fs::rename(dir, self.root.join("trash").join(id));
        }
    }

    fn accept(&mut self) {
        while let Ok(fd) = rustix::net::accept_with(
            &self.listener,
            rustix::net::SocketFlags::CLOEXEC | rustix::net::SocketFlags::NONBLOCK,
        ) {
            // Same user, same mount namespace: a process in a container never is.
            let Some(pid) = wire::peer_of_same_user(fd.as_fd()) else {
                continue;
            };
            if self.conns.len() < MAX_CLIENTS && wire::in_our_mount_ns(pid) {
                self.conns.push(Conn {
                    fd,
                    pid,
                    held: Vec::new(),
                    made: Vec::new(),
                    locks: Vec::new(),
                    stored: HashSet::new(),
                    actor: None,
                });
            }
        }
    }

    /// Reads and answers one message of connection `i`; false when it is closed.
    /// What it writes to the store is stamped with the connection's actor.
    fn answer(&mut self, i: usize, store: Option<&Store>) -> bool {
        let fd = self.conns[i].fd.as_fd();
        let (seq, req, fds) = match wire::recv::<Request>(fd) {
            Recv::Msg(Envelope { seq, msg, .. }, fds) => (seq, msg, fds),
            // Nothing is acted on; the caller learns why and does the work itself.
            Recv::Bad(why) => return wire::send(fd, 0, &Answer::Refused(why), &[]),
            Recv::Again => return true,
            Recv::Closed => return false,
        };
        if let (Some(s), Request::Store(_) | Request::Started(_) | Request::Exit(_)) = (store, &req)
        {
            let c = &mut self.conns[i];
            s.set_actor(c.actor.get_or_insert_with(|| caller_of(c.pid)));
        }
        let fd = self.conns[i].fd.as_fd();
        let reply = |a: Answer, fds: &[BorrowedFd<'_>]| wire::send(fd, seq, &a, fds);
        match req {
            Request::Netns => {
                // The next one is made once no run is going on (see `serve`): made now, it
                // would compete with this run for the CPU.
                let ns = self
                    .pool
                    .pop_front()
                    .unwrap_or_else(LoopbackNetns::start)
                    .wait()
                    .ok();
                let ns: Vec<BorrowedFd<'_>> = ns.iter().map(AsFd::as_fd).collect();
                reply(Answer::Netns, &ns)
            }
            Request::Hold => {
                let c = &mut self.conns[i];
                for f in fds {
                    if c.held.len() < MAX_HELD
                        && wire::ns_type(f.as_fd()) == Some(libc::CLONE_NEWNS)
                    {
                        c.held.push(f);
                    }
                }
                true
            }
            Request::Premount(p) => match p.make_in(&self.root) {
                Ok(made) => {
                    self.conns[i].made.push(made.dir);
                    self.conns[i].locks.extend(made.lock);
                    let m: Vec<BorrowedFd<'_>> = made.mount.iter().map(AsFd::as_fd).collect();
                    wire::send(self.conns[i].fd.as_fd(), seq, &Answer::Premounted, &m)
                }
                Err(why) => reply(Answer::Refused(why), &[]),
            },
            Request::Store(mut req) => {
                let c = &self.conns[i];
                if !crate::names::is_container_id(&req.row.id)
                    || (req.row.extra.holder_pid != 0 && req.row.extra.holder_pid != c.pid)
                {
                    return reply(Answer::Refused("not the caller's container".into()), &[]);
                }
                // Looking up an earlier attempt is only for this connection's own rows.
                req.maybe_stored &= c.stored.contains(&req.row.id);
                let id = req.row.id.clone();
                let res = match store {
                    Some(st) => rows::store_new(st, req).map_err(WireError::from),
                    None => Err(WireError::Other("the housekeeper cannot store it".into())),
                };
                if matches!(res, Ok(rows::Stored::Row(_))) {
                    self.conns[i].stored.insert(id);
                }
                wire::send(self.conns[i].fd.as_fd(), seq, &Answer::Stored(res), &[])
            }
            Request::Started(s) => {
                // No answer: a failure leaves the row as it was, as the exit will show.
                let c = &self.conns[i];
                let holder = s.update.extra.as_ref().map(|e| e.holder_pid);
                if let (true, Some(store)) =
                    (c.stored.contains(&s.row.id) && holder == Some(c.pid), store)
                {
                    // Failed (a busy store), the row stays `created`; its exit records
                    // the start first (see `rows::store_exit`).
                    let _ = rows::store_started(store, &s);
                }
                true
            }
            Request::Exit(mut e) => {
                let c = &self.conns[i];
                let res = match store {
                    None => Err(WireError::Other("the housekeeper cannot record it".into())),
                    // A row this connection stored: recorded as sent (`store_exit` reads the
                    // row's current state in its own transaction).
                    Some(st) if c.stored.contains(&e.row.id) => {
                        rows::store_exit(st, &e).map_err(WireError::from)
                    }
                    // Otherwise only a container the caller holds, as the store has it.
                    Some(st) => match record::find(st.conn(), &e.row.id) {
                        Ok(cur) if cur.extra.holder_pid == c.pid => {
                            e.row = cur;
                            rows::store_exit(st, &e).map_err(WireError::from)
                        }
                        Ok(_) => Err(WireError::Conflict(format!(
                            "container {} is not held by the caller",
                            e.row.name
                        ))),
                        Err(err) => Err(WireError::from(err)),
                    },
                };
                reply(Answer::Exited(res), &[])
            }
            Request::Ping => reply(Answer::Pong, &[]),
        }
    }
}

/// The ledger's actor for a connected gcr process `pid`: our uid (the peer's, checked) and
/// the executable of its parent, the program that ran `gcr`.
fn caller_of(pid: i32) -> gcr_store::Actor {
    let ppid = crate::container::procfs::status_field(pid, "PPid").and_then(|p| p.parse().ok());
    gcr_store::Actor {
        uid: rustix::process::getuid().as_raw(),
        exe: ppid.map(gcr_store::Actor::exe_of).unwrap_or_default(),
    }
}
