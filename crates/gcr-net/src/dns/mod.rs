//! The embedded DNS server of user networks (Docker's 127.0.0.11): a container on a
//! user-defined network has `nameserver 127.0.0.11` in its resolv.conf, where UDP and TCP
//! sockets bound inside its network namespace are served from the host's namespace by the
//! container's network helper process. Names of the container's hosts file (itself, the
//! members of its user networks and their aliases) are answered here ([`answer`]); other
//! queries are passed on to the upstream servers (`--dns`, else the host's own, loopback
//! ones included: the helper runs in the host's namespace) and their replies relayed as they
//! came. A container with no route outside (internal networks only) gets SERVFAIL instead.
//!
//! Everything the container sends is hostile input: replies are made by hickory-proto
//! from decoded queries only, an upstream reply must come from the server asked and carry
//! the query's id, and at most [`MAX_INFLIGHT`] forwarded queries and TCP connections are
//! served at once (a flood is dropped, never queued).

pub mod answer;
pub mod table;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use answer::{Reply, Transport};
use table::HostsFile;

/// The address containers ask.
pub const ADDRESS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 11);
/// Forwarded queries and TCP connections served at once.
pub const MAX_INFLIGHT: usize = 64;
/// How long one upstream server gets to answer.
const UPSTREAM_WAIT: Duration = Duration::from_secs(2);
/// How long a TCP client may stay silent.
const TCP_IDLE: Duration = Duration::from_secs(10);
const STACK: usize = 64 * 1024;

/// One container's resolver: its sockets (bound in its namespace), its hosts file and the
/// servers other names go to (none: SERVFAIL).
pub struct Resolver {
    pub udp: OwnedFd,
    pub tcp: OwnedFd,
    pub hosts: PathBuf,
    pub upstreams: Vec<SocketAddr>,
}

struct Shared {
    hosts: HostsFile,
    upstreams: Vec<SocketAddr>,
    inflight: AtomicUsize,
}

/// Serves `r` on threads of its own (they end with the process).
pub fn spawn(r: Resolver) -> io::Result<()> {
    let shared = Arc::new(Shared {
        hosts: HostsFile::new(r.hosts),
        upstreams: r.upstreams,
        inflight: AtomicUsize::new(0),
    });
    let udp = Arc::new(UdpSocket::from(r.udp));
    let tcp = TcpListener::from(r.tcp);
    let s = shared.clone();
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || serve_udp(udp, s))?;
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || serve_tcp(tcp, shared))?;
    Ok(())
}

/// A slot among the [`MAX_INFLIGHT`], given back when dropped.
struct Slot(Arc<Shared>);

impl Slot {
    fn take(s: &Arc<Shared>) -> Option<Slot> {
        let n = s.inflight.fetch_add(1, Ordering::SeqCst);
        if n >= MAX_INFLIGHT {
            s.inflight.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Slot(s.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn serve_udp(sock: Arc<UdpSocket>, s: Arc<Shared>) {
    let mut buf = [0u8; 4096];
    loop {
        let Ok((n, client)) = sock.recv_from(&mut buf) else {
            pause();
            continue;
        };
        let query = &buf[..n];
        match answer::answer(query, &s.hosts.table(), Transport::Udp) {
            Reply::Local(bytes) => {
                let _ = sock.send_to(&bytes, client);
            }
            Reply::Drop => {}
            Reply::Forward => {
                let Some(slot) = Slot::take(&s) else {
                    continue;
                };
                let query = query.to_vec();
                let sock = sock.clone();
                let _ = std::thread::Builder::new()
                    .stack_size(STACK)
                    .spawn(move || {
                        let reply = forward_udp(&slot.0.upstreams, &query)
                            .or_else(|| answer::servfail(&query));
                        if let Some(r) = reply {
                            let _ = sock.send_to(&r, client);
                        }
                        drop(slot);
                    });
            }
        }
    }
}

/// After a failed receive or accept (out of descriptors, say): no busy loop.
fn pause() {
    std::thread::sleep(Duration::from_millis(10));
}

/// Whether `reply` answers `query`: a response with the query's id.
fn answers(query: &[u8], reply: &[u8]) -> bool {
    reply.len() >= 12 && reply[..2] == query[..2] && reply[2] & 0x80 != 0
}

/// The first upstream reply to `query` over UDP (each server in turn).
fn forward_udp(upstreams: &[SocketAddr], query: &[u8]) -> Option<Vec<u8>> {
    for up in upstreams {
        let local: SocketAddr = if up.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let Ok(s) = UdpSocket::bind(local) else {
            continue;
        };
        // Connected: the kernel drops datagrams from anyone but the server asked.
        if s.connect(up).is_err() || s.set_read_timeout(Some(UPSTREAM_WAIT)).is_err() {
            continue;
        }
        if s.send(query).is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        let deadline = std::time::Instant::now() + UPSTREAM_WAIT;
        while std::time::Instant::now() < deadline {
            match s.recv(&mut buf) {
                Ok(n) if answers(query, &buf[..n]) => {
                    buf.truncate(n);
                    return Some(buf);
                }
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
    None
}

fn serve_tcp(l: TcpListener, s: Arc<Shared>) {
    loop {
        let Ok((conn, _)) = l.accept() else {
            pause();
            continue;
        };
        let Some(slot) = Slot::take(&s) else {
            continue;
        };
        let _ = std::thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || {
                let _ = tcp_client(conn, &slot.0);
                drop(slot);
            });
    }
}

/// Reads one length-prefixed DNS message (None at the end of the stream).
fn read_msg(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    r.read_exact(&mut msg)?;
    Ok(Some(msg))
}

fn write_msg(w: &mut impl Write, msg: &[u8]) -> io::Result<()> {
    let len = u16::try_from(msg.len()).map_err(|_| io::ErrorKind::InvalidData)?;
    let mut out = Vec::with_capacity(msg.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    w.write_all(&out)
}

fn tcp_client(mut conn: TcpStream, s: &Shared) -> io::Result<()> {
    conn.set_read_timeout(Some(TCP_IDLE))?;
    conn.set_write_timeout(Some(TCP_IDLE))?;
    while let Some(query) = read_msg(&mut conn)? {
        let reply = match answer::answer(&query, &s.hosts.table(), Transport::Tcp) {
            Reply::Local(bytes) => Some(bytes),
            Reply::Drop => None,
            Reply::Forward => {
                forward_tcp(&s.upstreams, &query).or_else(|| answer::servfail(&query))
            }
        };
        match reply {
            Some(r) => write_msg(&mut conn, &r)?,
            None => return Ok(()),
        }
    }
    Ok(())
}

/// The first upstream reply to `query` over TCP (each server in turn).
fn forward_tcp(upstreams: &[SocketAddr], query: &[u8]) -> Option<Vec<u8>> {
    for up in upstreams {
        let Ok(mut c) = TcpStream::connect_timeout(up, UPSTREAM_WAIT) else {
            continue;
        };
        let _ = c.set_read_timeout(Some(UPSTREAM_WAIT));
        let _ = c.set_write_timeout(Some(UPSTREAM_WAIT));
        if write_msg(&mut c, query).is_err() {
            continue;
        }
        if let Ok(Some(r)) = read_msg(&mut c) {
            if answers(query, &r) {
                return Some(r);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
