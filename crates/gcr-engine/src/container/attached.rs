//! The client's side of an attach (see [`super::attach`]): `gcr attach`, `start -a/-i` and
//! `run -it` relay the caller's terminal or pipes to a supervised container — stdin (with
//! Docker's detach keys, ctrl-p ctrl-q unless `--detach-keys` says otherwise), output,
//! window size — until the container exits or the user detaches.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::attach::{
    frames, header, socket_path, CLOSE_STDIN, EXIT, HELLO, RESIZE, STDERR, STDIN, STDOUT,
};
use super::record::Record;
use crate::{Engine, EngineError};

/// What an attach relays.
#[derive(Debug, Clone)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// The detach sequence (empty: none).
    pub detach_keys: Vec<u8>,
}

/// How an attach ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachEnd {
    /// The container exited with this code.
    Exited(i32),
    /// The user typed the detach keys; the container runs on.
    Detached,
}

/// Parses Docker's `--detach-keys` (`ctrl-p,ctrl-q`, `ctrl-a`, `a,b`; `ctrl-@`, `ctrl-[`,
/// `ctrl-\`, `ctrl-]`, `ctrl-^`, `ctrl-_` too).
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, String> {
    let bad = |k: &str| {
        format!(
            "invalid --detach-keys '{s}': '{k}' is not a key; use e.g. ctrl-p,ctrl-q or ctrl-a,d"
        )
    };
    let mut out = Vec::new();
    for k in s.split(',') {
        let k = k.trim();
        match k.strip_prefix("ctrl-") {
            Some(c) if c.len() == 1 => {
                let b = c.as_bytes()[0].to_ascii_lowercase();
                match b {
                    b'a'..=b'z' => out.push(b - b'a' + 1),
                    b'@' => out.push(0),
                    b'[' | b'\\' | b']' | b'^' | b'_' => out.push(b & 0x1f),
                    _ => return Err(bad(k)),
                }
            }
            None if k.len() == 1 => out.push(k.as_bytes()[0]),
            _ => return Err(bad(k)),
        }
    }
    Ok(out)
}

/// Docker's default detach keys.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[0x10, 0x11];

/// Matches the detach sequence across reads, holding back a partial match.
pub struct DetachMatcher<'a> {
    keys: &'a [u8],
    held: usize,
}

