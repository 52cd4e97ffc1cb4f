//! `gcr registry serve` against hostile clients on loopback: odd paths, endless header
//! lines, too many headers, uploads that announce 2 GB and send nothing, slow and silent
//! clients, and more clients than the server has room for. The server must answer each
//! with a distribution-spec error (or drop it after its timeout), never panic, exit or
//! stop answering others, and keep its memory bounded. Every server is started by the
//! test on a free loopback port and killed by a Drop guard.

mod common;

use common::servers::Server;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A `gcr registry serve` process on its own store; killed and reaped on drop.
struct Registry(Server);

impl std::ops::Deref for Registry {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.0
    }
}

impl std::ops::DerefMut for Registry {
    fn deref_mut(&mut self) -> &mut Server {
        &mut self.0
    }
}

impl Registry {
    /// Starts a server with `threads` workers and, optionally, a timeout in seconds.
    fn start(threads: usize, timeout: Option<u64>) -> Registry {
        let threads = threads.to_string();
        let timeout = timeout.map(|t| t.to_string());
        let envs: Vec<(&str, &str)> = timeout
            .iter()
            .map(|t| ("GCR_REGISTRY_SERVE_TIMEOUT", t.as_str()))
            .collect();
        Registry(Server::gcr(&["--threads", &threads], &envs))
    }

    fn connect(&self) -> Conn {
        Conn::new(self.port)
    }

    /// Asserts the process still runs.
    fn assert_alive(&mut self) {
        assert!(
            matches!(self.child.try_wait(), Ok(None)),
            "the registry exited: {:?}",
            self.child.try_wait()
        );
    }

    /// Resident memory of the server, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// Asserts `GET /v2/` answers 200 `{}` within `within`, on a fresh connection.
    fn assert_serves(&mut self, within: Duration) {
        let start = Instant::now();
        let mut c = self.connect();
        c.s.set_read_timeout(Some(within)).unwrap();
        c.send(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let r = c
            .response()
            .unwrap_or_else(|| panic!("GET /v2/ got no answer within {within:?}"));
        assert_eq!(r.status, 200, "GET /v2/: {}", r.text());
        assert_eq!(r.body, b"{}");
        assert_eq!(
            r.header("docker-distribution-api-version"),
            Some("registry/2.0")
        );
        assert!(
            start.elapsed() < within,
            "GET /v2/ took {:?}",
            start.elapsed()
        );
        self.assert_alive();
    }
}

/// A response as read off the wire.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts an OCI distribution error body and returns its first code.
    fn oci_code(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {:?}", self.text()));
        let e = &v["errors"][0];
        let code = e["code"].as_str().unwrap_or_default();
        assert!(
            !code.is_empty() && e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "not an OCI error body: {v}"
        );
        assert!(e.get("detail").is_some(), "no detail field: {v}");
        assert_eq!(self.header("content-type"), Some("application/json"));
        code.to_string()
    }
}

