//! The JSONL protocol of `gcr system service` (issue 20 item 4, docs/jsonl.md), driven by a
//! plain Rust UnixStream client: ping, version, info, ps with filters, inspect, run (detached
//! and foreground with its output as progress and its exit code), start/stop/kill/rm, logs,
//! events until cancel, overlapping requests answered by id, pull and push with a local
//! registry (`gcr registry serve`), a policy denial with the gate's code and rule, bad lines
//! (not JSON, no id, no type, unknown type, a huge line) answered with errors on a kept
//! connection, a client that leaves mid-run leaving no half-made container, and the
//! socket's mode. The service and the registry are killed by guards on drop.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::servers::Server;
use common::service::Service;
use common::{eventually, need_root, Env, IMAGE};
use serde_json::{json, Value};

/// A JSONL client: lines read by a thread, kept until asked for.
struct Client {
    s: UnixStream,
    rx: mpsc::Receiver<Value>,
    /// Lines read but not asked for yet, in order.
    seen: Vec<Value>,
}

impl Client {
    fn connect(path: &Path) -> Client {
        let s = UnixStream::connect(path).expect("connect to the JSONL socket");
        let r = s.try_clone().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines() {
                let Ok(line) = line else { return };
                let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                    panic!("the service sent a line that is not JSON ({e}): {line}")
                });
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Client {
            s,
            rx,
            seen: Vec::new(),
        }
    }

    fn send_raw(&mut self, b: &[u8]) {
        self.s.write_all(b).expect("write to the JSONL socket");
    }

    fn send(&mut self, v: Value) {
        let mut b = serde_json::to_vec(&v).unwrap();
        b.push(b'\n');
        self.send_raw(&b);
    }

    /// The next line `f` accepts (others are kept), within `secs`.
    fn take(&mut self, secs: u64, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.seen.iter().position(&f) {
            return self.seen.remove(i);
        }
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(v) if f(&v) => return v,
                Ok(v) => self.seen.push(v),
                Err(_) => panic!("no {what} within {secs}s; lines seen: {:?}", self.seen),
            }
        }
    }

    /// The final line (`ok` present) of request `id`.
    fn done(&mut self, id: &str, secs: u64) -> Value {
        self.take(secs, &format!("final line of {id}"), |v| {
            v["id"] == id && v.get("ok").is_some()
        })
    }

    /// Sends `req` and returns its final line.
    fn call(&mut self, req: Value) -> Value {
        let id = req["id"].as_str().expect("string id").to_string();
        self.send(req);
        self.done(&id, 60)
    }

    /// Sends `req` and returns its result, asserting success.
    fn ok(&mut self, req: Value) -> Value {
        let v = self.call(req.clone());
        assert_eq!(v["ok"], true, "{req} failed: {v}");
        v["result"].clone()
    }

    /// Every progress line of `id` seen so far (taken).
    fn progress(&mut self, id: &str) -> Vec<Value> {
        while let Ok(v) = self.rx.try_recv() {
            self.seen.push(v);
        }
        let (mine, rest): (Vec<Value>, Vec<Value>) = std::mem::take(&mut self.seen)
            .into_iter()
            .partition(|v| v["id"] == id && v.get("progress").is_some());
        self.seen = rest;
        mine.into_iter().map(|v| v["progress"].clone()).collect()
    }
}

fn jsonl_socket(svc: &Service) -> PathBuf {
    svc.socket().with_file_name("gcr.jsonl.sock")
}

fn assert_error(v: &Value, code: &str, says: &str) {
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    let reason = v["error"]["reason"].as_str().unwrap_or("");
    assert!(reason.contains(says), "expected {says:?} in {v}");
}

