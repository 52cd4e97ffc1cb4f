//! Hostile clients of `gcr system service` (issue 20), over raw connections to its socket:
//! a request that is not HTTP, a huge header, JSON nested past any sane depth, a create
//! body and an archive PUT that break off mid-upload (the client vanishes), and a hijacked
//! attach dropped mid-stream or before its container starts. Each gets Docker's status
//! (or, once the client is gone, nothing), the service stays up and answers the next
//! request, and nothing is left half-made: no container from the broken create, no file
//! from the broken copy, a running container untouched by its attach's client leaving.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::servers::need_tools;
use common::service::{swagger_check, swagger_check_usable, Service};
use common::{eventually, need_root, stdout, Env, IMAGE};

fn ready(test: &str) -> bool {
    need_root(test) && need_tools(test, &["docker"])
}

fn connect(sock: &Path) -> UnixStream {
    let s = UnixStream::connect(sock).expect("connect to the service's socket");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    s
}

/// Sends `req` (which asks for `Connection: close`, or is one the service answers by
/// closing) and reads the whole answer (a write the service cut short is fine). The write side stays open: hyper takes a client's
/// half-close for a client that left.
fn exchange(sock: &Path, req: &[u8]) -> String {
    let mut s = connect(sock);
    // The service may answer (431 for a huge head) and close before it read everything.
    let _ = s.write_all(req);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads from `s` until `want` appears in what was read (at most 20 s); returns it all.
fn read_until(s: &mut UnixStream, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(want) {
        assert!(
            Instant::now() < deadline,
            "no {want:?} in {:?}",
            String::from_utf8_lossy(&got)
        );
        match s.read(&mut buf) {
            Ok(0) => panic!(
                "the connection closed before {want:?}: {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("reading the answer: {e}"),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// The service is up and answers a ping.
fn answers(svc: &mut Service) {
    assert!(svc.running(), "the service exited");
    let ping = exchange(
        &svc.socket(),
        b"GET /_ping HTTP/1.1\r\nHost: gcr\r\nConnection: close\r\n\r\n",
    );
    assert!(ping.starts_with("HTTP/1.1 200"), "ping answered {ping:?}");
}

fn attach_request(id: &str) -> String {
    format!(
        "POST /v1.41/containers/{id}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\n\
         Host: gcr\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
    )
}

/// A tar entry: header and data padded to 512 bytes.
fn entry(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path(name).expect("tar name");
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

#[test]
fn bad_requests_get_docker_errors_and_the_service_stays_up() {
    if !ready("bad_requests_get_docker_errors_and_the_service_stays_up") {
        return;
    }
    let env = Env::new();
    let mut svc = Service::on_socket(&env);
    let sock = svc.socket();

    let r = exchange(&sock, b"GARBAGE\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 400"), "not HTTP answered {r:?}");
    answers(&mut svc);

    let big = format!(
        "GET /_ping HTTP/1.1\r\nHost: gcr\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let r = exchange(&sock, big.as_bytes());
    assert!(
        r.starts_with("HTTP/1.1 431") || r.starts_with("HTTP/1.1 400") || r.is_empty(),
        "a 1 MiB header answered {:?}",
        &r[..r.len().min(200)]
    );
    answers(&mut svc);

    // JSON nested far deeper than any create body: a 400 naming the JSON, not a crash.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let req = format!(
        "POST /containers/create HTTP/1.1\r\nHost: gcr\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{deep}",
        deep.len()
    );
    let r = exchange(&sock, req.as_bytes());
    assert!(r.starts_with("HTTP/1.1 400"), "deep JSON answered {r:?}");
    assert!(r.contains("invalid JSON in the request body"), "{r}");
    answers(&mut svc);

    // Fields of the wrong type are named; the container is not made.
    let body = format!(r#"{{"Image": "{IMAGE}", "HostConfig": {{"Memory": "lots"}}}}"#);
    let req = format!(
        "POST /containers/create?name=typed HTTP/1.1\r\nHost: gcr\r\nContent-Type: \
         application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let r = exchange(&sock, req.as_bytes());
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    assert!(r.contains("invalid Memory"), "{r}");
    assert_eq!(
        svc.ok(&["ps", "-aq"]).trim(),
        "",
        "a refused create made a container"
    );
}

#[test]
fn vanished_clients_leave_nothing_half_made() {
    if !ready("vanished_clients_leave_nothing_half_made") {
        return;
    }
    let env = Env::new();
    let mut svc = Service::on_socket(&env);
    let sock = svc.socket();

    // A create whose body breaks off: no container, and its name stays free.
    let body = format!(r#"{{"Image": "{IMAGE}", "Cmd": ["true"]}}"#);
    let mut s = connect(&sock);
    write!(
        s,
        "POST /containers/create?name=half HTTP/1.1\r\nHost: gcr\r\nContent-Type: \
         application/json\r\nContent-Length: {}\r\n\r\n{}",
        body.len() + 100,
        body
    )
    .expect("send half a create");
    drop(s);
    std::thread::sleep(Duration::from_millis(300));
    answers(&mut svc);
    assert_eq!(
        svc.ok(&["ps", "-aq", "--filter", "name=half"]).trim(),
        "",
        "a create whose body broke off made a container"
    );
    svc.ok(&["create", "--name", "half", IMAGE, "true"]);
    svc.ok(&["rm", "half"]);

    // An archive PUT that breaks off at an entry's end: nothing of it is copied.
    svc.ok(&["run", "-d", "--name", "cp", IMAGE, "sleep", "60"]);
    let first = entry("first", b"complete\n");
    let second = entry("second", &[b'x'; 4096]);
    let mut s = connect(&sock);
    write!(
        s,
        "PUT /containers/cp/archive?path=/tmp HTTP/1.1\r\nHost: gcr\r\n\
         Content-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        first.len() + second.len() + 1024
    )
    .expect("send the head");
    s.write_all(&first).expect("send the first entry");
    std::thread::sleep(Duration::from_millis(200));
    drop(s);
    std::thread::sleep(Duration::from_millis(500));
    answers(&mut svc);
    let ls = svc.docker(&["exec", "cp", "ls", "/tmp"]);
    assert!(ls.status.success());
    assert!(
        !stdout(&ls).contains("first"),
        "a copy whose body broke off placed its first entry: {}",
        stdout(&ls)
    );

    // An attach dropped mid-stream: the container runs on, its logs go on, another attach
    // works.
    svc.ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        IMAGE,
        "sh",
        "-c",
        "while true; do echo tick; sleep 0.05; done",
    ]);
    let mut s = connect(&sock);
    s.write_all(attach_request("ticker").as_bytes())
        .expect("send the attach");
    let got = read_until(&mut s, "tick");
    assert!(got.starts_with("HTTP/1.1 101"), "{got:?}");
    drop(s);
    answers(&mut svc);
    let before = svc.ok(&["logs", "ticker"]).lines().count();
    assert!(
        eventually(10, || svc.ok(&["logs", "ticker"]).lines().count()
            > before + 5),
        "the container stopped logging after its attach's client left"
    );
    assert_eq!(
        svc.ok(&["inspect", "-f", "{{.State.Running}}", "ticker"])
            .trim(),
        "true"
    );
    let mut s = connect(&sock);
    s.write_all(attach_request("ticker").as_bytes())
        .expect("send the attach");
    read_until(&mut s, "tick");
    drop(s);

    // An attach made before the start, dropped before it: the start is not held for it.
    svc.ok(&[
        "create",
        "--name",
        "late",
        IMAGE,
        "sh",
        "-c",
        "echo started; sleep 60",
    ]);
    let mut s = connect(&sock);
    s.write_all(attach_request("late").as_bytes())
        .expect("send the attach");
    let got = read_until(&mut s, "\r\n\r\n");
    assert!(got.starts_with("HTTP/1.1 101"), "{got:?}");
    drop(s);
    svc.ok(&["start", "late"]);
    assert!(
        eventually(10, || svc.ok(&["logs", "late"]).contains("started")),
        "the start held the output for an attach whose client had left"
    );
    for c in ["cp", "ticker", "late"] {
        svc.ok(&["rm", "-f", c]);
    }
    answers(&mut svc);
}

/// The swagger check itself: a recorded answer with Docker's shape passes, one that lacks
/// required fields or has a wrong type, an undocumented success status or a body that is
/// not JSON fails with the path, the field and the reason.
#[test]
fn the_swagger_check_catches_wrong_shapes() {
    if !swagger_check_usable() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the swagger check's peers are missing (scripts/deps.sh); CI=true does not skip"
        );
        eprintln!("skipped the_swagger_check_catches_wrong_shapes: no swagger or jsonschema");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let record = dir.path().join("responses.jsonl");
    let good = r#"{"method":"POST","path":"/containers/create","version":"1.41","status":201,"ctype":"application/json","body":{"Id":"abc","Warnings":[]}}
{"method":"GET","path":"/images/library/busybox:1/json","version":"1.41","status":404,"ctype":"application/json","body":{"message":"No such image"}}
{"method":"POST","path":"/containers/abc/start","version":"1.41","status":204,"ctype":"text/plain"}
"#;
    std::fs::write(&record, good).expect("write the record");
    assert_eq!(swagger_check(&record), Ok(()));
    let bad = r#"{"method":"GET","path":"/images/json","version":"1.41","status":200,"ctype":"application/json","body":[{"Id":"x","RepoTags":null}]}
{"method":"POST","path":"/containers/abc/wait","version":"1.41","status":200,"ctype":"application/json","body":{"StatusCode":"0"},"stream":true}
{"method":"POST","path":"/containers/abc/start","version":"1.41","status":200,"ctype":"text/plain"}
{"method":"GET","path":"/version","version":"1.41","status":200,"ctype":"application/json","invalid":"{nope"}
"#;
    std::fs::write(&record, bad).expect("write the record");
    let report = swagger_check(&record).expect_err("wrong shapes pass the check");
    for want in [
        "GET /images/json (/images/json) 200: at $[0].RepoTags",
        "'ParentId' is a required property",
        "at $.StatusCode: '0' is not of type 'integer'",
        "status 200 is not one the swagger gives",
        "GET /version 200: the body is not JSON",
    ] {
        assert!(report.contains(want), "no {want:?} in {report}");
    }
}