/// A client connection that keeps unread bytes between responses.
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn new(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the registry");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        Conn { s, buf: Vec::new() }
    }

    /// Sends bytes; false when the server has closed the connection.
    fn send(&mut self, b: &[u8]) -> bool {
        self.s.write_all(b).is_ok()
    }

    fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 16 * 1024];
        match self.s.read(&mut tmp) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
        }
    }

    /// The next final response (after any `100 Continue`); None when the connection
    /// closed or timed out first.
    fn response(&mut self) -> Option<Resp> {
        self.read_response(false)
    }

    /// The response to a HEAD request: its headers announce a length but no body follows.
    fn head_response(&mut self) -> Option<Resp> {
        self.read_response(true)
    }

    fn read_response(&mut self, head_only: bool) -> Option<Resp> {
        loop {
            let end = loop {
                if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                if !self.fill() {
                    return None;
                }
            };
            let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
            self.buf.drain(..end);
            let mut lines = head.lines();
            let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
            if status == 100 {
                continue;
            }
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| {
                    l.split_once(':')
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                })
                .collect();
            let len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .filter(|_| !head_only)
                .unwrap_or(0);
            while self.buf.len() < len {
                if !self.fill() {
                    return None;
                }
            }
            let body = self.buf.drain(..len).collect();
            return Some(Resp {
                status,
                headers,
                body,
            });
        }
    }

    /// True when the server closes the connection (or resets it) within `within`.
    fn closed_within(&mut self, within: Duration) -> bool {
        let start = Instant::now();
        self.s.set_read_timeout(Some(within)).unwrap();
        let mut tmp = [0u8; 4096];
        loop {
            match self.s.read(&mut tmp) {
                Ok(0) => return start.elapsed() < within,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

/// One request on a fresh connection; its response, or None when there was none.
fn request(port: u16, raw: &[u8]) -> Option<Resp> {
    let mut c = Conn::new(port);
    c.send(raw);
    c.response()
}

fn sha256(data: &[u8]) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(data).unwrap();
    let o = c.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    format!("sha256:{}", out.split_whitespace().next().unwrap())
}

const ZERO_DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

#[test]
fn odd_paths_get_spec_errors_and_never_stop_the_server() {
    let mut reg = Registry::start(8, None);
    let long = format!("/v2/{}manifests/x", "a/".repeat(3000));
    let targets: Vec<&str> = vec![
        "/v2%C3%A9",
        "/v2%C3",
        "/v2%FF%FE/x",
        "/v2%C3%A9/",
        "/v2/%C3%A9/manifests/latest",
        "/v2/a/manifests/%C3%A9",
        "/v2/a/blobs/sha256:%C3%A9",
        "/v2/a/blobs/uploads/%C3%A9",
        "/v2/%",
        "/v2/a/tags/list?n=99999999999999999999999&last=%C3%A9",
        "/v2/a/referrers/%00",
        "/%E2%82%AC%E2%82",
        "/v2/%E2%82%AC/blobs/uploads/",
        "*",
        "v2",
        &long,
    ];
    for round in 0..3 {
        for t in &targets {
            for method in ["GET", "PUT", "DELETE"] {
                let raw = format!("{method} {t} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
                let r = request(reg.port, raw.as_bytes())
                    .unwrap_or_else(|| panic!("round {round}: {method} {t} got no answer"));
                assert!(
                    (400..500).contains(&r.status),
                    "{method} {t}: {} {}",
                    r.status,
                    r.text()
                );
                r.oci_code();
            }
        }
    }
    // The panic of the review, many more times than there are workers.
    for _ in 0..24 {
        let r = request(reg.port, b"GET /v2%C3%A9 HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("GET /v2%C3%A9 got no answer");
        assert_eq!(r.status, 404);
        assert_eq!(r.oci_code(), "NAME_UNKNOWN");
    }
    // Raw non-ASCII and control bytes in the request line.
    for raw in [
        &b"GET /v2/\xc3\xa9 HTTP/1.1\r\n\r\n"[..],
        b"GET /v2/\xff HTTP/1.1\r\n\r\n",
        b"GET\t/v2/ HTTP/1.1\r\n\r\n",
        b"GET /v2/ HTTP/2.0\r\n\r\n",
        b"\x00\x01\x02\r\n\r\n",
    ] {
        let r = request(reg.port, raw).expect("an answer to a malformed request line");
        assert!(matches!(r.status, 400 | 505), "{raw:?}: {}", r.status);
        r.oci_code();
    }
    // A TLS hello to the plain-http port is refused at once (clients then fall back to
    // http instead of waiting for their handshake timeout).
    let start = Instant::now();
    let hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x5e\x8a\x11\x00";
    let r = request(reg.port, hello).expect("an answer to a TLS hello");
    assert_eq!(r.status, 400);
    r.oci_code();
    assert!(start.elapsed() < Duration::from_secs(2));
    reg.assert_serves(Duration::from_secs(3));
}

#[test]
fn an_endless_header_line_is_refused_without_buffering_it() {
    let mut reg = Registry::start(8, None);
    reg.assert_serves(Duration::from_secs(3));
    let before = reg.rss_kib();
    let mut c = reg.connect();
    assert!(c.send(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: "));
    let chunk = vec![b'a'; 1 << 20];
    let mut sent = 0usize;
    while sent < 64 << 20 {
        if !c.send(&chunk) {
            break;
        }
        sent += chunk.len();
    }
    let grown = reg.rss_kib().saturating_sub(before);
    c.s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let answer = c.response();
    assert!(
        sent < 64 << 20 || answer.is_some(),
        "the server took all 64 MiB of one header line and did not answer"
    );
    if let Some(r) = answer {
        assert!(matches!(r.status, 400 | 431), "status {}", r.status);
        r.oci_code();
    }
    assert!(
        grown < 32 * 1024,
        "the server grew by {grown} KiB while receiving one header line"
    );
    drop(c);
    reg.assert_serves(Duration::from_secs(3));
}

#[test]
fn too_many_or_too_large_headers_get_431() {
    let mut reg = Registry::start(8, None);
    let many: String = (0..1000).map(|i| format!("X-H-{i}: v\r\n")).collect();
    let big: String = (0..200)
        .map(|i| format!("X-B-{i}: {}\r\n", "v".repeat(1000)))
        .collect();
    let line = format!("X-L: {}\r\n", "v".repeat(9000));
    for headers in [many, big, line] {
        let raw = format!("GET /v2/ HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        let r = request(reg.port, raw.as_bytes()).expect("an answer to an oversized head");
        assert_eq!(r.status, 431, "{}", r.text());
        r.oci_code();
        assert_eq!(r.header("connection"), Some("close"));
    }
    let raw = format!("GET /v2/{} HTTP/1.1\r\n\r\n", "a".repeat(9000));
    let r = request(reg.port, raw.as_bytes()).expect("an answer to an endless path");
    assert_eq!(r.status, 414);
    r.oci_code();
    reg.assert_serves(Duration::from_secs(3));
}

/// Opens a connection that announces a 2 GB body for `method target` and sends nothing
/// (a full server may already have refused it).
fn silent_upload(reg: &Registry, method: &str, target: &str) -> Conn {
    let mut c = reg.connect();
    let raw =
        format!("{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000000\r\n\r\n");
    c.send(raw.as_bytes());
    c
}

#[test]
fn silent_2gb_uploads_do_not_starve_the_server() {
    let mut reg = Registry::start(8, None);
    let mut held = Vec::new();
    for i in 0..12 {
        let t = match i % 3 {
            0 => format!("/v2/s/blobs/uploads/?digest={ZERO_DIGEST}"),
            1 => "/v2/s/blobs/uploads/".to_string(),
            _ => "/v2/s/manifests/latest".to_string(),
        };
        held.push(silent_upload(
            &reg,
            if i % 3 == 2 { "PUT" } else { "POST" },
            &t,
        ));
    }
    // Chunked uploads that never send a chunk, too.
    for _ in 0..4 {
        let mut c = reg.connect();
        assert!(c.send(
            b"POST /v2/s/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        ));
        held.push(c);
    }
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..5 {
        reg.assert_serves(Duration::from_secs(3));
    }
    // A manifest announced over the 4 MiB limit is refused without waiting for it.
    let m = held.remove(2);
    drop(m);
    let mut c = silent_upload(&reg, "PUT", "/v2/s/manifests/latest");
    let start = Instant::now();
    let r = c.response().expect("an answer to an oversized manifest");
    assert_eq!(r.status, 413);
    assert_eq!(r.oci_code(), "SIZE_INVALID");
    assert!(start.elapsed() < Duration::from_secs(3));
    drop(held);
}

#[test]
fn slow_and_silent_clients_are_dropped_after_the_timeout() {
    let mut reg = Registry::start(8, Some(2));
    // A body that never comes: 408 once the timeout passes.
    let mut upload = silent_upload(&reg, "POST", "/v2/s/blobs/uploads/");
    // A head sent one byte at a time: 408 once the timeout passes, however it trickles.
    let mut slow = reg.connect();
    assert!(slow.send(b"GET /v2/ HTTP/1.1\r\nX-Slow: "));
    let slow_s = slow.s.try_clone().unwrap();
    let dripper = std::thread::spawn(move || {
        let mut s = slow_s;
        for _ in 0..40 {
            std::thread::sleep(Duration::from_millis(250));
            if s.write_all(b"a").is_err() {
                return;
            }
        }
    });
    // A connection that never sends a byte is closed.
    let mut idle = reg.connect();
    let start = Instant::now();
    let r = upload.response().expect("an answer to a stalled upload");
    assert_eq!(r.status, 408, "{}", r.text());
    r.oci_code();
    let r = slow.response().expect("an answer to a trickling head");
    assert_eq!(r.status, 408, "{}", r.text());
    r.oci_code();
    assert!(idle.closed_within(Duration::from_secs(6)));
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "dropping slow clients took {:?}",
        start.elapsed()
    );
    let _ = dripper.join();
    reg.assert_serves(Duration::from_secs(3));
}

#[test]
fn a_full_server_makes_room_for_new_clients() {
    // One worker thread: 16 connections at most.
    let mut reg = Registry::start(1, None);
    let held: Vec<Conn> = (0..40)
        .map(|_| silent_upload(&reg, "POST", "/v2/f/blobs/uploads/"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..5 {
        reg.assert_serves(Duration::from_secs(3));
    }
    drop(held);
}

#[test]
fn bodies_are_framed_strictly_and_chunked_uploads_work() {
    let mut reg = Registry::start(2, None);
    let bad = [
        ("Content-Length: 99999999999999999999999", 400),
        ("Content-Length: 5\r\nContent-Length: 6", 400),
        ("Content-Length: 5\r\nTransfer-Encoding: chunked", 400),
        ("Transfer-Encoding: gzip", 501),
        ("Content-Length: 18446744073709551615", 413),
    ];
    for (h, status) in bad {
        let raw = format!("POST /v2/b/blobs/uploads/ HTTP/1.1\r\nHost: x\r\n{h}\r\n\r\n");
        let r = request(reg.port, raw.as_bytes()).expect("an answer to a bad body header");
        assert_eq!(r.status, status, "{h}: {}", r.text());
        r.oci_code();
    }
    // A malformed chunk.
    let r = request(
        reg.port,
        b"POST /v2/b/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    )
    .expect("an answer to a malformed chunk");
    assert_eq!(r.status, 400);
    r.oci_code();
    // A chunked upload with Expect: 100-continue, then the final PUT, on one connection.
    let data = b"hostile clients are dropped, friendly ones served";
    let digest = sha256(data);
    let mut c = reg.connect();
    assert!(c.send(b"POST /v2/b/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
    let r = c.response().expect("upload start");
    assert_eq!(r.status, 202);
    let loc = r.header("location").unwrap().to_string();
    let head = format!(
        "PATCH {loc} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
    );
    assert!(c.send(head.as_bytes()));
    let mut interim = [0u8; 25];
    c.s.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    let body = format!(
        "10\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        std::str::from_utf8(&data[..16]).unwrap(),
        data.len() - 16,
        std::str::from_utf8(&data[16..]).unwrap()
    );
    assert!(c.send(body.as_bytes()));
    let r = c.response().expect("chunk accepted");
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(
        r.header("range"),
        Some(format!("0-{}", data.len() - 1).as_str())
    );
    // Two pipelined requests in one write.
    let two = format!(
        "PUT {loc}?digest={digest} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nHEAD /v2/b/blobs/{digest} HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    assert!(c.send(two.as_bytes()));
    let r = c.response().expect("upload finished");
    assert_eq!(r.status, 201, "{}", r.text());
    let r = c.head_response().expect("HEAD answered");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some(data.len().to_string().as_str())
    );
    assert!(c.send(format!("GET /v2/b/blobs/{digest} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()));
    let r = c.response().expect("blob served");
    assert_eq!((r.status, r.body.as_slice()), (200, &data[..]));
    reg.assert_serves(Duration::from_secs(3));
}