#[test]
fn jsonl_lines_errors_and_socket_mode() {
    if !need_root("jsonl_lines_errors_and_socket_mode") {
        return;
    }
    let env = Env::new();
    let svc = Service::on_socket(&env);
    let path = jsonl_socket(&svc);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the JSONL socket's mode");
    let dir_mode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700, "the socket directory's mode");

    let mut c = Client::connect(&path);
    assert_eq!(c.ok(json!({"type":"ping","id":"p1"})), json!("OK"));
    let v = c.ok(json!({"type":"version","id":"v1"}));
    assert_eq!(v["ApiVersion"], "1.41", "{v}");
    let v = c.ok(json!({"type":"info","id":"i1"}));
    assert_eq!(v["Images"], 1, "{v}");
    assert_eq!(c.ok(json!({"type":"ps","id":"ps1","all":true})), json!([]));
    // An integer id is echoed as one.
    c.send(json!({"type":"ping","id":42}));
    let v = c.take(10, "ping 42", |v| v["id"] == 42);
    assert_eq!(v["ok"], true, "{v}");

    // Bad lines: each answered, the connection kept.
    c.send_raw(b"this is not json\n");
    let v = c.take(10, "error of a non-JSON line", |v| v["ok"] == false);
    assert_error(&v, "invalid_request", "not JSON");
    assert_eq!(v["id"], Value::Null, "{v}");
    c.send(json!({"type":"ping"}));
    let v = c.take(10, "error of a line without id", |v| v["ok"] == false);
    assert_error(&v, "invalid_request", "field 'id'");
    c.send(json!({"type":"ping","id":{"x":1}}));
    let v = c.take(10, "error of a bad id", |v| v["ok"] == false);
    assert_error(&v, "invalid_request", "field 'id'");
    let v = c.call(json!({"id":"nt"}));
    assert_error(&v, "invalid_request", "field 'type'");
    let v = c.call(json!({"type":"frobnicate","id":"u1"}));
    assert_error(&v, "unknown_type", "frobnicate");
    let mut huge = br#"{"type":"ping","id":"big","pad":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'x', 3 << 20));
    huge.extend_from_slice(b"\"}\n");
    c.send_raw(&huge);
    let v = c.take(20, "error of a huge line", |v| v["ok"] == false);
    assert_error(&v, "invalid_request", "longer than the limit");
    let v = c.call(json!({"type":"ps","id":"bad-filter","filters":{"nosuch":["x"]}}));
    assert_error(&v, "invalid_request", "invalid filter 'nosuch'");
    let v = c.call(json!({"type":"ps","id":"bad-all","all":"yes"}));
    assert_error(&v, "invalid_request", "field 'all'");
    let v = c.call(json!({"type":"inspect","id":"in1","target":"nosuch"}));
    assert_error(&v, "not_found", "nosuch");
    let v = c.call(json!({"type":"rm","id":"rm1","target":"nosuch"}));
    assert_error(&v, "not_found", "nosuch");
    let v = c.call(json!({"type":"run","id":"r0"}));
    assert_error(&v, "invalid_request", "field 'image'");
    let v = c.call(json!({"type":"cancel","id":"c0","target":"nothing"}));
    assert_error(&v, "not_found", "nothing");
    // Still served after all that.
    assert_eq!(c.ok(json!({"type":"ping","id":"p2"})), json!("OK"));
    let v = c.ok(json!({"type":"inspect","id":"in2","target":IMAGE}));
    assert!(
        v["Id"].as_str().is_some_and(|i| i.starts_with("sha256:")),
        "{v}"
    );
}

