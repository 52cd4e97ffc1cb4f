//! Connections of the registry server: one thread per connection, at most a fixed number
//! at once ([`Slots`]). Every read and write has a timeout, a request head must arrive
//! whole within the timeout, and when every slot is taken the connection that has waited
//! longest on its client (idle keep-alive, a slow head or a stalled body) is closed to
//! make room; only when every connection is busy on the server's side does a new one get
//! 503. A slow or silent client therefore never keeps the server from answering others.

use super::body::BodyReader;
use super::http::{Body, Reply, Req};
use super::wire::{parse_request_head, parse_target, HeadScanner, WireError, MAX_BODY};
use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A connection waiting on its client at least this long may be closed to make room.
const EVICT_AFTER_MS: u64 = 100;
/// Unread body bytes the server reads and discards to keep a connection open.
const DRAIN_MAX: u64 = 256 * 1024;
/// Longest wait, after an answer that closes the connection, for the client to stop
/// sending (so it can read the answer rather than see its write fail), and the most bytes
/// read and discarded meanwhile.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_MAX: usize = 16 << 20;

fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let ms = START.get_or_init(Instant::now).elapsed().as_millis();
    u64::try_from(ms).unwrap_or(u64::MAX - 1) + 1
}

/// When a connection started waiting on its client (ms, see `now_ms`); 0 while the
/// server is working on it.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    since: AtomicU64,
}

/// A socket whose reads and writes record, in its [`Activity`], that they wait on the
/// client.
#[derive(Debug)]
pub(crate) struct Tracked {
    stream: TcpStream,
    act: Arc<Activity>,
}

impl Tracked {
    fn io<T>(&mut self, f: impl FnOnce(&mut TcpStream) -> io::Result<T>) -> io::Result<T> {
        self.act.since.store(now_ms(), Ordering::Relaxed);
        let r = f(&mut self.stream);
        self.act.since.store(0, Ordering::Relaxed);
        r
    }
}

impl Read for Tracked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.io(|s| s.read(buf))
    }
}

