//! Attaching to a supervised container: the supervisor listens on
//! `<run dir>/attach/<id>` (a root-only directory; callers must be root, checked by peer
//! credentials) and relays the container's streams to every attached client and their
//! input to the container's stdin (a pipe, or the pty master).
//!
//! Frames both ways have Docker's 8-byte header — kind, three zero bytes, big-endian
//! length — so that the API service can pass output through as Docker's multiplexed
//! stream. Supervisor to client: 1 stdout, 2 stderr (a pty's output is 1). Client to
//! supervisor: 5 hello (three bytes: stdin, stdout, stderr wanted) first, then 0 stdin
//! data, 3 resize (rows and columns, big-endian u16), 4 end of stdin.
//!
//! A start that is attached from its first byte (`start -a`, `run -it`) launches the
//! supervisor "waiting": it reads nothing of the container's output until the first
//! client has said hello (or 10 s passed), so nothing is lost before the attach.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const RESIZE: u8 = 3;
pub const CLOSE_STDIN: u8 = 4;
pub const HELLO: u8 = 5;
/// Supervisor to client, last: the container's exit code (big-endian i32).
pub const EXIT: u8 = 6;

/// How long a waiting supervisor holds the output for its first client.
const WAIT_FOR_CLIENT: Duration = Duration::from_secs(10);
/// Stdin bytes held for a container that does not read them before clients are paused.
const STDIN_BUFFER: usize = 256 * 1024;

/// The socket of container `id`.
pub fn socket_path(run_dir: &Path, id: &str) -> PathBuf {
    run_dir.join("attach").join(id)
}

/// One frame header.
pub fn header(kind: u8, len: usize) -> [u8; 8] {
    let n = (len as u32).to_be_bytes();
    [kind, 0, 0, 0, n[0], n[1], n[2], n[3]]
}

/// Splits complete frames off the front of `buf`.
pub fn frames(buf: &mut Vec<u8>) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while buf.len() - at >= 8 {
        let len = u32::from_be_bytes([buf[at + 4], buf[at + 5], buf[at + 6], buf[at + 7]]) as usize;
        if buf.len() - at - 8 < len {
            break;
        }
        out.push((buf[at], buf[at + 8..at + 8 + len].to_vec()));
        at += 8 + len;
    }
    buf.drain(..at);
    out
}

fn peer_is_root(s: &UnixStream) -> bool {
    let mut cred: libc::ucred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt(SO_PEERCRED) into a ucred of the stated size.
    let ok = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    } == 0;
    // SAFETY: geteuid has no arguments.
    ok && cred.uid == unsafe { libc::geteuid() }
}

struct Client {
    sock: UnixStream,
    inbuf: Vec<u8>,
    /// stdin, stdout, stderr wanted; None until hello.
    wants: Option<[bool; 3]>,
}

/// The supervisor's side.
pub(crate) struct AttachServer {
    listener: Option<UnixListener>,
    path: PathBuf,
    clients: Vec<Client>,
    /// The container's stdin (pipe write end or pty master), non-blocking.
    input: Option<OwnedFd>,
    input_buf: Vec<u8>,
    close_input: bool,
    tty: bool,
    /// The container was started with `-i`: clients may write to its stdin.
    stdin_open: bool,
    waiting_until: Option<Instant>,
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

impl AttachServer {
    /// Binds the container's socket (a stale one from an earlier supervisor is replaced).
    pub(crate) fn bind(
        run_dir: &Path,
        id: &str,
        (tty, stdin_open, waiting): (bool, bool, bool),
    ) -> AttachServer {
        let path = socket_path(run_dir, id);
        let dir = run_dir.join("attach");
        let _ = std::fs::remove_file(&path);
        // The directory goes with the last socket (see Drop): made again if another
        // supervisor removed it between our mkdir and bind.
        let mut listener = None;
        for _ in 0..3 {
            let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
            match UnixListener::bind(&path) {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(_) => break,
            }
        }
        if let Some(l) = &listener {
            let _ = l.set_nonblocking(true);
        }
        AttachServer {
            listener,
            path,
            clients: Vec::new(),
            input: None,
            input_buf: Vec::new(),
            close_input: false,
            tty,
            stdin_open,
            waiting_until: waiting.then(|| Instant::now() + WAIT_FOR_CLIENT),
        }
    }

    /// A new container process's stdin (after a start or restart).
    pub(crate) fn set_input(&mut self, input: Option<OwnedFd>) {
        if let Some(f) = &input {
            set_nonblocking(f.as_raw_fd());
        }
        self.input = input;
        self.input_buf.clear();
        self.close_input = false;
    }

    /// Whether the container's output is held for a first client.
    pub(crate) fn waiting(&mut self) -> bool {
        match self.waiting_until {
            Some(t) if Instant::now() < t && self.listener.is_some() => true,
            Some(_) => {
                self.waiting_until = None;
                false
            }
            None => false,
        }
    }

    /// Milliseconds until the wait for a first client ends (for a poll timeout).
    pub(crate) fn wait_ms(&self) -> Option<i32> {
        self.waiting_until.map(|t| {
            t.saturating_duration_since(Instant::now())
                .as_millis()
                .min(10_000) as i32
        })
    }

