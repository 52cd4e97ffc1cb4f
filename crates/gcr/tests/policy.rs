//! The policy gate, end to end (root): a deny matrix where every rule kind passes one
//! container and refuses another, each refusal leaving the store, the run dir, the
//! cgroup tree and the mounts as they were; sigstoreSigned at `run` and `pull` with
//! images signed by the right key, another key, or none.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::servers::Server;
use common::{need_root, stderr, stdout, Env, IMAGE};

fn hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Container cgroup dirs gcr made (v2 and each v1 hierarchy).
/// What a refused container must not change.
#[derive(Debug, PartialEq)]
struct State {
    ps: String,
    containers: BTreeSet<String>,
    run: BTreeSet<String>,
    cgroups: BTreeSet<std::path::PathBuf>,
    mounts: Vec<String>,
}

fn state(env: &Env) -> State {
    let root = env.root.path().display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&root))
        .map(str::to_string)
        .collect();
    State {
        // Every field but the relative age, which moves on by itself.
        ps: env
            .ok(&["ps", "-a", "--format", "json"])
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                if let Some(o) = v.as_object_mut() {
                    o.remove("RunningFor");
                    // Status carries the age too: "Exited (0) 1 second ago" and
                    // "Up 2 seconds" keep only "Exited (0)" and "Up".
                    if let Some(s) = o.get("Status").and_then(|s| s.as_str()) {
                        let kept = match s.find(')') {
                            Some(i) => &s[..=i],
                            None => s.split(' ').next().unwrap_or(s),
                        };
                        let kept = kept.to_string();
                        o.insert("Status".into(), kept.into());
                    }
                }
                v.to_string()
            })
            .collect::<Vec<_>>()
            .join("\n"),
        containers: names(&env.root.path().join("containers")),
        run: names(&env.run_dir)
            .into_iter()
            .filter(|n| hex64(n))
            .collect(),
        cgroups: common::container_cgroups(),
        mounts,
    }
}

fn assert_refused(env: &Env, args: &[&str], rule: &str) {
    let before = state(env);
    let out = env.gcr(args);
    assert_eq!(
        out.status.code(),
        Some(125),
        "gcr {args:?}: {}",
        stderr(&out)
    );
    let line = stderr(&out);
    let v: serde_json::Value = serde_json::from_str(line.lines().next().unwrap_or(""))
        .unwrap_or_else(|e| panic!("gcr {args:?}: stderr is not the JSON line ({e}): {line}"));
    assert_eq!(v["code"], "POLICY_DENY", "{line}");
    assert_eq!(v["rule"], rule, "gcr {args:?}: {line}");
    assert!(v["reason"].as_str().is_some_and(|r| !r.is_empty()));
    let mut after = state(env);
    if after.cgroups != before.cgroups {
        // Another test's container may come and go meanwhile; a leak stays.
        std::thread::sleep(std::time::Duration::from_secs(2));
        after = state(env);
    }
    // A group still there may be a container of another test's store (they run at the
    // same time): one whose directory is in another store is not ours.
    let own = env.root.path().to_path_buf();
    let elsewhere = |cg: &std::path::PathBuf| {
        let id = cg
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        std::fs::read_dir("/tmp").is_ok_and(|d| {
            d.flatten().any(|e| {
                let p = e.path();
                p != own
                    && e.file_name().to_string_lossy().starts_with("gcr-test-")
                    && p.join("containers").join(&id).exists()
            })
        })
    };
    let leaked: Vec<_> = after
        .cgroups
        .difference(&before.cgroups)
        .filter(|cg| !elsewhere(cg))
        .cloned()
        .collect();
    assert!(leaked.is_empty(), "gcr {args:?} left cgroups: {leaked:?}");
    // Groups of other tests' containers come and go; ours were checked above.
    let mut before = before;
    before.cgroups.clear();
    after.cgroups.clear();
    assert_eq!(before, after, "gcr {args:?} left something behind");
}

