//! gcr's registry client against a small scripted registry of the test's own on loopback:
//! Bearer-token auth, platform selection, layer deduplication and retries work; wrong
//! digests, truncated blobs, oversized or invalid manifests, endless 401s and stalled
//! servers each fail with a clear error in bounded time and leave nothing stored.

mod common;

use common::{stderr, stdout};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as the fake registry saw it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
}

enum Action {
    Reply(u16, Vec<(String, String)>, Vec<u8>),
    /// Announce `len` bytes, send `body`, close.
    Truncated(usize, Vec<u8>),
    /// Never answer.
    Stall,
    /// Announce `len` bytes and send one every 300 ms.
    Drip(usize),
}

type Handler = Arc<dyn Fn(&Request) -> Action + Send + Sync>;

/// A scripted HTTP server on 127.0.0.1; stopped on drop.
struct Fake {
    port: u16,
    hits: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Fake {
    fn start(handler: impl Fn(&Request, u16) -> Action + Send + Sync + 'static) -> Fake {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let h: Handler = Arc::new(move |r| handler(r, port));
        let (hits2, stop2) = (hits.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for s in l.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(s) = s else { continue };
                let (h, hits, stop) = (h.clone(), hits2.clone(), stop2.clone());
                std::thread::spawn(move || serve(s, h, hits, stop));
            }
        });
        Fake {
            port,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn paths(&self) -> Vec<String> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(s: TcpStream, h: Handler, hits: Arc<Mutex<Vec<Request>>>, stop: Arc<AtomicBool>) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut rd = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    loop {
        let mut line = String::new();
        if rd.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers = HashMap::new();
        loop {
            let mut l = String::new();
            if rd.read_line(&mut l).unwrap_or(0) == 0 {
                return;
            }
            let l = l.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if rd.read_exact(&mut body).is_err() {
            return;
        }
        let req = Request {
            method: method.clone(),
            path,
            headers,
        };
        hits.lock().unwrap().push(req.clone());
        match h(&req) {
            Action::Reply(status, hs, body) => {
                let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
                for (k, v) in hs {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                let mut bytes = out.into_bytes();
                if method != "HEAD" {
                    bytes.extend_from_slice(&body);
                }
                if w.write_all(&bytes).is_err() {
                    return;
                }
            }
            Action::Truncated(len, body) => {
                let _ = w.write_all(
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").as_bytes(),
                );
                let _ = w.write_all(&body);
                return;
            }
            Action::Drip(len) => {
                let _ = w.write_all(format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n").as_bytes());
                for _ in 0..len {
                    if stop.load(Ordering::Relaxed) || w.write_all(b" ").is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
                return;
            }
            Action::Stall => {
                for _ in 0..600 {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                return;
            }
        }
    }
}

fn sha256(data: &[u8]) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(data).unwrap();
    let o = c.wait_with_output().unwrap();
    format!("sha256:{}", stdout(&o).split_whitespace().next().unwrap())
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// An image of the fake registry: manifest, config and layer blobs.
#[derive(Clone)]
struct Img {
    manifest: Vec<u8>,
    digest: String,
    blobs: HashMap<String, Vec<u8>>,
    layers: Vec<String>,
    config: String,
}

fn image(layers: &[&[u8]], arch: &str) -> Img {
    let diff: Vec<String> = layers
        .iter()
        .map(|l| sha256(&[l, &b"-diff"[..]].concat()))
        .collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff},
    }))
    .unwrap();
    let cd = sha256(&config);
    let mut blobs = HashMap::new();
    blobs.insert(cd.clone(), config.clone());
    let mut ls = Vec::new();
    let mut descs = Vec::new();
    for l in layers {
        let d = sha256(l);
        blobs.insert(d.clone(), l.to_vec());
        descs.push(serde_json::json!({"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": d, "size": l.len()}));
        ls.push(d);
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": cd, "size": config.len()},
        "layers": descs,
    }))
    .unwrap();
    Img {
        digest: sha256(&manifest),
        manifest,
        blobs,
        layers: ls,
        config: cd,
    }
}

fn ok_json(ct: &str, body: Vec<u8>, digest: Option<&str>) -> Action {
    let mut h = vec![("Content-Type".to_string(), ct.to_string())];
    if let Some(d) = digest {
        h.push(("Docker-Content-Digest".into(), d.into()));
    }
    Action::Reply(200, h, body)
}