impl Write for Tracked {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.io(|s| s.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// The reading side of a connection.
pub(crate) type ConnReader = BufReader<Tracked>;

struct Slot {
    stream: TcpStream,
    act: Arc<Activity>,
}

/// The connections being served, at most `max`.
pub(crate) struct Slots {
    map: Mutex<HashMap<u64, Slot>>,
    next: AtomicU64,
    max: usize,
}

/// Frees a slot when its connection's thread ends (however it ends).
pub(crate) struct SlotGuard {
    slots: Arc<Slots>,
    id: u64,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.slots.lock().remove(&self.id);
    }
}

impl Slots {
    pub fn new(max: usize) -> Slots {
        Slots {
            map: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            max: max.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Slot>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a slot for `stream`, closing the longest-waiting connection when all are
    /// taken; None when every connection is busy on the server's side.
    pub fn admit(self: &Arc<Self>, stream: &TcpStream) -> Option<(SlotGuard, Arc<Activity>)> {
        let mut map = self.lock();
        if map.len() >= self.max {
            let now = now_ms();
            let victim = map
                .iter()
                .map(|(id, s)| (*id, s.act.since.load(Ordering::Relaxed)))
                .filter(|&(_, since)| since != 0 && now.saturating_sub(since) >= EVICT_AFTER_MS)
                .min_by_key(|&(_, since)| since)
                .map(|(id, _)| id)?;
            if let Some(s) = map.remove(&victim) {
                let _ = s.stream.shutdown(Shutdown::Both);
            }
        }
        let clone = stream.try_clone().ok()?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let act = Arc::new(Activity::default());
        map.insert(
            id,
            Slot {
                stream: clone,
                act: Arc::clone(&act),
            },
        );
        Some((
            SlotGuard {
                slots: Arc::clone(self),
                id,
            },
            act,
        ))
    }
}

/// What the connection loop needs from the server.
pub(crate) trait Handler {
    /// Answers a request; true as second value when the handler failed badly (panicked)
    /// and the connection must not be reused.
    fn answer(&self, req: &mut Req) -> (Reply, bool);
    /// Per-read, per-write and per-head timeout.
    fn timeout(&self) -> Duration;
    /// Whether to log each request on stderr.
    fn log(&self) -> bool;
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

fn header_ok(k: &str, v: &str) -> bool {
    !k.is_empty()
        && k.bytes().all(|b| b.is_ascii_graphic() && b != b':')
        && !v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

/// Writes `reply`; the body is left out for HEAD (`head_only`) and for 204.
pub(crate) fn write_reply(
    w: &mut impl Write,
    reply: Reply,
    head_only: bool,
    close: bool,
) -> io::Result<()> {
    let mut w = BufWriter::with_capacity(64 * 1024, w);
    let (len, body): (u64, Box<dyn Read>) = match reply.body {
        Body::Bytes(b) => (b.len() as u64, Box::new(io::Cursor::new(b))),
        Body::File(f) => (f.metadata().map(|m| m.len())?, Box::new(f)),
        Body::Part(f, len) => (len as u64, Box::new(f)),
    };
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (k, v) in &reply.headers {
        if header_ok(k, v) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("Docker-Distribution-API-Version: registry/2.0\r\n");
    let no_body = reply.status == 204 || reply.status == 304 || reply.status < 200;
    if !no_body {
        head.push_str(&format!("Content-Length: {len}\r\n"));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    if !no_body && !head_only {
        let sent = io::copy(&mut body.take(len), &mut w)?;
        if sent != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the reply body was shorter than its length",
            ));
        }
    }
    w.flush()
}

enum HeadFail {
    /// The client went away or the socket failed: nothing to answer.
    Gone,
    /// The client sent part of a head and then nothing for the whole timeout.
    Timeout,
    Refused(WireError),
}

/// Reads one request head within `timeout`; Ok(None) when the client closed or stayed
/// silent before sending anything.
fn read_head(rd: &mut ConnReader, timeout: Duration) -> Result<Option<Vec<u8>>, HeadFail> {
    let deadline = Instant::now() + timeout;
    let mut scanner = HeadScanner::default();
    let mut head = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let silent = scanner.is_empty();
        if left.is_zero() {
            return if silent {
                Ok(None)
            } else {
                Err(HeadFail::Timeout)
            };
        }
        if rd.get_ref().stream.set_read_timeout(Some(left)).is_err() {
            return Err(HeadFail::Gone);
        }
        let avail = match rd.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return if silent {
                    Ok(None)
                } else {
                    Err(HeadFail::Timeout)
                };
            }
            Err(_) => return Err(HeadFail::Gone),
        };
        if avail.is_empty() {
            return if silent {
                Ok(None)
            } else {
                Err(HeadFail::Gone)
            };
        }
        match scanner.feed(avail) {
            Ok(Some(n)) => {
                head.extend_from_slice(&avail[..n]);
                rd.consume(n);
                return Ok(Some(head));
            }
            Ok(None) => {
                let n = avail.len();
                head.extend_from_slice(avail);
                rd.consume(n);
            }
            Err(e) => return Err(HeadFail::Refused(e)),
        }
    }
}

/// Answers an error that ends the connection, then closes it gently: stops writing and
/// discards what the client still sends for a moment, so it can read the answer.
fn refuse(rd: ConnReader, mut wr: Tracked, e: &WireError) {
    let reply = Reply::error(e.status, e.code, &e.message);
    if write_reply(&mut wr, reply, false, true).is_ok() {
        linger(rd, &wr);
    }
}

fn linger(mut rd: ConnReader, wr: &Tracked) {
    let _ = wr.stream.shutdown(Shutdown::Write);
    let end = Instant::now() + LINGER;
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0usize;
    while total < LINGER_MAX {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || rd.get_ref().stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match rd.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}

/// Serves requests on one connection until it closes, fails or times out.
pub(crate) fn serve(stream: TcpStream, act: Arc<Activity>, h: &impl Handler) {
    let timeout = h.timeout();
    let _ = stream.set_nodelay(true);
    if stream.set_write_timeout(Some(timeout)).is_err() {
        return;
    }
    let Ok(wclone) = stream.try_clone() else {
        return;
    };
    let mut wr = Tracked {
        stream: wclone,
        act: Arc::clone(&act),
    };
    let mut rd = BufReader::with_capacity(64 * 1024, Tracked { stream, act });
    loop {
        let raw = match read_head(&mut rd, timeout) {
            Ok(Some(raw)) => raw,
            Ok(None) | Err(HeadFail::Gone) => return,
            Err(HeadFail::Timeout) => {
                let e = WireError::new(
                    408,
                    "UNKNOWN",
                    format!(
                        "the request head did not arrive within {} s; send it whole",
                        timeout.as_secs()
                    ),
                );
                return refuse(rd, wr, &e);
            }
            Err(HeadFail::Refused(e)) => return refuse(rd, wr, &e),
        };
        let parsed = parse_request_head(&raw).and_then(|head| {
            let kind = head.body_kind()?;
            let target = parse_target(&head.target)?;
            Ok((head, kind, target))
        });
        let (head, kind, target) = match parsed {
            Ok(p) => p,
            Err(e) => return refuse(rd, wr, &e),
        };
        if rd.get_ref().stream.set_read_timeout(Some(timeout)).is_err() {
            return;
        }
        let head_only = head.method == "HEAD";
        let keep = head.keep_alive();
        let mut req = Req::new(head, target, BodyReader::new(rd, kind, MAX_BODY), wr);
        let (reply, broken) = h.answer(&mut req);
        if h.log() {
            eprintln!("{} {} -> {}", req.method, req.path, reply.status);
        }
        let (body, waiting, w) = req.into_parts();
        wr = w;
        let drainable =
            body.is_done() || (!waiting && body.announced_left().is_some_and(|n| n <= DRAIN_MAX));
        let close = broken || !keep || !drainable;
        if write_reply(&mut wr, reply, head_only, close).is_err() {
            return;
        }
        if close {
            return linger(body.into_inner(), &wr);
        }
        let mut body = body;
        if io::copy(&mut body, &mut io::sink()).is_err() || !body.is_done() {
            return;
        }
        rd = body.into_inner();
    }
}

/// Answers a connection there is no room for with 503 and closes it.
pub(crate) fn reject_busy(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let reply = Reply::error(
        503,
        "TOOMANYREQUESTS",
        "the registry is serving as many connections as it can; retry in a moment",
    )
    .header("Retry-After", "1");
    let _ = write_reply(&mut stream, reply, false, true);
    let _ = stream.shutdown(Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn replies_are_framed_and_headers_sanitized() {
        let mut out = Vec::new();
        let r = Reply::error(404, "NAME_UNKNOWN", "no such repository")
            .header("Link", "a\r\nInjected: 1")
            .header("Location", "/v2/a");
        let body_len = match &r.body {
            Body::Bytes(b) => b.len(),
            _ => unreachable!(),
        };
        write_reply(&mut out, r, true, true).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(!text.contains("Injected"), "{text}");
        assert!(text.contains("Location: /v2/a\r\n"), "{text}");
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert!(text.contains(&format!("Content-Length: {body_len}\r\n")));
        assert!(
            text.ends_with("\r\n\r\n"),
            "a HEAD answer has no body: {text}"
        );
        let mut out = Vec::new();
        write_reply(&mut out, Reply::new(204), false, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("Content-Length") && !text.contains("Connection"));
        let mut out = Vec::new();
        write_reply(&mut out, Reply::json(200, b"{}".to_vec()), false, false).unwrap();
        assert!(out.ends_with(b"Content-Length: 2\r\n\r\n{}"));
    }

    #[test]
    fn a_full_table_closes_the_connection_waiting_longest() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let pair = || {
            let c = TcpStream::connect(addr).unwrap();
            let (s, _) = l.accept().unwrap();
            (c, s)
        };
        let slots = Arc::new(Slots::new(2));
        let (mut c1, s1) = pair();
        let (g1, a1) = slots.admit(&s1).unwrap();
        let (_c2, s2) = pair();
        let (g2, a2) = slots.admit(&s2).unwrap();
        let (_c3, s3) = pair();
        assert!(slots.admit(&s3).is_none(), "both are busy: no room");
        a1.since.store(now_ms(), Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(EVICT_AFTER_MS + 50));
        a2.since.store(now_ms(), Ordering::Relaxed);
        let (g3, _) = slots.admit(&s3).expect("room made by closing the first");
        c1.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(c1.read(&mut [0u8; 8]).unwrap(), 0, "the first was closed");
        assert_eq!(slots.lock().len(), 2);
        drop(g1);
        assert_eq!(slots.lock().len(), 2, "the evicted slot was already freed");
        drop((g2, g3));
        assert!(slots.lock().is_empty());
    }
}