    /// Descriptors to poll and their events.
    pub(crate) fn pollfds(&self) -> Vec<libc::pollfd> {
        let mut v = Vec::new();
        if let Some(l) = &self.listener {
            v.push(libc::pollfd {
                fd: l.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let paused = self.input_buf.len() >= STDIN_BUFFER;
        for c in &self.clients {
            v.push(libc::pollfd {
                fd: c.sock.as_raw_fd(),
                events: if paused { 0 } else { libc::POLLIN },
                revents: 0,
            });
        }
        if let (Some(i), false) = (&self.input, self.input_buf.is_empty()) {
            v.push(libc::pollfd {
                fd: i.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            });
        }
        v
    }

    /// Handles what poll reported on the descriptors of [`AttachServer::pollfds`].
    pub(crate) fn ready(&mut self, polled: &[libc::pollfd]) {
        for p in polled.iter().filter(|p| p.revents != 0) {
            if self
                .listener
                .as_ref()
                .is_some_and(|l| l.as_raw_fd() == p.fd)
            {
                self.accept();
            } else if self.input.as_ref().is_some_and(|i| i.as_raw_fd() == p.fd) {
                self.flush_input();
            } else if let Some(i) = self.clients.iter().position(|c| c.sock.as_raw_fd() == p.fd) {
                if !self.read_client(i) {
                    self.clients.remove(i);
                }
            }
        }
    }

    fn accept(&mut self) {
        let Some(l) = &self.listener else { return };
        while let Ok((s, _)) = l.accept() {
            if !peer_is_root(&s) {
                continue;
            }
            // Blocking (accept does not pass on the listener's O_NONBLOCK), read only when
            // poll says so; a client that takes no output for a second is dropped.
            let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
            self.clients.push(Client {
                sock: s,
                inbuf: Vec::new(),
                wants: None,
            });
        }
    }

    /// Reads a client's frames; false when it is gone.
    fn read_client(&mut self, i: usize) -> bool {
        let mut buf = [0u8; 16 * 1024];
        match self.clients[i].sock.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => self.clients[i].inbuf.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return true,
            Err(_) => return false,
        }
        for (kind, data) in frames(&mut self.clients[i].inbuf) {
            let stdin = self.stdin_open && self.clients[i].wants.is_some_and(|w| w[0]);
            match kind {
                HELLO if data.len() == 3 => {
                    self.clients[i].wants = Some([data[0] != 0, data[1] != 0, data[2] != 0]);
                    self.waiting_until = None;
                }
                STDIN if stdin => self.input_buf.extend_from_slice(&data),
                CLOSE_STDIN if stdin => self.close_input = true,
                RESIZE if data.len() == 4 => {
                    if let (Some(m), true) = (&self.input, self.tty) {
                        let ws = libc::winsize {
                            ws_row: u16::from_be_bytes([data[0], data[1]]),
                            ws_col: u16::from_be_bytes([data[2], data[3]]),
                            ws_xpixel: 0,
                            ws_ypixel: 0,
                        };
                        // SAFETY: TIOCSWINSZ on the pty master with a stack winsize.
                        unsafe { libc::ioctl(m.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
                    }
                }
                _ => {}
            }
        }
        self.flush_input();
        true
    }

    fn flush_input(&mut self) {
        if let Some(i) = &self.input {
            while !self.input_buf.is_empty() {
                // SAFETY: writing from a live buffer to the container's stdin.
                let n = unsafe {
                    libc::write(
                        i.as_raw_fd(),
                        self.input_buf.as_ptr().cast(),
                        self.input_buf.len(),
                    )
                };
                if n <= 0 {
                    break;
                }
                self.input_buf.drain(..n as usize);
            }
        }
        if self.close_input && self.input_buf.is_empty() && !self.tty {
            // End of stdin for a pipe (a pty's master also carries the output).
            self.input = None;
        }
    }

    /// Sends output of `stream` (1 stdout, 2 stderr) to the clients that want it; a client
    /// that cannot take it within a second is dropped.
    pub(crate) fn broadcast(&mut self, stream: u8, data: &[u8]) {
        let h = header(stream, data.len());
        self.clients.retain_mut(|c| {
            let Some(w) = c.wants else { return true };
            if !w[stream as usize] {
                return true;
            }
            c.sock
                .write_all(&h)
                .and_then(|_| c.sock.write_all(data))
                .is_ok()
        });
    }

    /// The container exited with `code`: every client gets it and its attach ends.
    pub(crate) fn end_clients(&mut self, code: i32) {
        let data = code.to_be_bytes();
        let h = header(EXIT, data.len());
        for c in &mut self.clients {
            let _ = c.sock.write_all(&h).and_then(|_| c.sock.write_all(&data));
        }
        self.clients.clear();
    }

    /// Holds on until the first client said hello (or the wait is over), for a container
    /// that exited before anyone attached: its output is still unread.
    pub(crate) fn wait_for_client(&mut self) {
        while self.waiting() {
            let mut polls = self.pollfds();
            let ms = self.wait_ms().unwrap_or(0).max(1);
            // SAFETY: a valid pollfd array of the stated length.
            let n = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, ms) };
            if n > 0 {
                self.ready(&polls);
            }
        }
    }
}

impl Drop for AttachServer {
    fn drop(&mut self) {
        if self.listener.is_some() {
            let _ = std::fs::remove_file(&self.path);
            if let Some(dir) = self.path.parent() {
                let _ = std::fs::remove_dir(dir); // only when it is empty
            }
        }
    }
}