fn not_found() -> Action {
    Action::Reply(
        404,
        vec![],
        br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#.to_vec(),
    )
}

/// Serves `images` (by tag name and digest) and all their blobs.
fn registry(
    images: Vec<(&'static str, Img)>,
    extra: HashMap<String, (String, Vec<u8>)>,
) -> impl Fn(&Request) -> Action {
    move |r: &Request| {
        if r.path == "/v2/" {
            return Action::Reply(200, vec![], b"{}".to_vec());
        }
        if let Some((_, rest)) = r.path.split_once("/manifests/") {
            if let Some((ct, b)) = extra.get(rest) {
                return ok_json(ct, b.clone(), Some(&sha256(b)));
            }
            for (tag, img) in &images {
                if rest == *tag || rest == img.digest {
                    return ok_json(
                        "application/vnd.docker.distribution.manifest.v2+json",
                        img.manifest.clone(),
                        Some(&img.digest),
                    );
                }
            }
            return not_found();
        }
        if let Some((_, d)) = r.path.split_once("/blobs/") {
            for (_, img) in &images {
                if let Some(b) = img.blobs.get(d) {
                    return Action::Reply(200, vec![], b.clone());
                }
            }
        }
        not_found()
    }
}

struct Client {
    root: tempfile::TempDir,
    dc: tempfile::TempDir,
}

impl Client {
    fn new() -> Client {
        Client {
            root: tempfile::tempdir().unwrap(),
            dc: tempfile::tempdir().unwrap(),
        }
    }

    fn gcr(&self, args: &[&str]) -> (Output, Duration) {
        let t = Instant::now();
        let o = Command::new(common::gcr_bin())
            .env("GCR_ROOT", self.root.path())
            .env("GCR_RUN_DIR", self.root.path().join("run"))
            .env("DOCKER_CONFIG", self.dc.path())
            .env("GCR_REGISTRY_TIMEOUT", "1")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (o, t.elapsed())
    }

    fn ok(&self, args: &[&str]) -> String {
        let (o, _) = self.gcr(args);
        assert!(
            o.status.success(),
            "gcr {args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        format!("{}{}", stdout(&o), stderr(&o))
    }

    /// Runs a pull that must fail with `needle` in the message, within `secs`, storing nothing.
    fn pull_fails(&self, reference: &str, needle: &str, secs: u64) -> String {
        let before = self.blobs();
        let (o, took) = self.gcr(&["pull", reference]);
        let e = stderr(&o);
        assert_eq!(
            o.status.code(),
            Some(1),
            "pull {reference} should fail: {}{e}",
            stdout(&o)
        );
        assert!(e.contains(needle), "expected '{needle}' in: {e}");
        assert_eq!(
            e.trim().lines().filter(|l| l.starts_with("Error")).count(),
            1,
            "one error line: {e}"
        );
        assert!(took < Duration::from_secs(secs), "took {took:?}: {e}");
        assert_eq!(self.blobs(), before, "nothing may be stored: {e}");
        let tmp = std::fs::read_dir(self.root.path().join("tmp"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(tmp, 0, "temp files left behind");
        let imgs = self.ok(&["images", "-q"]);
        assert!(!imgs.contains(reference), "{imgs}");
        e
    }

    fn blobs(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.path().join("blobs/sha256"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn inspect(&self, image: &str) -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_str(&self.ok_stdout(&["inspect", image])).unwrap();
        if v.is_array() {
            v[0].clone()
        } else {
            v
        }
    }

    fn ok_stdout(&self, args: &[&str]) -> String {
        let (o, _) = self.gcr(args);
        assert!(o.status.success(), "gcr {args:?}: {}", stderr(&o));
        stdout(&o)
    }
}

#[test]
fn bearer_token_auth_and_layer_dedup() {
    let a = image(&[b"base layer", b"app layer one"], host_arch());
    let b = image(&[b"base layer", b"app layer two"], host_arch());
    let inner = registry(
        vec![("a", a.clone()), ("b", b.clone()), ("b2", b.clone())],
        HashMap::new(),
    );
    let token_scopes = Arc::new(Mutex::new(Vec::new()));
    let ts = token_scopes.clone();
    let fake = Fake::start(move |r, port| {
        if r.path.starts_with("/token") {
            ts.lock().unwrap().push(r.path.clone());
            return ok_json("application/json", br#"{"token":"tok123"}"#.to_vec(), None);
        }
        if r.headers.get("authorization").map(String::as_str) != Some("Bearer tok123") {
            let ch = format!("Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\",scope=\"repository:app:pull\"");
            return Action::Reply(401, vec![("WWW-Authenticate".into(), ch)], b"{}".to_vec());
        }
        inner(r)
    });
    let c = Client::new();
    let host = fake.host();
    c.ok(&["pull", &format!("{host}/app:a")]);
    let scopes = token_scopes.lock().unwrap().clone();
    assert!(
        scopes
            .iter()
            .any(|p| p.contains("service=fake") && p.contains("scope=repository%3Aapp%3Apull")),
        "{scopes:?}"
    );
    let v = c.inspect(&format!("{host}/app:a"));
    assert_eq!(v["Architecture"], serde_json::json!(host_arch()));
    // Image b shares the base layer: only its new layer and config are downloaded.
    fake.hits.lock().unwrap().clear();
    let out = c.ok(&["pull", &format!("{host}/app:b")]);
    assert!(out.contains("Already exists"), "{out}");
    let gets: Vec<String> = fake
        .paths()
        .into_iter()
        .filter(|p| p.starts_with("GET") && p.contains("/blobs/"))
        .collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert!(
        gets.iter().any(|p| p.ends_with(&b.layers[1]))
            && gets.iter().any(|p| p.ends_with(&b.config)),
        "{gets:?}"
    );
    assert!(!gets.iter().any(|p| p.ends_with(&a.layers[0])), "{gets:?}");
    // A first pull of a tag GETs its manifest at once (a HEAD first would cost a round
    // trip for nothing).
    // (Counted once authorized: each gcr process first gets a 401 and a token.)
    let manifests = |method: &str| {
        fake.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|r| {
                r.method == method
                    && r.path.ends_with("/manifests/b")
                    && r.headers.contains_key("authorization")
            })
            .count()
    };
    assert_eq!(
        (manifests("HEAD"), manifests("GET")),
        (0, 1),
        "{:?}",
        fake.paths()
    );
    // Re-pull: a manifest HEAD and nothing else (no GET, which registries count).
    fake.hits.lock().unwrap().clear();
    let out = c.ok(&["pull", &format!("{host}/app:b")]);
    assert!(out.contains("up to date"), "{out}");
    assert!(
        fake.paths().iter().all(|p| !p.contains("/blobs/")),
        "{:?}",
        fake.paths()
    );
    assert_eq!(
        (manifests("HEAD"), manifests("GET")),
        (1, 0),
        "{:?}",
        fake.paths()
    );
    // The same image under a new tag: one GET, found stored, nothing downloaded.
    fake.hits.lock().unwrap().clear();
    let out = c.ok(&["pull", &format!("{host}/app:b2")]);
    assert!(out.contains("up to date"), "{out}");
    assert!(
        fake.paths().iter().all(|p| !p.contains("/blobs/")),
        "{:?}",
        fake.paths()
    );
}

#[test]
fn index_platform_selection() {
    let amd = image(&[b"amd64 layer"], "amd64");
    let arm = image(&[b"arm64 layer"], "arm64");
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": amd.digest, "size": amd.manifest.len(), "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": arm.digest, "size": arm.manifest.len(), "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ]
    }))
    .unwrap();
    let mut extra = HashMap::new();
    extra.insert(
        "multi".to_string(),
        ("application/vnd.oci.image.index.v1+json".to_string(), index),
    );
    let fake = Fake::start({
        let h = registry(vec![("amd", amd), ("arm", arm)], extra);
        move |r, _| h(r)
    });
    let host = fake.host();
    let c = Client::new();
    c.ok(&[
        "pull",
        "--platform",
        "linux/arm64",
        &format!("{host}/m:multi"),
    ]);
    assert_eq!(
        c.inspect(&format!("{host}/m:multi"))["Architecture"],
        serde_json::json!("arm64")
    );
    let d = Client::new();
    d.ok(&[
        "pull",
        "--platform",
        "linux/amd64",
        &format!("{host}/m:multi"),
    ]);
    assert_eq!(
        d.inspect(&format!("{host}/m:multi"))["Architecture"],
        serde_json::json!("amd64")
    );
}

#[test]
fn index_without_the_platform_is_a_clear_error() {
    let amd = image(&[b"amd64 layer"], "amd64");
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"digest": amd.digest, "size": amd.manifest.len(), "platform": {"os": "windows", "architecture": "amd64"}}]
    }))
    .unwrap();
    let mut extra = HashMap::new();
    extra.insert(
        "win".to_string(),
        (
            "application/vnd.docker.distribution.manifest.list.v2+json".to_string(),
            index,
        ),
    );
    let h = registry(vec![("amd", amd)], extra);
    let fake = Fake::start(move |r, _| h(r));
    let c = Client::new();
    let e = c.pull_fails(
        &format!("{}/w:win", fake.host()),
        "has no manifest for platform",
        10,
    );
    assert!(e.contains("windows/amd64"), "{e}");
}