/// Standard base64 (keyData holds the PEM so encoded).
fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn write(env: &Env, name: &str, text: &str) -> String {
    let p = env.root.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn deny_matrix() {
    if !need_root("deny_matrix") {
        return;
    }
    let env = Env::new();
    let bind = tempfile::tempdir().unwrap();
    let allowed = bind.path().join("ok");
    std::fs::create_dir(&allowed).unwrap();
    let rp = write(
        &env,
        "rp.json",
        &format!(
            r#"{{"registries":["local"],"capAdd":["NET_ADMIN"],"bindMounts":["{}"],
               "readOnlyRootfs":true,"nonRoot":true,"memory":"256m","cpus":1.0,"pids":100}}"#,
            allowed.display()
        ),
    );
    let ok = [
        "--run-policy",
        rp.as_str(),
        "run",
        "--rm",
        "--read-only",
        "-u",
        "1000",
    ];
    let base = |extra: &[&str]| -> Vec<String> {
        ok.iter()
            .chain(extra)
            .chain(&[IMAGE, "true"])
            .map(|s| s.to_string())
            .collect()
    };
    let run_ok = |extra: &[&str]| {
        let a = base(extra);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        env.ok(&a);
    };
    let refuse = |extra: &[&str], rule: &str| {
        let a = base(extra);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        assert_refused(&env, &a, rule);
    };
    // Run twice: the second run of each is the image cache's fast path.
    for _ in 0..2 {
        run_ok(&[]);
        refuse(&["--privileged"], "runPolicy.privileged");
        run_ok(&["--cap-add", "NET_ADMIN"]);
        refuse(&["--cap-add", "SYS_ADMIN"], "runPolicy.capAdd");
        refuse(&["--network", "host"], "runPolicy.hostNetwork");
        let good = format!("{}:/mnt", allowed.display());
        run_ok(&["-v", &good]);
        refuse(&["-v", "/etc:/mnt"], "runPolicy.bindMounts");
        // --mount binds are bind mounts too; host namespaces and devices are privileges.
        let good_mount = format!("type=bind,source={},target=/mnt", allowed.display());
        run_ok(&["--mount", &good_mount]);
        refuse(
            &["--mount", "type=bind,source=/etc,target=/mnt"],
            "runPolicy.bindMounts",
        );
        refuse(&["--pid", "host"], "runPolicy.hostNamespaces");
        refuse(&["--ipc", "host"], "runPolicy.hostNamespaces");
        refuse(&["--uts", "host"], "runPolicy.hostNamespaces");
        refuse(&["--device", "/dev/null:/dev/n2"], "runPolicy.devices");
        run_ok(&["--memory", "128m", "--cpus", "0.5", "--pids-limit", "50"]);
        refuse(&["--memory", "1g"], "runPolicy.memory");
        refuse(&["--cpus", "2"], "runPolicy.cpus");
        refuse(&["--pids-limit", "1000"], "runPolicy.pids");
    }
    // readOnlyRootfs and nonRoot: flags the base has; refuse without them.
    for (args, rule) in [
        (
            vec![
                "--run-policy",
                &rp,
                "run",
                "--rm",
                "-u",
                "1000",
                IMAGE,
                "true",
            ],
            "runPolicy.readOnlyRootfs",
        ),
        (
            vec![
                "--run-policy",
                &rp,
                "run",
                "--rm",
                "--read-only",
                IMAGE,
                "true",
            ],
            "runPolicy.nonRoot",
        ),
        (
            vec!["--run-policy", &rp, "create", "--read-only", IMAGE, "true"],
            "runPolicy.nonRoot",
        ),
        (
            vec![
                "--run-policy",
                &rp,
                "run",
                "-d",
                "--read-only",
                IMAGE,
                "true",
            ],
            "runPolicy.nonRoot",
        ),
    ] {
        assert_refused(&env, &args, rule);
    }
    // A container without limits gets the ceilings, stored (inspect shows them).
    let id = env.ok(&[
        "--run-policy",
        &rp,
        "create",
        "--read-only",
        "-u",
        "1000",
        IMAGE,
        "true",
    ]);
    let id = id.trim();
    let inspect = env.ok(&["inspect", id]);
    assert!(inspect.contains(&(256u64 << 20).to_string()), "{inspect}");
    // start consults the policy again: a stricter one refuses the stored container.
    let strict = write(&env, "strict.json", r#"{"registries":["docker.io"]}"#);
    assert_refused(
        &env,
        &["--run-policy", &strict, "start", id],
        "runPolicy.registries",
    );
    env.ok(&["--run-policy", &rp, "start", id]);
    // It runs `true`: let it exit before the next snapshot.
    env.ok(&["wait", id]);
    // Registries and the image policy.
    let other = write(&env, "other.json", r#"{"registries":["127.0.0.1:5000"]}"#);
    assert_refused(
        &env,
        &["--run-policy", &other, "run", "--rm", IMAGE, "true"],
        "runPolicy.registries",
    );
    let pol = write(
        &env,
        "policy.json",
        r#"{"default":[{"type":"reject"}],"transports":{"gcr":{"docker.io/test/busybox:1":[{"type":"insecureAcceptAnything"}]}}}"#,
    );
    env.ok(&["--policy", &pol, "run", "--rm", IMAGE, "true"]);
    env.ok(&["tag", IMAGE, "test/busybox:2"]);
    assert_refused(
        &env,
        &["--policy", &pol, "run", "--rm", "test/busybox:2", "true"],
        "policy.default",
    );
    // Every decision is an event.
    let ev = env.ok(&[
        "events", "--since", "0", "--until", "0s", "--format", "json",
    ]);
    assert!(ev.contains("\"deny\""), "{ev}");
    assert!(ev.contains("policy allow"), "{ev}");
    // A broken policy file is an error naming the line.
    let bad = write(&env, "bad.json", "{\n\"default\": [],\n\"nope\": 1}");
    let out = env.gcr(&["--policy", &bad, "run", "--rm", IMAGE, "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("line 3"), "{}", stderr(&out));
    // policy check explains without running.
    let out = env.gcr(&[
        "--run-policy",
        &rp,
        "policy",
        "check",
        "--format",
        "json",
        IMAGE,
    ]);
    assert_eq!(out.status.code(), Some(125));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["Run"]["Rule"], "runPolicy.readOnlyRootfs");
}

/// A registry holding IMAGE as `signed/app:1` (signed by key `good`), `forged/app:1`
/// (signed by key `evil`) and `plain/app:1` (unsigned); the store that pushed it keeps the
/// keys.
fn signed_registry(env: &Env) -> Server {
    let reg = Server::gcr(&[], &[]);
    let host = reg.host();
    env.ok(&["key", "generate", "good"]);
    env.ok(&["key", "generate", "evil"]);
    for (repo, key) in [
        ("signed", Some("good")),
        ("forged", Some("evil")),
        ("plain", None),
    ] {
        // A distinct image each (signatures are referrers of the manifest digest).
        let ctx = tempfile::tempdir().unwrap();
        std::fs::write(ctx.path().join("f"), repo).unwrap();
        let spec = format!(
            "format: gcr-v1.0\nname: {repo}/app\nversion: \"1\"\nbase: {IMAGE}\nbuild:\n  copy:\n    - src: ./f\n      dest: /f\n"
        );
        std::fs::write(ctx.path().join("app.gcr"), spec).unwrap();
        env.ok(&["build", "--no-sign", "-q", ctx.path().to_str().unwrap()]);
        let name = format!("{host}/{repo}/app:1");
        env.ok(&["tag", &format!("{repo}/app:1"), &name]);
        if let Some(k) = key {
            env.ok(&["sign", &name, "--key", k]);
        }
        env.ok(&["push", &name]);
    }
    reg
}

#[test]
fn sigstore_signed_at_run_and_pull() {
    if !need_root("sigstore_signed_at_run_and_pull") {
        return;
    }
    let pusher = Env::new();
    let reg = signed_registry(&pusher);
    let host = reg.host();
    let pem = pusher.ok(&["key", "export", "good"]);
    let data = b64(pem.as_bytes());
    let env = Env::new();
    let pol = write(
        &env,
        "signed.json",
        &format!(
            r#"{{"default":[{{"type":"insecureAcceptAnything"}}],"transports":{{"docker":{{
               "{host}":[{{"type":"sigstoreSigned","keyData":"{data}","signedIdentity":{{"type":"matchRepository"}}}}]}}}}}}"#
        ),
    );
    let signed = format!("{host}/signed/app:1");
    let forged = format!("{host}/forged/app:1");
    let plain = format!("{host}/plain/app:1");
    // Pull: the unsigned and the wrongly signed image are refused and not kept.
    for name in [&plain, &forged] {
        let before = env.ok(&["images", "-q"]);
        let out = env.gcr(&["--policy", &pol, "pull", name]);
        assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
        assert!(stderr(&out).contains("POLICY_DENY"), "{}", stderr(&out));
        assert_eq!(
            env.ok(&["images", "-q"]),
            before,
            "a refused pull kept {name}"
        );
    }
    env.ok(&["--policy", &pol, "pull", &signed]);
    env.ok(&["--policy", &pol, "run", "--rm", &signed, "true"]);
    env.ok(&["--policy", &pol, "run", "--rm", &signed, "true"]);
    // keyPath: a cached allow does not survive a replaced key file (a revoked key).
    let key_file = env.root.path().join("trusted.pub");
    std::fs::write(&key_file, &pem).unwrap();
    let by_path = write(
        &env,
        "by-path.json",
        &format!(
            r#"{{"default":[{{"type":"insecureAcceptAnything"}}],"transports":{{"docker":{{
               "{host}":[{{"type":"sigstoreSigned","keyPath":"{}","signedIdentity":{{"type":"matchRepository"}}}}]}}}}}}"#,
            key_file.display()
        ),
    );
    env.ok(&["--policy", &by_path, "run", "--rm", &signed, "true"]);
    env.ok(&["--policy", &by_path, "run", "--rm", &signed, "true"]);
    std::fs::write(&key_file, pusher.ok(&["key", "export", "evil"])).unwrap();
    let out = env.gcr(&["--policy", &by_path, "run", "--rm", &signed, "true"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(stderr(&out).contains("POLICY_DENY"), "{}", stderr(&out));
    // Run: images pulled without the policy are refused with it.
    for name in [&plain, &forged] {
        env.ok(&["pull", name]);
        assert_refused(
            &env,
            &["--policy", &pol, "run", "--rm", name, "true"],
            &format!("policy.transports.docker.{host}"),
        );
    }
    // The default identity (matchRepoDigestOrExact) wants the tag gcr signatures lack.
    let exact = write(
        &env,
        "exact.json",
        &format!(r#"{{"default":[{{"type":"sigstoreSigned","keyData":"{data}"}}]}}"#),
    );
    assert_refused(
        &env,
        &["--policy", &exact, "run", "--rm", &signed, "true"],
        "policy.default",
    );
    // Run policy signers: by key id.
    let id = pusher.ok(&["key", "list", "--format", "json"]);
    let keys: serde_json::Value = serde_json::from_str(&id).unwrap();
    let good_id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["Name"] == "good")
        .map(|k| k["KeyID"].as_str().unwrap().to_string())
        .unwrap();
    env.ok(&["key", "import", "good", &write(&env, "good.pub", &pem)]);
    let rp = write(
        &env,
        "rp.json",
        &format!(r#"{{"registries":["*"],"signers":["{good_id}"],"privileged":true}}"#),
    );
    env.ok(&["--run-policy", &rp, "run", "--rm", &signed, "true"]);
    assert_refused(
        &env,
        &["--run-policy", &rp, "run", "--rm", &plain, "true"],
        "runPolicy.signers",
    );
}