#[test]
fn jsonl_run_overlap_events_and_lifecycle() {
    if !need_root("jsonl_run_overlap_events_and_lifecycle") {
        return;
    }
    let env = Env::new();
    let svc = Service::on_socket(&env);
    let mut c = Client::connect(&jsonl_socket(&svc));

    // Foreground: ack at once, the output as progress, the exit code in the result.
    c.send(
        json!({"type":"run","id":"fg","image":IMAGE,"name":"fg","rm":true,
                  "cmd":["sh","-c","echo out; echo err >&2; exit 3"]}),
    );
    let ack = c.take(10, "ack of fg", |v| v["id"] == "fg");
    assert_eq!(ack, json!({"id":"fg","ack":true}));
    let fin = c.done("fg", 60);
    assert_eq!(fin["ok"], true, "{fin}");
    assert_eq!(fin["result"]["exit_code"], 3, "{fin}");
    let out: Vec<Value> = c.progress("fg");
    let text = |s: &str| -> String {
        out.iter()
            .filter(|p| p["stream"] == s)
            .filter_map(|p| p["data"].as_str())
            .collect()
    };
    assert_eq!(text("stdout"), "out\n", "{out:?}");
    assert_eq!(text("stderr"), "err\n", "{out:?}");
    // rm: gone.
    assert_eq!(c.ok(json!({"type":"ps","id":"ps0","all":true})), json!([]));

    // Detached, then listed with filters.
    let r = c.ok(
        json!({"type":"run","id":"bg","image":IMAGE,"name":"bg","detach":true,
                        "cmd":["sleep","300"],"labels":{"role":"jsonl"}}),
    );
    assert_eq!(r["name"], "bg", "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    let ps = c.ok(json!({"type":"containers.list","id":"ps1","filters":{"label":["role=jsonl"]}}));
    assert_eq!(ps.as_array().map(Vec::len), Some(1), "{ps}");
    assert_eq!(ps[0]["Id"], id.as_str());
    let ps = c.ok(json!({"type":"ps","id":"ps2","filters":{"label":["role=other"]}}));
    assert_eq!(ps, json!([]));
    let v = c.ok(json!({"type":"inspect","id":"in1","target":"bg"}));
    assert_eq!(v["State"]["Running"], true, "{v}");

    // Overlap: a slow run in flight, a ping answered before it ends.
    c.send(json!({"type":"run","id":"slow","image":IMAGE,"rm":true,
                  "cmd":["sh","-c","sleep 2; echo slow"]}));
    c.take(10, "ack of slow", |v| v["id"] == "slow" && v["ack"] == true);
    let started = Instant::now();
    assert_eq!(c.ok(json!({"type":"ping","id":"during"})), json!("OK"));
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "ping waited for the run"
    );
    assert!(
        c.seen
            .iter()
            .all(|v| !(v["id"] == "slow" && v.get("ok").is_some())),
        "the slow run ended before the ping was answered"
    );
    // The same id twice in flight is refused, the first goes on.
    let v = c.call(json!({"type":"ping","id":"slow"}));
    assert_error(&v, "conflict", "in flight");
    let fin = c.done("slow", 30);
    assert_eq!(fin["result"]["exit_code"], 0, "{fin}");

    // Events until cancel: a stop of bg is seen.
    c.send(json!({"type":"events","id":"ev","filters":{"container":["bg"]}}));
    c.take(10, "ack of ev", |v| v["id"] == "ev" && v["ack"] == true);
    let v = c.ok(json!({"type":"stop","id":"st1","target":"bg","timeout":1}));
    assert_eq!(v["changed"], true, "{v}");
    let ev = c.take(20, "a die event of bg", |v| {
        v["id"] == "ev" && v["event"]["Action"] == "die"
    });
    assert_eq!(ev["event"]["Actor"]["ID"], id.as_str(), "{ev}");
    let v = c.ok(json!({"type":"cancel","id":"c1","target":"ev"}));
    assert_eq!(v["cancelled"], "ev");
    let v = c.done("ev", 10);
    assert_error(&v, "cancelled", "c1");

    // stop again: not changed; kill of a stopped one: conflict; start; logs; rm.
    let v = c.ok(json!({"type":"stop","id":"st2","target":"bg"}));
    assert_eq!(v["changed"], false, "{v}");
    let v = c.call(json!({"type":"kill","id":"k1","target":"bg"}));
    assert_error(&v, "conflict", "not running");
    let v = c.ok(json!({"type":"start","id":"s1","target":"bg"}));
    assert_eq!(v["changed"], true, "{v}");
    let v = c.call(json!({"type":"rm","id":"rm1","target":"bg"}));
    assert_error(&v, "conflict", "running");
    c.ok(json!({"type":"kill","id":"k2","target":"bg","signal":"SIGKILL"}));
    c.ok(json!({"type":"run","id":"echo","image":IMAGE,"name":"echo","cmd":["echo","logged"]}));
    c.send(json!({"type":"logs","id":"lg","target":"echo"}));
    c.take(10, "ack of lg", |v| v["id"] == "lg" && v["ack"] == true);
    let fin = c.done("lg", 20);
    assert_eq!(fin["ok"], true, "{fin}");
    let lines = c.progress("lg");
    assert_eq!(lines, vec![json!({"stream":"stdout","data":"logged\n"})]);
    c.ok(json!({"type":"rm","id":"rm2","target":"bg","force":true}));
    c.ok(json!({"type":"rm","id":"rm3","target":"echo"}));
    assert_eq!(c.ok(json!({"type":"ps","id":"ps3","all":true})), json!([]));
}

