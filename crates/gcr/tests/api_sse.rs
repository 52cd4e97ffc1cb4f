//! Live events and idempotency of `gcr system service` (issue 20 item 6, seed 002):
//! `GET /v1/events` as Server-Sent Events read by `curl -N` (a docker run's
//! pending→running→exited with its exit code; a resume with `Last-Event-ID` gets exactly
//! the events missed), the polling form `GET /v1/events/poll` (long-poll, pages, bad
//! input), `POST /v1/apply` of a signed MiniContainer manifest (deploy.* and
//! grant.materialized events, never the secret's bytes; its idempotency key), and
//! `Idempotency-Key` on create and start (one container for two requests, 409 for the key
//! with another body, both across a service restart). curl children are killed on drop;
//! the service and the store are cleaned up by their guards, even when an assertion fails.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::servers::need_tools;
use common::service::Service;
use common::{need_root, stderr, stdout, Env, IMAGE};
use serde_json::{json, Value};

/// One event read from a stream.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    id: i64,
    name: String,
    data: Value,
}

/// A `curl -N` reading an event stream, killed on drop.
struct Stream {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Stream {
    fn open(svc: &Service, query: &str, last_id: Option<i64>) -> Stream {
        let mut c = Command::new("curl");
        c.args(["-sS", "-N", "--max-time", "60", "--unix-socket"])
            .arg(svc.socket());
        if let Some(id) = last_id {
            c.args(["-H", &format!("Last-Event-ID: {id}")]);
        }
        let mut child = c
            .arg(format!("http://gcr/v1/events{query}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run curl");
        let out = child.stdout.take().expect("curl stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { return };
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        let s = Stream { child, lines };
        // The service's first comment: the stream is open (what happens next is in it).
        let hello = s
            .line(Duration::from_secs(20))
            .expect("the stream's first line");
        assert_eq!(hello, "retry: 2000", "{hello}");
        s
    }

    fn line(&self, t: Duration) -> Option<String> {
        self.lines.recv_timeout(t).ok()
    }

    /// The next event (comments skipped), waiting up to 20 s.
    fn next(&self) -> Option<Sse> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let (mut id, mut name, mut data) = (None, None, None);
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let l = self.line(left)?;
            if l.is_empty() {
                if let (Some(id), Some(name), Some(data)) = (id, name.clone(), data.clone()) {
                    return Some(Sse { id, name, data });
                }
                continue;
            }
            if let Some(v) = l.strip_prefix("id: ") {
                id = Some(v.parse().expect("a numeric id"));
            } else if let Some(v) = l.strip_prefix("event: ") {
                name = Some(v.to_string());
            } else if let Some(v) = l.strip_prefix("data: ") {
                data = Some(serde_json::from_str(v).expect("JSON data"));
            }
        }
    }

