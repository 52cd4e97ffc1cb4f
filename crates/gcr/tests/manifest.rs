//! MiniContainer manifests end to end: a signed manifest applies and runs, each canonical
//! error of seed 002 comes out as its JSON line with exit 125, idempotency keys and nonces
//! hold across processes, `.llc` archives are accepted, and the Kubernetes plan starts a pod
//! under `podman kube play` (private podman root, torn down even on failure).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::servers::need_tools;
use common::{need_root, stderr, stdout, Env, IMAGE};
use serde_json::{json, Value};

fn manifest(service: &str) -> Value {
    json!({
      "type": "ll.minicontainer.v1",
      "version": "1.0.0",
      "owner": { "user_id": "usr_123", "tenant": "vv" },
      "slots": { "crypto": [{ "kid": "kid_sym_1", "alg": "xchacha20", "status": "active" }] },
      "deploy": {
        "engine": "container",
        "image": IMAGE,
        "entrypoint": ["/bin/sleep", "1000"],
        "env": { "PORT": "8080", "MODE": "test" },
        "resources": { "memory_bytes": 268435456 },
        "security": { "read_only_rootfs": true },
        "targets": [{ "provider": "podman", "service": service }]
      },
      "ledger_refs": ["s3://ledger/vv/2025/11/"],
      "ts": "2025-11-17T13:37:00Z"
    })
}

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    p
}

/// A store with key k1 and the manifest for `service` written and signed.
fn signed(env: &Env, service: &str) -> PathBuf {
    if !env.root.path().join("keys/k1.pub").exists() {
        env.ok(&["key", "generate", "k1"]);
    }
    let p = write(
        env.root.path(),
        &format!("{service}.json"),
        &manifest(service),
    );
    env.ok(&["manifest", "sign", p.to_str().unwrap(), "--key", "k1"]);
    p
}

/// The refusal's JSON line, checking exit 125 and that it is one line.
fn refusal(out: &Output) -> Value {
    assert_eq!(
        out.status.code(),
        Some(125),
        "{}{}",
        stdout(out),
        stderr(out)
    );
    let err = stderr(out);
    let line = err.lines().next().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {err}"))
}

fn assert_refused(out: &Output, code: &str, field: &str) {
    let v = refusal(out);
    assert_eq!(v["code"], code, "{v}");
    assert_eq!(v["field"], field, "{v}");
    assert!(v["reason"].as_str().is_some_and(|r| !r.is_empty()), "{v}");
}