#[test]
fn jsonl_pull_and_push_with_a_local_registry() {
    if !need_root("jsonl_pull_and_push_with_a_local_registry") {
        return;
    }
    let reg = Server::gcr(&[], &[]);
    let env = Env::new();
    let svc = Service::on_socket(&env);
    let mut c = Client::connect(&jsonl_socket(&svc));
    let dest = format!("{}/jsonl/bb:1", reg.host());
    env.ok(&["tag", IMAGE, &dest]);
    c.send(json!({"type":"push","id":"push","image":dest}));
    c.take(10, "ack of push", |v| v["id"] == "push" && v["ack"] == true);
    let fin = c.done("push", 60);
    assert_eq!(fin["ok"], true, "{fin}");
    let digest = fin["result"][0]["digest"].as_str().unwrap().to_string();
    assert!(digest.starts_with("sha256:"), "{fin}");
    let lines = c.progress("push");
    assert!(
        lines.iter().any(|l| l["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("The push refers to"))),
        "{lines:?}"
    );
    env.ok(&["rmi", &dest]);

    c.send(json!({"type":"pull","id":"pull","image":dest}));
    c.take(10, "ack of pull", |v| v["id"] == "pull" && v["ack"] == true);
    let fin = c.done("pull", 60);
    assert_eq!(fin["ok"], true, "{fin}");
    assert_eq!(fin["result"]["digest"], digest.as_str(), "{fin}");
    let lines = c.progress("pull");
    assert!(
        lines.iter().any(|l| l["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("Pulling from"))),
        "{lines:?}"
    );
    let v = c.ok(json!({"type":"inspect","id":"in","target":dest,"kind":"image"}));
    assert!(v["RepoTags"].to_string().contains("jsonl/bb"), "{v}");
    // A pull of what the registry lacks: a final error after the ack.
    let missing = format!("{}/jsonl/nosuch:1", reg.host());
    c.send(json!({"type":"pull","id":"pull2","image":missing}));
    let v = c.done("pull2", 60);
    assert_eq!(v["ok"], false, "{v}");
    assert!(
        v["error"]["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{v}"
    );
}

#[test]
fn jsonl_policy_denial_carries_the_rule() {
    if !need_root("jsonl_policy_denial_carries_the_rule") {
        return;
    }
    let env = Env::new();
    std::fs::write(
        env.root.path().join("run-policy.json"),
        r#"{"registries":["local"],"capAdd":["NET_ADMIN"]}"#,
    )
    .unwrap();
    // The image policy: only the local test image; any pull is refused before a fetch.
    std::fs::write(
        env.root.path().join("policy.json"),
        r#"{"default":[{"type":"reject"}],"transports":{"gcr":{"docker.io/test/busybox:1":[{"type":"insecureAcceptAnything"}]}}}"#,
    )
    .unwrap();
    let svc = Service::on_socket(&env);
    let mut c = Client::connect(&jsonl_socket(&svc));
    let v = c.call(json!({"type":"pull","id":"denied","image":"127.0.0.1:1/denied/app:1"}));
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["error"]["code"], "POLICY_DENY", "{v}");
    assert_eq!(v["error"]["rule"], "policy.default", "{v}");
    let v = c.call(json!({"type":"run","id":"priv","image":IMAGE,"name":"priv",
                          "config":{"HostConfig":{"Privileged":true}},"cmd":["true"]}));
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["error"]["code"], "POLICY_DENY", "{v}");
    assert_eq!(v["error"]["rule"], "runPolicy.privileged", "{v}");
    assert!(
        v["error"]["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{v}"
    );
    let v = c.call(json!({"type":"run","id":"cap","image":IMAGE,"detach":true,
                          "config":{"HostConfig":{"CapAdd":["SYS_ADMIN"]}},"cmd":["true"]}));
    assert_eq!(v["error"]["rule"], "runPolicy.capAdd", "{v}");
    // Nothing was made for the refused runs; an allowed one runs.
    assert_eq!(c.ok(json!({"type":"ps","id":"ps","all":true})), json!([]));
    let v = c.ok(
        json!({"type":"run","id":"fine","image":IMAGE,"rm":true,"cmd":["true"],
                        "config":{"HostConfig":{"CapAdd":["NET_ADMIN"]}}}),
    );
    assert_eq!(v["exit_code"], 0, "{v}");
}

/// Container directories in the store.
fn container_dirs(env: &Env) -> usize {
    std::fs::read_dir(env.root.path().join("containers"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn jsonl_client_leaving_mid_run_leaves_nothing_half_made() {
    if !need_root("jsonl_client_leaving_mid_run_leaves_nothing_half_made") {
        return;
    }
    let env = Env::new();
    let svc = Service::on_socket(&env);
    let path = jsonl_socket(&svc);
    for (i, rm) in [(0, true), (1, false), (2, true)] {
        let mut c = Client::connect(&path);
        let name = format!("gone{i}");
        c.send(
            json!({"type":"run","id":"r","image":IMAGE,"name":name,"rm":rm,
                      "cmd":["sh","-c","sleep 1; echo done"]}),
        );
        if i < 2 {
            c.take(10, "ack", |v| v["ack"] == true);
        }
        // i == 2: gone before even the ack.
        drop(c);
    }
    let mut c = Client::connect(&path);
    // Cancelled: the answers stop, the run goes on to its end (and its removal).
    c.send(
        json!({"type":"run","id":"cx","image":IMAGE,"name":"gone3","rm":true,
                  "cmd":["sh","-c","sleep 1; echo done"]}),
    );
    c.take(10, "ack of cx", |v| v["id"] == "cx" && v["ack"] == true);
    let v = c.ok(json!({"type":"cancel","id":"c","target":"cx"}));
    assert_eq!(v["cancelled"], "cx");
    assert_error(&c.done("cx", 10), "cancelled", "cancelled by request c");
    let settled = eventually(30, || {
        let ps = c.ok(json!({"type":"ps","id":"ps","all":true}));
        let rows = ps.as_array().cloned().unwrap_or_default();
        rows.len() == 1
            && rows[0]["Names"] == json!(["/gone1"])
            && rows[0]["State"] == "exited"
            && container_dirs(&env) == 1
    });
    let ps = c.ok(json!({"type":"ps","id":"ps-last","all":true}));
    assert!(
        settled,
        "after the clients left: {ps}, {} container directories",
        container_dirs(&env)
    );
    let v = c.ok(json!({"type":"inspect","id":"in","target":"gone1"}));
    assert_eq!(v["State"]["ExitCode"], 0, "{v}");
    // The service still serves.
    assert_eq!(c.ok(json!({"type":"ping","id":"p"})), json!("OK"));
}

#[test]
fn jsonl_build_from_a_context_directory() {
    if !need_root("jsonl_build_from_a_context_directory") {
        return;
    }
    let env = Env::new();
    let svc = Service::on_socket(&env);
    let mut c = Client::connect(&jsonl_socket(&svc));
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {IMAGE}\nARG WORD=none\nRUN echo $WORD > /f\n"),
    )
    .unwrap();
    let ctx_s = ctx.path().to_str().unwrap();
    c.send(
        json!({"type":"build","id":"b","context":ctx_s,"tags":["jsonl/built:1"],
                  "buildargs":{"WORD":"built"}}),
    );
    c.take(10, "ack of b", |v| v["id"] == "b" && v["ack"] == true);
    let fin = c.done("b", 120);
    assert_eq!(fin["ok"], true, "{fin}");
    let id = fin["result"]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("sha256:"), "{fin}");
    let lines = c.progress("b");
    let text: String = lines.iter().filter_map(|l| l["stream"].as_str()).collect();
    assert!(text.contains("Step 3/3 : RUN echo $WORD > /f"), "{text}");
    assert!(text.contains("Successfully tagged jsonl/built:1"), "{text}");
    let v =
        c.ok(json!({"type":"run","id":"r","image":"jsonl/built:1","rm":true,"cmd":["cat","/f"]}));
    assert_eq!(v["exit_code"], 0, "{v}");
    let out: String = c
        .progress("r")
        .iter()
        .filter_map(|p| p["data"].as_str().map(str::to_string))
        .collect();
    assert_eq!(out, "built\n");
    // Bad contexts: relative, missing, a Dockerfile that fails.
    let v = c.call(json!({"type":"build","id":"b2","context":"rel/dir"}));
    assert_error(&v, "invalid_request", "absolute path");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN exit 7\n"),
    )
    .unwrap();
    let v = c.call(json!({"type":"build","id":"b3","context":ctx_s}));
    assert_eq!(v["ok"], false, "{v}");
}

/// Sends `lines` to the JSONL socket `sock` as uid/gid 65534 (no other groups) and
/// returns what came back (until the service closes or 5 s pass).
fn as_nobody(sock: &Path, lines: &str) -> String {
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
    s.sendall(sys.argv[2].encode())
    want = sys.argv[2].count("\n")
    got = b""
    while got.count(b"\n") < want:
        b = s.recv(65536)
        if not b:
            break
        got += b
    sys.stdout.write(got.decode())
except OSError as e:
    sys.stderr.write(str(e))
"#;
    let o = std::process::Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(["/usr/bin/python3", "-c", script])
        .arg(sock)
        .arg(lines)
        .output()
        .expect("setpriv python3");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn jsonl_peers_are_checked_as_on_the_api_socket() {
    if !need_root("jsonl_peers_are_checked_as_on_the_api_socket") {
        return;
    }
    let env = Env::new();
    // A parent anyone may traverse, so the socket's own modes and the peer check decide.
    let base = tempfile::tempdir().unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let host = common::service::sock_host(base.path());
    let sock = PathBuf::from(host.trim_start_matches("unix://")).with_file_name("gcr.jsonl.sock");
    let ping = "{\"type\":\"ping\",\"id\":\"n\"}\n";
    {
        let _svc = Service::start(&env, &host, &[]);
        assert_eq!(as_nobody(&sock, ping), "", "nobody got an answer");
        let dir = sock.parent().unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(as_nobody(&sock, ping), "", "the peer check let nobody in");
    }
    // With --group (the killed service's stale socket is replaced; the directory closed up
    // again, as a directory others may read is refused): a member is served, but may not
    // name a build context on the host.
    let dir = sock.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let _svc = Service::start(&env, &host, &["--group", "65534"]);
    let meta = std::fs::metadata(&sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(std::os::unix::fs::MetadataExt::gid(&meta), 65534);
    let out = as_nobody(
        &sock,
        "{\"type\":\"ping\",\"id\":\"n\"}\n{\"type\":\"build\",\"id\":\"b\",\"context\":\"/etc\"}\n",
    );
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    let ping = lines.iter().find(|v| v["id"] == "n").unwrap();
    assert_eq!(ping["result"], "OK", "{out}");
    let build = lines.iter().find(|v| v["id"] == "b").unwrap();
    assert_error(build, "forbidden", "only root");
}

#[test]
fn jsonl_bad_socket_paths_are_refused() {
    if !need_root("jsonl_bad_socket_paths_are_refused") {
        return;
    }
    let env = Env::new();
    let api = common::service::sock_host(env.root.path());
    for (jsonl, says) in [
        ("rel/x.sock", "absolute socket path"),
        (api.trim_start_matches("unix://"), "the API's own socket"),
    ] {
        let o = env.gcr(&["system", "service", "--host", &api, "--jsonl", jsonl]);
        assert_eq!(o.status.code(), Some(125), "--jsonl {jsonl}");
        let err = common::stderr(&o);
        assert!(err.contains(says), "--jsonl {jsonl}: {err}");
    }
    // A path that exists and is not a socket is left alone.
    let file = env.root.path().join("not-a-socket");
    std::fs::write(&file, "keep").unwrap();
    let o = env.gcr(&[
        "system",
        "service",
        "--host",
        &api,
        "--jsonl",
        file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        common::stderr(&o).contains("is not a socket"),
        "{}",
        common::stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
}