#[test]
fn wrong_blob_digest_stores_nothing() {
    let img = image(&[b"good layer", b"second layer"], host_arch());
    let bad_layer = img.layers[1].clone();
    let h = registry(vec![("t", img)], HashMap::new());
    let fake = Fake::start(move |r, _| {
        if r.path.ends_with(&bad_layer) {
            return Action::Reply(200, vec![], b"evil layer!!".to_vec());
        }
        h(r)
    });
    let c = Client::new();
    c.pull_fails(&format!("{}/x:t", fake.host()), "digest mismatch", 15);
}

#[test]
fn wrong_manifest_digest_is_refused() {
    let img = image(&[b"layer"], host_arch());
    let h = registry(vec![("t", img.clone())], HashMap::new());
    let fake = Fake::start(move |r, _| {
        if r.path.contains("/manifests/") {
            let mut m = img.manifest.clone();
            m.push(b' ');
            return ok_json(
                "application/vnd.docker.distribution.manifest.v2+json",
                m,
                Some(&img.digest),
            );
        }
        h(r)
    });
    let c = Client::new();
    c.pull_fails(&format!("{}/x:t", fake.host()), "digest mismatch", 10);
    c.pull_fails(
        &format!("{}/x@{}", fake.host(), sha256(b"other")),
        "digest mismatch",
        10,
    );
}