impl<'a> DetachMatcher<'a> {
    /// A matcher of `keys` (empty: nothing detaches).
    pub fn new(keys: &'a [u8]) -> DetachMatcher<'a> {
        DetachMatcher { keys, held: 0 }
    }

    /// The bytes of `input` to send on (a held prefix that turned out not to be the
    /// sequence first), and whether the whole sequence was typed.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.held] {
                self.held += 1;
                if self.held == self.keys.len() {
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.held]);
            self.held = 0;
            if b == self.keys[0] {
                self.held = 1;
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

fn send(sock: &mut UnixStream, kind: u8, data: &[u8]) -> bool {
    sock.write_all(&header(kind, data.len()))
        .and_then(|_| sock.write_all(data))
        .is_ok()
}

fn winsize(fd: i32) -> Option<[u8; 4]> {
    gcr_runtime::pty::window_size(fd).map(|(r, c)| {
        let (r, c) = (r.to_be_bytes(), c.to_be_bytes());
        [r[0], r[1], c[0], c[1]]
    })
}

impl Engine {
    /// Attaches the caller's stdin, stdout and stderr to the running container `key`.
    pub fn attach_container(&self, key: &str, o: &AttachOptions) -> Result<AttachEnd, EngineError> {
        let r = self.container(key)?;
        if !r.state.is_alive() {
            return Err(EngineError::Conflict(format!(
                "you cannot attach to a stopped container {}; start it first",
                r.name
            )));
        }
        let sock = self.connect_attach(&r)?;
        match relay(sock, r.config.opts.tty, o)? {
            Relayed::Exit(code) => Ok(AttachEnd::Exited(code)),
            Relayed::Detached => Ok(AttachEnd::Detached),
            Relayed::Closed => Ok(AttachEnd::Exited(self.wait(&r.id)?)),
        }
    }

    /// The supervisor's attach socket of `r` (it may still be binding: up to 2 s), for a
    /// front-end that speaks the frames of [`super::attach`] itself (the API service).
    pub fn connect_attach(&self, r: &Record) -> Result<UnixStream, EngineError> {
        let path = socket_path(self.run_dir(), &r.id);
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match UnixStream::connect(&path) {
                Ok(s) => return Ok(s),
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => {
                    return Err(EngineError::Conflict(format!(
                        "container {} has no supervisor to attach to ({e}); a container run in the foreground is attached to its own gcr",
                        r.name
                    )))
                }
            }
        }
    }
}

/// How a relay ended.
enum Relayed {
    /// The supervisor sent the container's exit code.
    Exit(i32),
    /// The detach keys were typed, or the caller's stdout went away.
    Detached,
    /// The supervisor closed the socket without a code.
    Closed,
}

/// Relays until the supervisor ends the attach or the user detaches.
fn relay(mut sock: UnixStream, tty: bool, o: &AttachOptions) -> Result<Relayed, EngineError> {
    let io = |what: &str, e: std::io::Error| EngineError::Io(format!("attach: {what}"), e);
    let stdin = std::io::stdin();
    // SAFETY: isatty on descriptor 0.
    let stdin_tty = unsafe { libc::isatty(0) } == 1;
    let _raw = (o.stdin && tty && stdin_tty)
        .then(|| gcr_runtime::pty::RawModeGuard::new(stdin.as_fd()))
        .flatten();
    let hello = [o.stdin as u8, o.stdout as u8, o.stderr as u8];
    if !send(&mut sock, HELLO, &hello) {
        return Err(io("saying hello", std::io::ErrorKind::BrokenPipe.into()));
    }
    let winch = tty
        .then(|| gcr_runtime::pty::winch_signalfd().ok())
        .flatten();
    let size_of = || winsize(0).or_else(|| winsize(1));
    if let (true, Some(ws)) = (tty, size_of()) {
        send(&mut sock, RESIZE, &ws);
    }
    let mut matcher = DetachMatcher {
        keys: if o.stdin { &o.detach_keys } else { &[] },
        held: 0,
    };
    let mut stdin_open = o.stdin;
    let mut inbuf = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    loop {
        let mut fds = vec![libc::pollfd {
            fd: sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        fds.push(libc::pollfd {
            fd: if stdin_open { 0 } else { -1 },
            events: libc::POLLIN,
            revents: 0,
        });
        fds.push(libc::pollfd {
            fd: winch.as_ref().map_or(-1, |w| w.as_raw_fd()),
            events: libc::POLLIN,
            revents: 0,
        });
        // SAFETY: a valid pollfd array of the stated length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(io("poll", std::io::Error::last_os_error()));
        }
        if fds[2].revents != 0 {
            if let Some(w) = &winch {
                let mut info = [0u8; 128];
                // SAFETY: reading one signalfd_siginfo into a stack buffer of its size.
                unsafe { libc::read(w.as_raw_fd(), info.as_mut_ptr().cast(), info.len()) };
            }
            if let Some(ws) = size_of() {
                send(&mut sock, RESIZE, &ws);
            }
        }
        if fds[1].revents != 0 {
            // SAFETY: reading into a live buffer from descriptor 0.
            let got = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if got <= 0 {
                stdin_open = false;
                send(&mut sock, CLOSE_STDIN, &[]);
            } else {
                let (data, detach) = matcher.feed(&buf[..got as usize]);
                if !data.is_empty() {
                    send(&mut sock, STDIN, &data);
                }
                if detach {
                    return Ok(Relayed::Detached);
                }
            }
        }
        if fds[0].revents != 0 {
            let got = sock.read(&mut buf).map_err(|e| io("reading", e))?;
            if got == 0 {
                return Ok(Relayed::Closed);
            }
            inbuf.extend_from_slice(&buf[..got]);
            for (kind, data) in frames(&mut inbuf) {
                let w: &mut dyn Write = match kind {
                    STDOUT => &mut out,
                    STDERR => &mut err,
                    EXIT if data.len() == 4 => {
                        let _ = out.flush();
                        let code = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                        return Ok(Relayed::Exit(code));
                    }
                    _ => continue,
                };
                if w.write_all(&data).and_then(|_| w.flush()).is_err() {
                    return Ok(Relayed::Detached); // the reader went
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_and_match_across_reads() {
        assert_eq!(
            parse_detach_keys("ctrl-p,ctrl-q").unwrap(),
            DEFAULT_DETACH_KEYS
        );
        assert_eq!(parse_detach_keys("ctrl-a,d").unwrap(), [1, b'd']);
        assert_eq!(parse_detach_keys("ctrl-[").unwrap(), [0x1b]);
        for bad in ["ctrl-", "ctrl-pp", "shift-a", "ab"] {
            assert!(parse_detach_keys(bad).is_err(), "{bad}");
        }
        let keys = [0x10u8, 0x11];
        let mut m = DetachMatcher {
            keys: &keys,
            held: 0,
        };
        assert_eq!(m.feed(b"ab\x10"), (b"ab".to_vec(), false));
        // A held ctrl-p that was not the sequence goes on with what follows.
        assert_eq!(m.feed(b"x"), (b"\x10x".to_vec(), false));
        assert_eq!(m.feed(b"\x10\x10"), (b"\x10".to_vec(), false));
        assert_eq!(m.feed(b"\x11rest"), (Vec::new(), true));
        let mut none = DetachMatcher { keys: &[], held: 0 };
        assert_eq!(none.feed(b"\x10\x11"), (b"\x10\x11".to_vec(), false));
    }
}