    /// Events until one named `name` for container `cname` (included).
    fn until(&self, name: &str, cname: &str) -> Vec<Sse> {
        let mut out = Vec::new();
        loop {
            let e = self
                .next()
                .unwrap_or_else(|| panic!("no {name} of {cname}; saw {out:#?}"));
            let done = e.name == name && e.data["name"] == cname;
            out.push(e);
            if done {
                return out;
            }
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP exchange over the service's socket: (status, headers, body).
fn http(
    svc: &Service,
    method: &str,
    path: &str,
    headers: &[&str],
    body: Option<&[u8]>,
) -> (u16, String, String) {
    let mut c = Command::new("curl");
    c.args([
        "-sS",
        "-i",
        "--max-time",
        "60",
        "-X",
        method,
        "--unix-socket",
    ])
    .arg(svc.socket());
    for h in headers {
        c.args(["-H", h]);
    }
    if body.is_some() {
        c.args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "@-",
        ]);
    }
    c.arg(format!("http://gcr{path}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("run curl");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        if let Some(b) = body {
            stdin.write_all(b).expect("write body");
        }
    }
    let o = child.wait_with_output().expect("curl");
    assert!(o.status.success(), "curl {method} {path}: {}", stderr(&o));
    let text = stdout(&o);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn poll(svc: &Service, query: &str) -> (Vec<Sse>, i64) {
    let (status, _, body) = http(svc, "GET", &format!("/v1/events/poll{query}"), &[], None);
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("JSON");
    let events = v["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| Sse {
            id: e["id"].as_i64().expect("id"),
            name: e["event"].as_str().expect("event").to_string(),
            data: e["data"].clone(),
        })
        .collect();
    (events, v["next"].as_i64().expect("next"))
}

fn names(evs: &[Sse]) -> Vec<&str> {
    evs.iter().map(|e| e.name.as_str()).collect()
}

fn ready(test: &str) -> bool {
    need_root(test) && need_tools(test, &["docker", "curl"])
}

#[test]
fn sse_follows_a_docker_run_and_resumes_with_last_event_id() {
    if !ready("sse_follows_a_docker_run_and_resumes_with_last_event_id") {
        return;
    }
    let env = Env::new();
    let svc = Service::on_socket(&env);
    let s = Stream::open(&svc, "?types=run_state", None);
    let o = svc.docker(&["run", "--name", "sse1", IMAGE, "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let evs = s.until("run_state.exited", "sse1");
    assert_eq!(
        names(&evs),
        ["run_state.pending", "run_state.running", "run_state.exited"],
        "{evs:#?}"
    );
    assert!(evs.windows(2).all(|w| w[0].id < w[1].id), "{evs:#?}");
    let id = evs[0].data["container_id"].as_str().unwrap().to_string();
    assert!(evs.iter().all(|e| e.data["container_id"] == id.as_str()));
    assert_eq!(evs[2].data["exit_code"], 3, "{:#?}", evs[2]);
    assert!(evs[2].data["time"].as_str().unwrap().ends_with('Z'));
    assert!(evs[2].data["time_ns"].as_i64().unwrap() >= evs[1].data["time_ns"].as_i64().unwrap());
    let running = evs[1].id;
    drop(s);

    // While nobody listens: an --rm run exiting 5 (its row goes with its exit).
    let o = svc.docker(&["run", "--rm", "--name", "sse2", IMAGE, "sh", "-c", "exit 5"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));

    // Resumed after sse1's running: its exit again, then sse2's three, nothing else.
    let s = Stream::open(&svc, "?types=run_state", Some(running));
    let got = s.until("run_state.exited", "sse2");
    assert_eq!(got[0], evs[2], "the first event after the resume point");
    assert_eq!(
        names(&got),
        [
            "run_state.exited",
            "run_state.pending",
            "run_state.running",
            "run_state.exited"
        ],
        "{got:#?}"
    );
    assert_eq!(got[3].data["exit_code"], 5, "{:#?}", got[3]);
    assert!(got.iter().all(|e| e.id > running));
    // The same as the polling form lists after that id.
    let (polled, next) = poll(&svc, &format!("?after={running}&types=run_state"));
    assert_eq!(polled, got);
    assert!(next >= got[3].id, "{next}");
    // Nothing more arrives: the feed was complete.
    let extra = s.line(Duration::from_millis(1500));
    assert!(
        extra.as_deref().is_none_or(|l| l.starts_with(':')),
        "{extra:?}"
    );
    // ?since_id= resumes the same way, filtered by container.
    let s = Stream::open(&svc, &format!("?since_id={running}&container=sse2"), None);
    let only = s.until("run_state.exited", "sse2");
    assert_eq!(only, got[1..]);

    // An idle stream: its type, and keep-alive comments (every second, as asked).
    let o = Command::new("curl")
        .args(["-sS", "-i", "-N", "--max-time", "3", "--unix-socket"])
        .arg(svc.socket())
        .arg("http://gcr/v1/events?keepalive=1")
        .output()
        .expect("curl");
    let text = stdout(&o).to_ascii_lowercase();
    assert!(text.contains("content-type: text/event-stream"), "{text}");
    assert!(text.contains("cache-control: no-cache"), "{text}");
    assert!(text.matches("\n: keep-alive\n").count() >= 1, "{text}");
}

#[test]
fn polling_long_polls_pages_and_refuses_bad_input() {
    if !ready("polling_long_polls_pages_and_refuses_bad_input") {
        return;
    }
    let env = Env::new();
    let svc = Service::on_socket(&env);
    let (_, start) = poll(&svc, "?after=0&limit=1000");
    // Nothing new: the wait runs out and `next` stays.
    let t = Instant::now();
    let (none, next) = poll(&svc, &format!("?after={start}&wait=1"));
    assert!(none.is_empty() && next == start, "{none:#?} {next}");
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    // A long poll answers as soon as an event is recorded.
    let host = svc.socket();
    let waiter = std::thread::spawn(move || {
        let t = Instant::now();
        let o = Command::new("curl")
            .args(["-sS", "--max-time", "60", "--unix-socket"])
            .arg(&host)
            .arg(format!(
                "http://gcr/v1/events/poll?after={start}&wait=30&types=run_state.pending"
            ))
            .output()
            .expect("curl");
        (stdout(&o), t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));
    svc.ok(&["create", "--name", "p1", IMAGE, "true"]);
    let (body, took) = waiter.join().unwrap();
    assert!(took < Duration::from_secs(15), "{took:?}");
    let v: Value = serde_json::from_str(&body).expect(&body);
    assert_eq!(v["events"][0]["event"], "run_state.pending", "{v}");
    assert_eq!(v["events"][0]["data"]["name"], "p1", "{v}");
    // Pages: one at a time, in order, each `next` the last id given.
    svc.ok(&["start", "p1"]);
    assert!(common::eventually(10, || {
        poll(&svc, &format!("?after={start}&types=run_state"))
            .0
            .iter()
            .any(|e| e.name == "run_state.exited")
    }));
    let (a, n1) = poll(&svc, &format!("?after={start}&limit=1&types=run_state"));
    assert_eq!(names(&a), ["run_state.pending"]);
    assert_eq!(n1, a[0].id);
    let (b, _) = poll(&svc, &format!("?after={n1}&limit=2&types=run_state"));
    assert_eq!(names(&b), ["run_state.running", "run_state.exited"]);
    assert_eq!(b[1].data["exit_code"], 0);
    // Bad input: Docker-style errors naming the parameter and the fix.
    for (q, says) in [
        ("?limit=0", "invalid limit '0'"),
        ("?after=x", "invalid after 'x'"),
        ("?types=bogus", "invalid types 'bogus'"),
        ("?wait=600", "invalid wait '600'"),
    ] {
        let (status, _, body) = http(&svc, "GET", &format!("/v1/events/poll{q}"), &[], None);
        assert_eq!(status, 400, "{q}: {body}");
        let v: Value = serde_json::from_str(&body).expect(&body);
        assert!(v["message"].as_str().unwrap().contains(says), "{q}: {v}");
    }
    let (status, _, body) = http(&svc, "GET", "/v1/events", &["Last-Event-ID: abc"], None);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid Last-Event-ID 'abc'"), "{body}");
}

fn manifest(service: &str) -> Value {
    json!({
      "type": "ll.minicontainer.v1",
      "version": "1.0.0",
      "owner": { "user_id": "usr_123", "tenant": "vv" },
      "slots": { "crypto": [{ "kid": "kid_sym_1", "alg": "xchacha20", "status": "active" }] },
      "artifacts": [{ "id": "secret_db_url", "type": "secret.url.v1",
                      "hash": format!("blake3:{}", "ab".repeat(32)), "enc": "xchacha20" }],
      "grants": [{ "id": "grt_db", "artifact_id": "secret_db_url", "scope": ["runtime:read"],
                   "ttl": "P30D", "aud": "podman" }],
      "deploy": {
        "engine": "container",
        "image": IMAGE,
        "entrypoint": ["/bin/sleep", "1000"],
        "env": { "DB_URL": "grant://grt_db", "PORT": "8080" },
        "resources": { "memory_bytes": 268435456 },
        "security": { "read_only_rootfs": true },
        "targets": [{ "provider": "podman", "service": service }]
      },
      "ledger_refs": ["s3://ledger/vv/2025/11/"],
      "ts": "2025-11-17T13:37:00Z"
    })
}

/// The manifest for `service`, signed with the store's key k1.
fn signed(env: &Env, service: &str) -> Vec<u8> {
    let p = env.root.path().join(format!("{service}.json"));
    std::fs::write(&p, serde_json::to_vec_pretty(&manifest(service)).unwrap()).unwrap();
    env.ok(&["manifest", "sign", p.to_str().unwrap(), "--key", "k1"]);
    std::fs::read(&p).unwrap()
}

#[test]
fn apply_over_the_api_emits_deploy_and_grant_events_without_the_secret() {
    if !ready("apply_over_the_api_emits_deploy_and_grant_events_without_the_secret") {
        return;
    }
    let env = Env::new();
    env.ok(&["key", "generate", "k1"]);
    let value = "postgres://u:hunter2-live@db/x";
    let vf = env.root.path().join("value");
    std::fs::write(&vf, value).unwrap();
    env.ok(&["secret", "create", "secret_db_url", vf.to_str().unwrap()]);
    std::fs::remove_file(&vf).unwrap();
    let sealed: Value =
        serde_json::from_str(&env.ok(&["secret", "inspect", "secret_db_url"])).unwrap();
    let sealed = if sealed.is_array() {
        sealed[0].clone()
    } else {
        sealed
    };
    let sealed_digest = sealed["Digest"].as_str().expect("a Digest").to_string();
    let svc = Service::on_socket(&env);
    let s = Stream::open(&svc, "?types=deploy,grant", None);
    let applied = Stream::open(&svc, "?types=minicontainer", None);

    let web = signed(&env, "web");
    let (status, head, body) = http(
        &svc,
        "POST",
        "/v1/apply",
        &["Idempotency-Key: ap-1"],
        Some(&web),
    );
    assert_eq!(status, 201, "{body}");
    assert!(!head.contains("idempotent-replayed"), "{head}");
    let first: Value = serde_json::from_str(&body).unwrap();
    let id = first["ContainerId"].as_str().unwrap().to_string();
    assert_eq!(first["ContainerName"], "vv-web");
    let digest = first["Digest"].as_str().unwrap().to_string();

    let evs = s.until("grant.materialized", "vv-web");
    let evs = [evs, vec![s.next().expect("deploy.applied")]].concat();
    let mut seen = names(&evs);
    seen.sort_unstable();
    assert_eq!(
        seen,
        ["deploy.applied", "deploy.planned", "grant.materialized"],
        "{evs:#?}"
    );
    let by = |n: &str| evs.iter().find(|e| e.name == n).unwrap().data.clone();
    assert_eq!(by("deploy.planned")["digest"], digest.as_str());
    assert_eq!(by("deploy.applied")["container_id"], id.as_str());
    let g = by("grant.materialized");
    assert_eq!(g["container_id"], id.as_str(), "{g}");
    assert_eq!(g["secret"], "secret_db_url", "{g}");
    assert_eq!(g["as"], "env:DB_URL", "{g}");
    assert!(g["digest"].as_str().unwrap().starts_with("sha256:"), "{g}");
    assert_eq!(g["digest"], sealed_digest.as_str(), "{g}");
    // One minicontainer.applied per apply: ok.
    let a = applied.next().expect("minicontainer.applied");
    assert_eq!(a.name, "minicontainer.applied", "{a:?}");
    assert_eq!(
        (a.data["ok"].clone(), a.data["digest"].clone()),
        (json!(true), json!(digest))
    );
    // The value reached the process, and no feed shows it.
    assert_eq!(
        env.ok(&["exec", &id, "/bin/sh", "-c", "echo -n $DB_URL"]),
        value
    );
    let (all, _) = poll(&svc, "?after=0&limit=1000");
    let text = serde_json::to_string(&all.iter().map(|e| &e.data).collect::<Vec<_>>()).unwrap();
    assert!(!text.contains(value) && !text.contains("hunter2"), "{text}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (_, _, docker_events) = http(
        &svc,
        "GET",
        &format!("/events?since=0&until={}", now + 2),
        &[],
        None,
    );
    assert!(docker_events.contains("materialized"), "{docker_events}");
    assert!(!docker_events.contains("hunter2"), "{docker_events}");

    // The key again with the same manifest: the first result, nothing new runs.
    let (status, head, body) = http(
        &svc,
        "POST",
        "/v1/apply",
        &["Idempotency-Key: ap-1"],
        Some(&web),
    );
    assert_eq!(status, 201, "{body}");
    assert!(head.contains("idempotent-replayed: true"), "{head}");
    let again: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(again["ContainerId"], id.as_str());
    assert_eq!(again["Replayed"], true);
    assert_eq!(svc.ok(&["ps", "-aq"]).lines().count(), 1);
    // ... with another manifest: 409 naming the key, nothing runs.
    let db = signed(&env, "db");
    let (status, _, body) = http(
        &svc,
        "POST",
        "/v1/apply",
        &["Idempotency-Key: ap-1"],
        Some(&db),
    );
    assert_eq!(status, 409, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], "409_IDEMPOTENCY_CONFLICT", "{v}");
    assert!(v["message"].as_str().unwrap().contains("'ap-1'"), "{v}");
    assert_eq!(svc.ok(&["ps", "-aq"]).lines().count(), 1);
    // A manifest signed by a key this store does not know: refused, and said so in the feed.
    let other = Env::new();
    other.ok(&["key", "generate", "k1"]);
    let foreign = signed(&other, "web");
    let (status, _, body) = http(&svc, "POST", "/v1/apply", &[], Some(&foreign));
    assert_eq!(status, 403, "{body}");
    let a = applied
        .next()
        .expect("minicontainer.applied of the refused apply");
    assert_eq!(a.data["ok"], false, "{a:?}");
    assert_eq!(a.data["code"], "403_FORBIDDEN", "{a:?}");
    assert!(
        a.data["reason"]
            .as_str()
            .unwrap()
            .contains("not a key of this store"),
        "{a:?}"
    );
    // A body that is no manifest: the seed's schema code, 422.
    let (status, _, body) = http(&svc, "POST", "/v1/apply", &[], Some(b"{\"type\": 1}"));
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("422_SCHEMA_INVALID"), "{body}");
}

/// `POST /containers/create?name=NAME` with `key`.
fn create(svc: &Service, name: &str, key: &str, cmd: &str) -> (u16, String, Value) {
    let body = json!({ "Image": IMAGE, "Cmd": ["sh", "-c", cmd] }).to_string();
    let (status, head, body) = http(
        svc,
        "POST",
        &format!("/v1.41/containers/create?name={name}"),
        &[&format!("Idempotency-Key: {key}")],
        Some(body.as_bytes()),
    );
    let v = serde_json::from_str(&body).unwrap_or(Value::Null);
    (status, head, v)
}

#[test]
fn idempotency_keys_on_create_and_start_hold_across_a_restart() {
    if !ready("idempotency_keys_on_create_and_start_hold_across_a_restart") {
        return;
    }
    let env = Env::new();
    let svc = Service::on_socket(&env);
    let (status, head, first) = create(&svc, "idem1", "c-1", "exit 0");
    assert_eq!(status, 201, "{first}");
    assert!(!head.contains("idempotent-replayed"), "{head}");
    let id = first["Id"].as_str().unwrap().to_string();
    let (status, head, again) = create(&svc, "idem1", "c-1", "exit 0");
    assert_eq!((status, &again), (201, &first));
    assert!(head.contains("idempotent-replayed: true"), "{head}");
    assert_eq!(svc.ok(&["ps", "-aq"]).lines().count(), 1);
    // The key with another body: 409 naming the key, nothing made.
    let (status, _, v) = create(&svc, "idem1", "c-1", "exit 1");
    assert_eq!(status, 409, "{v}");
    assert!(v["message"].as_str().unwrap().contains("'c-1'"), "{v}");
    assert_eq!(svc.ok(&["ps", "-aq"]).lines().count(), 1);
    // An error answer is not kept: the same request with its key acts again.
    for _ in 0..2 {
        let missing = json!({ "Image": "nope/missing:1" }).to_string();
        let (status, head, body) = http(
            &svc,
            "POST",
            "/containers/create?name=gone",
            &["Idempotency-Key: c-404"],
            Some(missing.as_bytes()),
        );
        assert_eq!(status, 404, "{body}");
        assert!(!head.contains("idempotent-replayed"), "{head}");
    }
    // A key that is no token is refused, naming the header.
    let (status, _, v) = create(&svc, "idem1", "bad key", "exit 0");
    assert_eq!(status, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("Idempotency-Key"),
        "{v}"
    );
    // Start with a key: 204, and 204 again (the first answer), not the 304 of a second start.
    let start = format!("/containers/{id}/start");
    let sleeper = json!({ "Image": IMAGE, "Cmd": ["sleep", "5"] }).to_string();
    let (status, _, body) = http(
        &svc,
        "POST",
        "/containers/create?name=idem2",
        &[],
        Some(sleeper.as_bytes()),
    );
    assert_eq!(status, 201, "{body}");
    let start2 = "/containers/idem2/start";
    let (status, _, _) = http(&svc, "POST", start2, &["Idempotency-Key: s-1"], None);
    assert_eq!(status, 204);
    let (status, head, _) = http(&svc, "POST", start2, &["Idempotency-Key: s-1"], None);
    assert_eq!(status, 204, "{head}");
    assert!(head.contains("idempotent-replayed: true"), "{head}");
    let (status, _, _) = http(&svc, "POST", start2, &[], None);
    assert_eq!(status, 304, "a start without the key is a second start");
    let (status, _, _) = http(&svc, "POST", &start, &["Idempotency-Key: s-2"], None);
    assert_eq!(status, 204);

    // A new service on the same store keeps the keys.
    drop(svc);
    let svc = Service::on_socket(&env);
    let (status, head, again) = create(&svc, "idem1", "c-1", "exit 0");
    assert_eq!((status, &again), (201, &first));
    assert!(head.contains("idempotent-replayed: true"), "{head}");
    let (status, _, v) = create(&svc, "idem1", "c-1", "exit 7");
    assert_eq!(status, 409, "{v}");
    assert_eq!(svc.ok(&["ps", "-aq"]).lines().count(), 2);
    let (status, head, _) = http(&svc, "POST", start2, &["Idempotency-Key: s-1"], None);
    assert_eq!(status, 204, "{head}");
    assert!(head.contains("idempotent-replayed: true"), "{head}");
    // A key's answer is per request: the same key on another path is a conflict.
    let (status, _, body) = http(&svc, "POST", &start, &["Idempotency-Key: c-1"], None);
    assert_eq!(status, 409, "{body}");
    assert!(Path::new(&env.root.path().join("gcr.db")).exists());
}

#[test]
fn idempotency_keys_on_the_other_posts() {
    if !ready("idempotency_keys_on_the_other_posts") {
        return;
    }
    let env = Env::new();
    let svc = Service::on_socket(&env);
    svc.ok(&["run", "-d", "--name", "idk", IMAGE, "sleep", "60"]);
    // exec create: one exec for two requests with the key.
    let exec = json!({ "Cmd": ["true"] }).to_string();
    let mk = |key: &str| {
        http(
            &svc,
            "POST",
            "/containers/idk/exec",
            &[&format!("Idempotency-Key: {key}")],
            Some(exec.as_bytes()),
        )
    };
    let (status, _, first) = mk("e-1");
    assert_eq!(status, 201, "{first}");
    let (status, head, again) = mk("e-1");
    assert_eq!((status, &again), (201, &first));
    assert!(head.contains("idempotent-replayed: true"), "{head}");
    assert_ne!(mk("e-2").2, first, "another key is another exec");
    // kill: the first answer again, not the 409 of killing a container that is gone.
    let kill = |key: &str| {
        http(
            &svc,
            "POST",
            "/containers/idk/kill",
            &[&format!("Idempotency-Key: {key}")],
            None,
        )
    };
    assert_eq!(kill("k-1").0, 204);
    assert!(common::eventually(10, || svc
        .ok(&["ps", "-q"])
        .trim()
        .is_empty()));
    let (status, head, _) = kill("k-1");
    assert_eq!(status, 204, "{head}");
    assert!(head.contains("idempotent-replayed: true"), "{head}");
    let (status, _, _) = http(&svc, "POST", "/containers/idk/kill", &[], None);
    assert_eq!(
        status, 409,
        "a kill without the key acts (and finds it stopped)"
    );
    // network create: one network, the same Id.
    let net = json!({ "Name": "idnet" }).to_string();
    let create = || {
        http(
            &svc,
            "POST",
            "/networks/create",
            &["Idempotency-Key: n-1"],
            Some(net.as_bytes()),
        )
    };
    let (status, _, first) = create();
    assert_eq!(status, 201, "{first}");
    let (status, _, again) = create();
    assert_eq!((status, again), (201, first));
    svc.ok(&["network", "rm", "idnet"]);
    svc.ok(&["rm", "-f", "idk"]);
}

/// The start time of this process (field 22 of /proc/self/stat), as gcr records owners.
fn own_start() -> u64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &s[s.rfind(')').unwrap() + 2..];
    after.split(' ').nth(19).unwrap().parse().unwrap()
}

/// Runs `q` on the store's database with the sqlite3 shell, keeping the WAL as gcr does
/// (a shell that deletes it on close would cut the service off from later writes).
fn sql(env: &Env, q: &str) {
    use std::io::Write;
    let mut child = Command::new("sqlite3")
        .arg(env.root.path().join("gcr.db"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sqlite3");
    let script = format!(".bail on\n.filectrl persist_wal 1\n{q};\n");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write sqlite3's input");
    let o = child.wait_with_output().expect("sqlite3");
    assert!(
        o.status.success() && stderr(&o).is_empty(),
        "{q}: {}",
        stderr(&o)
    );
}

#[test]
fn a_key_in_flight_is_refused_and_a_dead_owners_claim_is_taken_over() {
    let test = "a_key_in_flight_is_refused_and_a_dead_owners_claim_is_taken_over";
    if !ready(test) || !need_tools(test, &["sqlite3"]) {
        return;
    }
    use sha2::{Digest, Sha256};
    let env = Env::new();
    let svc = Service::on_socket(&env);
    let path = "/containers/create?name=fl1";
    let body = json!({ "Image": IMAGE, "Cmd": ["true"] }).to_string();
    let mut h = Sha256::new();
    h.update(format!("POST\n{path}\n{body}").as_bytes());
    let digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    // A claim held by a live process (this one) for the same request: a second one waits
    // for nothing, it is told at once.
    let owner = format!("{}:{}", std::process::id(), own_start());
    sql(
        &env,
        &format!(
            "INSERT INTO api_requests(idempotency_key, request_digest, owner, created_at, expires_at) \
             VALUES ('f-1', 'sha256:{digest}', '{owner}', 0, 99999999999)"
        ),
    );
    let post = |svc: &Service| {
        http(
            svc,
            "POST",
            path,
            &["Idempotency-Key: f-1"],
            Some(body.as_bytes()),
        )
    };
    let (status, _, answer) = post(&svc);
    assert_eq!(status, 409, "{answer}");
    assert!(answer.contains("'f-1' is still in progress"), "{answer}");
    assert_eq!(svc.ok(&["ps", "-aq"]).trim(), "");
    // Its owner gone (a service killed mid-request): the next request takes the claim over.
    sql(
        &env,
        "UPDATE api_requests SET owner = '999999999:1' WHERE idempotency_key = 'f-1'",
    );
    let (status, _, first) = post(&svc);
    assert_eq!(status, 201, "{first}");
    let (status, head, again) = post(&svc);
    assert_eq!((status, &again), (201, &first));
    assert!(head.contains("idempotent-replayed: true"), "{head}");
    assert_eq!(svc.ok(&["ps", "-aq"]).lines().count(), 1);
    // An expired key is forgotten: the same request acts again (the name is taken now).
    sql(
        &env,
        "UPDATE api_requests SET expires_at = 1 WHERE idempotency_key = 'f-1'",
    );
    let (status, head, answer) = post(&svc);
    assert_eq!(status, 409, "{answer}");
    assert!(answer.contains("already in use"), "{answer}");
    assert!(!head.contains("idempotent-replayed"), "{head}");
}

/// A webhook receiver on loopback (python3): answers 500 to its first POST and 200 to the
/// others, and logs each as a JSON line (event header, delivery id, whether the signature
/// is the HMAC-SHA256 of the body under `key`, the body, the status it answered).
struct Receiver {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Receiver {
    fn start(dir: &Path, key: &[u8]) -> Receiver {
        let log = dir.join("hooks.jsonl");
        let keyfile = dir.join("recv.key");
        std::fs::write(&keyfile, key).unwrap();
        let script = r#"
import hashlib, hmac, http.server, json, sys
key = open(sys.argv[1], 'rb').read()
log = open(sys.argv[2], 'a')
seen = [0]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        want = 'sha256=' + hmac.new(key, body, hashlib.sha256).hexdigest()
        seen[0] += 1
        status = 500 if seen[0] == 1 else 200
        log.write(json.dumps({'event': self.headers['X-Gcr-Event'], 'delivery': self.headers['X-Gcr-Delivery'],
            'sig_ok': self.headers['X-Gcr-Signature-256'] == want, 'body': json.loads(body), 'status': status}) + '\n')
        log.flush()
        self.send_response(status); self.send_header('Content-Length', '0'); self.end_headers()
    def log_message(self, *a): pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(&keyfile)
            .arg(&log)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Receiver {
            child,
            port: line.trim().parse().expect("the receiver's port"),
            log,
        }
    }

    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn webhooks_deliver_live_events_signed_in_order_and_retried() {
    if !(ready("webhooks_deliver_live_events_signed_in_order_and_retried")
        && need_tools(
            "webhooks_deliver_live_events_signed_in_order_and_retried",
            &["python3"],
        ))
    {
        return;
    }
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let key = b"shared-webhook-key";
    let recv = Receiver::start(dir.path(), key);
    let keyfile = dir.path().join("hook.key");
    std::fs::write(&keyfile, key).unwrap();
    // Refused at start: plain http beyond loopback, types without a URL.
    let sock = common::service::sock_host(env.root.path());
    let o = env.gcr(&[
        "system",
        "service",
        "--host",
        &sock,
        "--webhook",
        "http://10.1.2.3/x",
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("loopback"), "{}", stderr(&o));
    let o = env.gcr(&[
        "system",
        "service",
        "--host",
        &sock,
        "--webhook-types",
        "deploy",
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));

    let url = format!("http://127.0.0.1:{}/hook", recv.port);
    let svc = Service::start(
        &env,
        &sock,
        &[
            "--webhook",
            &url,
            "--webhook-types",
            "run_state",
            "--webhook-secret",
            keyfile.to_str().unwrap(),
        ],
    );
    svc.ok(&["run", "--name", "hooked", IMAGE, "true"]);
    let want = ["run_state.pending", "run_state.running", "run_state.exited"];
    let delivered = |r: &Vec<Value>| r.iter().filter(|x| x["status"] == 200).count();
    assert!(
        common::eventually(30, || delivered(&recv.received()) >= 3),
        "not delivered: {:?}",
        recv.received()
    );
    let got = recv.received();
    // The first attempt was answered 500 and the same event came again.
    assert_eq!(got[0]["status"], 500, "{got:?}");
    assert_eq!(got[0]["delivery"], got[1]["delivery"], "{got:?}");
    let ok: Vec<&Value> = got.iter().filter(|x| x["status"] == 200).collect();
    let names: Vec<&str> = ok.iter().map(|x| x["event"].as_str().unwrap()).collect();
    assert_eq!(names, want, "{got:?}");
    let ids: Vec<i64> = ok
        .iter()
        .map(|x| x["delivery"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    for x in &got {
        assert_eq!(x["sig_ok"], true, "{x}");
        assert_eq!(x["body"]["event"], x["event"], "{x}");
        assert_eq!(x["body"]["data"]["name"], "hooked", "{x}");
    }
    assert_eq!(ok[2]["body"]["data"]["exit_code"], 0);
}