#[test]
fn truncated_blob_fails_in_bounded_time() {
    let img = image(
        &[b"a layer that will be cut short by the server"],
        host_arch(),
    );
    let layer = img.layers[0].clone();
    let full = img.blobs[&layer].clone();
    let h = registry(vec![("t", img)], HashMap::new());
    let fake = Fake::start(move |r, _| {
        if r.path.ends_with(&layer) {
            return Action::Truncated(full.len(), full[..10].to_vec());
        }
        h(r)
    });
    let c = Client::new();
    let e = c.pull_fails(&format!("{}/x:t", fake.host()), "downloading blob", 20);
    assert!(e.contains("truncated") || e.contains("broke"), "{e}");
}

#[test]
fn broken_blob_transfer_resumes_with_range() {
    let img = image(
        &[b"a layer whose first transfer breaks half way through"],
        host_arch(),
    );
    let layer = img.layers[0].clone();
    let full = img.blobs[&layer].clone();
    let h = registry(vec![("t", img)], HashMap::new());
    let first = Arc::new(AtomicBool::new(true));
    let fake = Fake::start(move |r, _| {
        if r.path.ends_with(&layer) {
            if first.swap(false, Ordering::Relaxed) {
                return Action::Truncated(full.len(), full[..20].to_vec());
            }
            if let Some(from) = r
                .headers
                .get("range")
                .and_then(|v| v.strip_prefix("bytes="))
            {
                let from: usize = from.trim_end_matches('-').parse().unwrap();
                let cr = format!("bytes {from}-{}/{}", full.len() - 1, full.len());
                return Action::Reply(
                    206,
                    vec![("Content-Range".into(), cr)],
                    full[from..].to_vec(),
                );
            }
        }
        h(r)
    });
    let c = Client::new();
    c.ok(&["pull", &format!("{}/x:t", fake.host())]);
    let ranged = fake
        .hits
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.headers.get("range").map(String::as_str) == Some("bytes=20-"));
    assert!(ranged, "{:?}", fake.paths());
}