/// The container's state as `inspect` shows it.
fn state(env: &Env, id: &str) -> String {
    let v: Value = serde_json::from_str(&env.ok(&["inspect", id])).unwrap();
    v[0]["State"]["Status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn events(env: &Env) -> String {
    env.ok(&[
        "events", "--since", "1h", "--until", "0s", "--format", "json",
    ])
}

#[test]
fn a_signed_manifest_applies_runs_and_replays_by_idempotency_key() {
    if !need_root("a_signed_manifest_applies_runs_and_replays_by_idempotency_key") {
        return;
    }
    let env = Env::new();
    let p = signed(&env, "web");
    let file = p.to_str().unwrap();
    let v: Value =
        serde_json::from_str(&env.ok(&["manifest", "verify", file, "--format", "json"])).unwrap();
    assert_eq!(v["Signer"], "k1");
    assert_eq!(v["Trusted"], true);
    let digest = v["Digest"].as_str().unwrap().to_string();
    assert!(digest.starts_with("blake3:"));

    let first: Value = serde_json::from_str(&env.ok(&[
        "manifest",
        "apply",
        file,
        "--idempotency-key",
        "k-1",
        "--nonce",
        "n-1",
        "--format",
        "json",
    ]))
    .unwrap();
    let id = first["ContainerId"].as_str().unwrap().to_string();
    assert_eq!(first["ContainerName"], "vv-web");
    assert_eq!(first["Replayed"], false);
    let state = state(&env, &id);
    assert_eq!(state.trim(), "running");
    // The manifest's settings reached the container.
    let cfg: Value = serde_json::from_str(&env.ok(&["inspect", &id])).unwrap();
    let text = cfg.to_string();
    assert!(text.contains("MODE=test"), "{text}");
    assert!(text.contains(&digest), "labels carry the digest: {text}");

    // Same key, same manifest: the first result, nothing new runs.
    let again: Value = serde_json::from_str(&env.ok(&[
        "manifest",
        "apply",
        file,
        "--idempotency-key",
        "k-1",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(again["ContainerId"], id.as_str());
    assert_eq!(again["Replayed"], true);
    assert_eq!(env.ok(&["ps", "-aq"]).lines().count(), 1);

    // Same key, another manifest: 409.
    let other = signed(&env, "api");
    let out = env.gcr(&[
        "manifest",
        "apply",
        other.to_str().unwrap(),
        "--idempotency-key",
        "k-1",
    ]);
    assert_refused(&out, "409_IDEMPOTENCY_CONFLICT", "idempotency_key");
    // A used nonce: 409, and nothing runs.
    let out = env.gcr(&[
        "manifest",
        "apply",
        other.to_str().unwrap(),
        "--nonce",
        "n-1",
    ]);
    assert_refused(&out, "409_NONCE_REUSED", "nonce");
    assert_eq!(env.ok(&["ps", "-aq"]).lines().count(), 1);

    let ev = events(&env);
    for want in ["\"planned\"", "\"applied\"", "\"run_state\"", "\"deploy\""] {
        assert!(ev.contains(want), "events lack {want}: {ev}");
    }
}

#[test]
fn each_canonical_error_is_produced() {
    if !need_root("each_canonical_error_is_produced") {
        return;
    }
    let env = Env::new();
    let dir = env.root.path();
    // 422_SCHEMA_INVALID: a field the seed does not define.
    let mut m = manifest("web");
    m["deploy"]["colour"] = json!("red");
    let p = write(dir, "schema.json", &m);
    assert_refused(
        &env.gcr(&["manifest", "verify", p.to_str().unwrap()]),
        "422_SCHEMA_INVALID",
        "deploy.colour",
    );
    // ... and an env grant:// naming no grant.
    let mut m = manifest("web");
    m["deploy"]["env"]["DB_URL"] = json!("grant://nope");
    let p = write(dir, "grant.json", &m);
    assert_refused(
        &env.gcr(&["manifest", "verify", p.to_str().unwrap()]),
        "422_SCHEMA_INVALID",
        "deploy.env.DB_URL",
    );
    // ... and an image reference that is not one.
    let mut m = manifest("web");
    m["deploy"]["image"] = json!("Not An Image");
    let p = write(dir, "image.json", &m);
    assert_refused(
        &env.gcr(&["manifest", "verify", p.to_str().unwrap()]),
        "422_SCHEMA_INVALID",
        "deploy.image",
    );

    // 428_PROOF_REQUIRED: not signed.
    let p = write(dir, "unsigned.json", &manifest("web"));
    assert_refused(
        &env.gcr(&["manifest", "apply", p.to_str().unwrap()]),
        "428_PROOF_REQUIRED",
        "provenance",
    );

    // 422_SIGNATURE_INVALID: changed after signing.
    let p = signed(&env, "web");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    v["deploy"]["env"]["MODE"] = json!("prod");
    let t = write(dir, "tampered.json", &v);
    assert_refused(
        &env.gcr(&["manifest", "apply", t.to_str().unwrap()]),
        "422_SIGNATURE_INVALID",
        "provenance.sig",
    );

    // 500_INTERNAL: the image cannot be pulled (nothing listens on loopback port 9).
    let mut m = manifest("web");
    m["deploy"]["image"] = json!("127.0.0.1:9/none/app:1");
    let p = write(dir, "nopull.json", &m);
    env.ok(&["manifest", "sign", p.to_str().unwrap(), "--key", "k1"]);
    assert_refused(
        &env.gcr(&["manifest", "apply", p.to_str().unwrap()]),
        "500_INTERNAL",
        "deploy.image",
    );
    assert!(events(&env).contains("\"failed\""));

    // 403_FORBIDDEN: the signer is not a key of this store (verify still reports it).
    let p = signed(&env, "web");
    env.ok(&["key", "rm", "k1"]);
    let v: Value = serde_json::from_str(&env.ok(&[
        "manifest",
        "verify",
        p.to_str().unwrap(),
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(v["Trusted"], false);
    assert_refused(
        &env.gcr(&["manifest", "apply", p.to_str().unwrap()]),
        "403_FORBIDDEN",
        "provenance.kid",
    );
    assert_eq!(
        env.ok(&["ps", "-aq"]).trim(),
        "",
        "no refusal left a container"
    );
}

#[test]
fn llc_archives_are_verified_and_applied() {
    if !need_root("llc_archives_are_verified_and_applied") || !need_tools("llc", &["python3"]) {
        return;
    }
    let env = Env::new();
    let p = signed(&env, "web");
    let dir = env.root.path();
    let zip = |name: &str, entries: &str| {
        let out = dir.join(name);
        let script = format!(
            "import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_DEFLATED)\nfor n,src in {entries}:\n    z.writestr(n, open(src,'rb').read() if src else b'x')\nz.close()"
        );
        let ok = Command::new("python3")
            .args(["-c", &script, out.to_str().unwrap()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        out
    };
    let good = zip(
        "good.llc",
        &format!("[('manifest.json', {:?})]", p.to_str().unwrap()),
    );
    let v: Value = serde_json::from_str(&env.ok(&[
        "manifest",
        "verify",
        good.to_str().unwrap(),
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(v["Trusted"], true);
    let out = env.ok(&["manifest", "apply", good.to_str().unwrap()]);
    assert_eq!(state(&env, out.trim()).trim(), "running");

    let evil = zip(
        "evil.llc",
        &format!(
            "[('manifest.json', {:?}), ('../../etc/x', None)]",
            p.to_str().unwrap()
        ),
    );
    assert_refused(
        &env.gcr(&["manifest", "verify", evil.to_str().unwrap()]),
        "422_SCHEMA_INVALID",
        "archive:../../etc/x",
    );
    let undeclared = zip(
        "undeclared.llc",
        &format!(
            "[('manifest.json', {:?}), ('artifacts/secret_x', None)]",
            p.to_str().unwrap()
        ),
    );
    assert_refused(
        &env.gcr(&["manifest", "verify", undeclared.to_str().unwrap()]),
        "422_SCHEMA_INVALID",
        "archive:artifacts/secret_x",
    );
}

/// A private podman store, reset and removed on drop.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn cmd(&self, args: &[&str]) -> Output {
        let d = self.dir.path();
        Command::new("podman")
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("run"))
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .args(args)
            .output()
            .expect("run podman")
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["pod", "rm", "-fa", "-t", "0"]);
        let _ = self.cmd(&["rm", "-fa", "-t", "0"]);
        let _ = self.cmd(&["system", "reset", "-f"]);
    }
}

#[test]
fn the_kubernetes_plan_starts_under_podman_kube_play() {
    if !need_root("the_kubernetes_plan_starts_under_podman_kube_play")
        || !need_tools("kube play", &["podman", "catatonit"])
    {
        return;
    }
    let env = Env::new();
    let p = signed(&env, "web");
    let yaml = env.ok(&[
        "manifest",
        "plan",
        p.to_str().unwrap(),
        "--target",
        "kubernetes",
    ]);
    assert!(yaml.contains("kind: \"Pod\""), "{yaml}");
    let podman = Podman {
        dir: tempfile::tempdir().unwrap(),
    };
    let archive = podman.dir.path().join("busybox.tar");
    env.ok(&["save", IMAGE, "-o", archive.to_str().unwrap()]);
    let out = podman.cmd(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    // gcr saves the familiar name; the plan names the image fully qualified.
    let out = podman.cmd(&[
        "tag",
        "localhost/test/busybox:1",
        "docker.io/test/busybox:1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let file = podman.dir.path().join("pod.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let out = podman.cmd(&["kube", "play", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "kube play: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = podman.cmd(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    let ps = stdout(&out);
    assert!(
        ps.lines().any(|l| l.starts_with("vv-web-vv-web Up")),
        "{ps}"
    );

    // With grants, the plan holds a Secret with placeholders and secret references only.
    let mut m = manifest("db");
    m["artifacts"] = json!([{ "id": "secret_db_url", "type": "secret.url.v1", "hash": format!("blake3:{}", "ab".repeat(32)), "enc": "xchacha20" }]);
    m["grants"] = json!([{ "id": "grt_db", "artifact_id": "secret_db_url", "scope": ["runtime:read"], "ttl": "P30D", "aud": "podman" }]);
    m["deploy"]["env"]["DB_URL"] = json!("grant://grt_db");
    let g = write(env.root.path(), "grants.json", &m);
    env.ok(&["manifest", "sign", g.to_str().unwrap(), "--key", "k1"]);
    let out = env.gcr(&[
        "manifest",
        "plan",
        g.to_str().unwrap(),
        "--target",
        "kubernetes",
    ]);
    let plan = stdout(&out);
    assert!(
        plan.contains("kind: \"Secret\"") && plan.contains("secretKeyRef"),
        "{plan}"
    );
    assert!(plan.contains("REPLACE_WITH_SECRET_VALUE"), "{plan}");
    assert!(stderr(&out).contains("placeholder"), "{}", stderr(&out));
    // Without the secret, apply refuses and runs nothing.
    assert_refused(
        &env.gcr(&["manifest", "apply", g.to_str().unwrap()]),
        "403_FORBIDDEN",
        "deploy.env.DB_URL",
    );
    assert_eq!(env.ok(&["ps", "-aq"]).trim(), "");
    // With it, the value reaches the process's environment and nothing else shows it.
    let value = "postgres://u:hunter2-manifest@db/x";
    let vf = env.root.path().join("value");
    std::fs::write(&vf, value).unwrap();
    env.ok(&["secret", "create", "secret_db_url", vf.to_str().unwrap()]);
    std::fs::remove_file(&vf).unwrap();
    let id = env.ok(&["manifest", "apply", g.to_str().unwrap()]);
    let id = id.trim();
    assert_eq!(state(&env, id), "running");
    let got = env.ok(&["exec", id, "/bin/sh", "-c", "echo -n $DB_URL"]);
    assert_eq!(got, value);
    let inspect = env.ok(&["inspect", id]);
    assert!(
        !inspect.contains(value) && inspect.contains("grant://secret_db_url"),
        "{inspect}"
    );
    assert!(!events(&env).contains(value));
}