#[test]
fn oversized_and_invalid_manifests_are_refused() {
    let mut extra = HashMap::new();
    let mut big = br#"{"schemaVersion":2,"pad":""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 5 * 1024 * 1024));
    big.extend_from_slice(br#""}"#);
    extra.insert(
        "big".to_string(),
        (
            "application/vnd.oci.image.manifest.v1+json".to_string(),
            big,
        ),
    );
    extra.insert(
        "junk".to_string(),
        (
            "application/vnd.oci.image.manifest.v1+json".to_string(),
            b"{\"schemaVersion\": 2, oops".to_vec(),
        ),
    );
    extra.insert(
        "v1".to_string(),
        (
            "application/vnd.docker.distribution.manifest.v1+prettyjws".to_string(),
            br#"{"schemaVersion":1,"fsLayers":[]}"#.to_vec(),
        ),
    );
    let h = registry(vec![], extra);
    let fake = Fake::start(move |r, _| h(r));
    let c = Client::new();
    let host = fake.host();
    c.pull_fails(&format!("{host}/x:big"), "4 MiB", 10);
    c.pull_fails(&format!("{host}/x:junk"), "not valid JSON", 10);
    c.pull_fails(&format!("{host}/x:v1"), "schema 1", 10);
    c.pull_fails(&format!("{host}/x:missing"), "not found", 10);
}

#[test]
fn endless_401_is_an_authentication_error() {
    let fake = Fake::start(|r, port| {
        if r.path.starts_with("/token") {
            return ok_json("application/json", br#"{"token":"useless"}"#.to_vec(), None);
        }
        let ch = format!("Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\"");
        Action::Reply(401, vec![("WWW-Authenticate".into(), ch)], b"{}".to_vec())
    });
    let c = Client::new();
    let e = c.pull_fails(&format!("{}/x:t", fake.host()), "authentication to", 10);
    assert!(e.contains("gcr login"), "{e}");
    assert!(
        fake.paths().len() < 20,
        "bounded number of requests: {:?}",
        fake.paths()
    );
    // Basic: the same, with credentials that are always refused.
    let basic = Fake::start(|_, _| {
        Action::Reply(
            401,
            vec![("WWW-Authenticate".into(), "Basic realm=\"x\"".into())],
            b"{}".to_vec(),
        )
    });
    let cfg = format!(r#"{{"auths":{{"{}":{{"auth":"dTpw"}}}}}}"#, basic.host());
    std::fs::write(c.dc.path().join("config.json"), cfg).unwrap();
    c.pull_fails(
        &format!("{}/x:t", basic.host()),
        "refused the credentials",
        10,
    );
}

#[test]
fn stalled_server_times_out() {
    let fake = Fake::start(|r, _| {
        if r.path == "/v2/" {
            return Action::Reply(200, vec![], b"{}".to_vec());
        }
        Action::Stall
    });
    let c = Client::new();
    c.pull_fails(
        &format!("{}/x:t", fake.host()),
        "did not answer in time",
        30,
    );
    assert!(
        fake.paths().len() <= 5,
        "bounded retries: {:?}",
        fake.paths()
    );
}

#[test]
fn dripping_server_is_cut_off() {
    let fake = Fake::start(|r, _| {
        if r.path == "/v2/" {
            return Action::Reply(200, vec![], b"{}".to_vec());
        }
        Action::Drip(100_000)
    });
    let c = Client::new();
    c.pull_fails(
        &format!("{}/x:t", fake.host()),
        "did not answer in time",
        40,
    );
}

#[test]
fn server_errors_are_retried() {
    let img = image(&[b"layer"], host_arch());
    let h = registry(vec![("t", img)], HashMap::new());
    let fails = Arc::new(AtomicUsize::new(0));
    let f = fails.clone();
    let fake = Fake::start(move |r, _| {
        if r.path.contains("/blobs/") && f.fetch_add(1, Ordering::Relaxed) < 2 {
            return Action::Reply(503, vec![], b"busy".to_vec());
        }
        h(r)
    });
    let c = Client::new();
    c.ok(&["pull", &format!("{}/x:t", fake.host())]);
    assert!(fails.load(Ordering::Relaxed) >= 3);
}
