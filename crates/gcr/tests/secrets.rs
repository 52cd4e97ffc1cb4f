//! Secrets (issue 15 item 4): `gcr secret create|ls|inspect|rm`; a container given a
//! secret as a file (`--secret`) and as an environment value (`-e VAR=grant://NAME`) reads
//! it at `/run/secrets/NAME` on a read-only tmpfs with the requested owner and mode, while
//! a byte search of the store root, the run dir, every blob, logs, events, inspect and ps
//! finds the value nowhere; the file is gone when the container stops and back on start.
//! Bad input (names, flags, a missing secret, an open key file) is refused with exit 125
//! and writes nothing.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Says "ready" once its TERM trap is in place, after printing what it checked.
const CHECK: &str = r#"trap 'exit 0' TERM
stat -c 'mode=%a uid=%u gid=%g' /run/secrets/db
grep ' /run/secrets ' /proc/mounts
grep ' /etc/app/pw ' /proc/mounts
[ "$(cat /run/secrets/db)" = "$PW" ] && echo env-matches-file
[ "$(cat /etc/app/pw)" = "$PW" ] && echo bind-matches
sha256sum /run/secrets/db
echo ready
while :; do sleep 1 & wait $!; done"#;

/// A long random value no file could hold by chance.
fn random_value() -> String {
    let mut b = [0u8; 48];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .expect("read /dev/urandom");
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("gcr-secret-{hex}")
}

fn sha256_hex(data: &[u8]) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Every regular file under `dir` whose bytes contain `needle` (symlinks not followed).
fn files_containing(dir: &Path, needle: &[u8], hits: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if md.is_dir() {
            files_containing(&p, needle, hits);
        } else if md.is_file() {
            if let Ok(b) = std::fs::read(&p) {
                if b.windows(needle.len()).any(|w| w == needle) {
                    hits.push(p.display().to_string());
                }
            }
        }
    }
}

fn assert_nowhere(env: &Env, value: &str, when: &str) {
    let mut hits = Vec::new();
    files_containing(env.root.path(), value.as_bytes(), &mut hits);
    files_containing(&env.run_dir, value.as_bytes(), &mut hits);
    assert!(hits.is_empty(), "{when}: the value is in {hits:?}");
    for args in [
        &["ps", "-a", "--format", "json"][..],
        &[
            "events", "--since", "0", "--until", "0s", "--format", "json",
        ],
        &["inspect", "c1"],
        &["logs", "c1"],
        &["secret", "inspect", "db"],
        &["secret", "ls", "--format", "json"],
    ] {
        let out = env.gcr(args);
        let all = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
        assert!(
            !all.windows(value.len()).any(|w| w == value.as_bytes()),
            "{when}: `gcr {args:?}` shows the value"
        );
    }
}

#[test]
fn a_secret_reaches_its_container_only() {
    if !need_root("a_secret_reaches_its_container_only") {
        return;
    }
    let env = Env::new();
    let value = random_value();
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("value");
    std::fs::write(&file, &value).unwrap();
    let id = env.ok(&[
        "secret",
        "create",
        "--label",
        "team=db",
        "db",
        file.to_str().unwrap(),
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 25, "{id}");
    // The key file: root only.
    let key = std::fs::metadata(env.root.path().join("secrets.key")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    assert_eq!(env.ok(&["secret", "ls", "-q"]).trim(), id);
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["secret", "inspect", "db"])).unwrap();
    assert_eq!(inspect[0]["ID"], id);
    assert_eq!(inspect[0]["Spec"]["Name"], "db");
    assert_eq!(inspect[0]["Spec"]["Labels"]["team"], "db");
    assert!(inspect[0]["Digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));

    env.ok(&[
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "none",
        "--secret",
        "db,uid=1000,gid=1001,mode=0440",
        "--secret",
        "source=db,target=/etc/app/pw",
        "-e",
        "PW=grant://db",
        IMAGE,
        "sh",
        "-c",
        CHECK,
    ]);
    assert!(
        eventually(10, || env.ok(&["logs", "c1"]).contains("ready")),
        "{}",
        env.ok(&["logs", "c1"])
    );
    let logs = env.ok(&["logs", "c1"]);
    assert!(logs.contains("mode=440 uid=1000 gid=1001"), "{logs}");
    assert!(logs.contains("tmpfs /run/secrets tmpfs ro,"), "{logs}");
    assert!(logs.contains(" /etc/app/pw tmpfs ro,"), "{logs}");
    assert!(logs.contains("env-matches-file"), "{logs}");
    assert!(logs.contains("bind-matches"), "{logs}");
    assert!(logs.contains(&sha256_hex(value.as_bytes())), "{logs}");
    // exec sees the file and gets grant:// values too.
    let out = env.ok(&[
        "exec",
        "-e",
        "X=grant://db",
        "c1",
        "sh",
        "-c",
        "[ \"$X\" = \"$(cat /run/secrets/db)\" ] && echo same",
    ]);
    assert_eq!(out.trim(), "same");
    // The stored configuration keeps the reference.
    let inspect = env.ok(&["inspect", "c1"]);
    assert!(inspect.contains("PW=grant://db"), "{inspect}");
    // A secret in use cannot be removed.
    let out = env.gcr(&["secret", "rm", "db"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("in use by container(s) c1"),
        "{}",
        stderr(&out)
    );
    assert_nowhere(&env, &value, "while running");

    env.ok(&["stop", "c1"]);
    assert_nowhere(&env, &value, "after stop");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains("/run/secrets"), "{mounts}");

    // Back on start (the tmpfs is made again from the sealed value).
    env.ok(&["start", "c1"]);
    assert!(eventually(10, || env
        .ok(&["logs", "c1"])
        .matches("ready")
        .count()
        == 2));
    assert_eq!(
        env.ok(&["logs", "c1"]).matches("env-matches-file").count(),
        2
    );
    env.ok(&["stop", "c1"]);
    assert_nowhere(&env, &value, "after the second stop");
    env.ok(&["rm", "c1"]);
    assert_eq!(env.ok(&["secret", "rm", "db"]).trim(), "db");
    assert_eq!(env.ok(&["secret", "ls", "-q"]).trim(), "");
}

#[test]
fn a_foreground_run_gets_its_secret_every_time() {
    if !need_root("a_foreground_run_gets_its_secret_every_time") {
        return;
    }
    let env = Env::new();
    let value = random_value();
    let mut c = env.cmd(&["secret", "create", "tok", "-"]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), value.as_bytes()).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    // Twice: the second run goes through the housekeeper and the image cache.
    for _ in 0..2 {
        let out = env.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--secret",
            "tok",
            "-e",
            "T=grant://tok",
            IMAGE,
            "sh",
            "-c",
            "cat /run/secrets/tok; echo; echo $T",
        ]);
        assert_eq!(out, format!("{value}\n{value}\n"));
    }
    let mut hits = Vec::new();
    files_containing(env.root.path(), value.as_bytes(), &mut hits);
    files_containing(&env.run_dir, value.as_bytes(), &mut hits);
    assert!(hits.is_empty(), "{hits:?}");
}

#[test]
fn a_healthcheck_gets_grant_values_too() {
    if !need_root("a_healthcheck_gets_grant_values_too") {
        return;
    }
    let env = Env::new();
    let value = random_value();
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("v");
    std::fs::write(&file, &value).unwrap();
    env.ok(&["secret", "create", "db", file.to_str().unwrap()]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--network",
        "none",
        "--secret",
        "db",
        "-e",
        "PW=grant://db",
        "--health-cmd",
        "[ \"$PW\" = \"$(cat /run/secrets/db)\" ]",
        "--health-interval",
        "100ms",
        IMAGE,
        "sleep",
        "60",
    ]);
    let status = || {
        let out = env.ok(&["inspect", "hc"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v[0]["State"]["Health"]["Status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(eventually(10, || status() == "healthy"), "{}", status());
    let out = env.ok(&["inspect", "hc"]);
    assert!(!out.contains(&value), "inspect shows the value");
    env.ok(&["rm", "-f", "hc"]);
    let mut hits = Vec::new();
    files_containing(env.root.path(), value.as_bytes(), &mut hits);
    files_containing(&env.run_dir, value.as_bytes(), &mut hits);
    assert!(hits.is_empty(), "{hits:?}");
}

fn assert_refused(env: &Env, args: &[&str], says: &str) {
    let out = env.gcr(args);
    assert_eq!(
        out.status.code(),
        Some(125),
        "gcr {args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(says),
        "gcr {args:?}: {}",
        stderr(&out)
    );
    assert_eq!(
        env.ok(&["ps", "-aq"]).trim(),
        "",
        "gcr {args:?} left a container"
    );
    let dirs = std::fs::read_dir(env.root.path().join("containers"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(dirs, 0, "gcr {args:?} left a container directory");
}

#[test]
fn bad_input_is_refused_and_writes_nothing() {
    if !need_root("bad_input_is_refused_and_writes_nothing") {
        return;
    }
    let env = Env::new();
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("v");
    std::fs::write(&file, "value-1").unwrap();
    let f = file.to_str().unwrap();
    assert_refused(
        &env,
        &["secret", "create", "bad!", f],
        "invalid secret name",
    );
    assert_refused(&env, &["secret", "create", "a/b", f], "invalid secret name");
    let empty = src.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    assert_refused(
        &env,
        &["secret", "create", "e", empty.to_str().unwrap()],
        "is empty",
    );
    assert_refused(
        &env,
        &["secret", "create", "m", "/nonexistent/file"],
        "cannot read",
    );
    assert_eq!(env.ok(&["secret", "ls", "-q"]).trim(), "");

    env.ok(&["secret", "create", "db", f]);
    let digest = env.ok(&["secret", "inspect", "db"]);
    assert_refused(&env, &["secret", "create", "db", f], "gcr secret rm db");
    assert_eq!(
        env.ok(&["secret", "inspect", "db"]),
        digest,
        "the duplicate changed it"
    );

    for verb in ["create", "run"] {
        assert_refused(
            &env,
            &[verb, "--secret", "nosuch", IMAGE, "true"],
            "secret 'nosuch' not found",
        );
        assert_refused(
            &env,
            &[verb, "-e", "X=grant://nosuch", IMAGE, "true"],
            "secret 'nosuch' not found",
        );
        assert_refused(
            &env,
            &[verb, "--secret", "db,colour=red", IMAGE, "true"],
            "invalid --secret 'db,colour=red': unknown key 'colour'",
        );
        assert_refused(
            &env,
            &[verb, "--secret", "db,mode=rw", IMAGE, "true"],
            "invalid --secret",
        );
        assert_refused(
            &env,
            &[
                verb,
                "--secret",
                "db",
                "--secret",
                "src=db,target=db",
                IMAGE,
                "true",
            ],
            "two --secret flags have the target /run/secrets/db",
        );
    }
    let out = env.gcr(&["secret", "inspect", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no secret named 'nosuch'"));

    // A key file open to others is refused, never used or repaired.
    let key = env.root.path().join("secrets.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_refused(&env, &["secret", "create", "other", f], "chmod 600");
    assert_refused(
        &env,
        &["run", "--rm", "--secret", "db", IMAGE, "true"],
        "chmod 600",
    );
    assert_eq!(env.ok(&["secret", "ls", "-q"]).lines().count(), 1);
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o644
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = env.ok(&[
        "run",
        "--rm",
        "--secret",
        "db",
        IMAGE,
        "cat",
        "/run/secrets/db",
    ]);
    assert_eq!(out, "value-1");
}

const BUILD_SPEC: &str = r#"format: gcr-v1.0
name: test/withsecret
version: "1"
base: test/busybox:1
build:
  secrets: [tok, {id: stored, source: st}]
  commands:
    - test "$(stat -c '%a %u %g' /run/secrets/tok)" = "400 0 0" && grep -q ' /run/secrets tmpfs ro,' /proc/mounts && test -s /run/secrets/stored && echo built > /built
"#;

/// `gcr build --progress json` with `extra` flags: (manifest digest, step cached?).
fn build_once(env: &Env, ctx: &Path, extra: &[&str], envs: &[(&str, &str)]) -> (String, bool) {
    let mut args = vec!["build", "--progress", "json"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    let mut c = env.cmd(&args);
    c.envs(envs.iter().copied());
    let out = c.output().unwrap();
    assert!(out.status.success(), "build: {}", stderr(&out));
    let events: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let done = events.iter().find(|e| e["event"] == "done").unwrap();
    let step = events
        .iter()
        .find(|e| e["event"] == "step" && e["kind"] == "command")
        .unwrap();
    (
        done["manifest"].as_str().unwrap().to_string(),
        step["cached"].as_bool().unwrap(),
    )
}

#[test]
fn a_build_secret_leaves_no_trace_and_no_digest_change() {
    if !need_root("a_build_secret_leaves_no_trace_and_no_digest_change") {
        return;
    }
    let env = Env::new();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("app.gcr"), BUILD_SPEC).unwrap();
    let (a, b, stored) = (random_value(), random_value(), random_value());
    let file = ctx.path().join("..").join(format!(
        "{}-tok",
        ctx.path().file_name().unwrap().to_string_lossy()
    ));
    let _cleanup = Cleanup(file.clone());
    std::fs::write(&file, &a).unwrap();
    let src = ctx.path().join("stored");
    std::fs::write(&src, &stored).unwrap();
    env.ok(&["secret", "create", "st", src.to_str().unwrap()]);
    std::fs::remove_file(&src).unwrap();

    let flag = format!("id=tok,src={}", file.display());
    let (first, cached) = build_once(&env, ctx.path(), &["--secret", &flag], &[]);
    assert!(!cached);
    // Another value (from the environment this time): the step runs again (its cache key
    // holds a keyed digest of the value), the image is the same.
    let (second, cached) = build_once(
        &env,
        ctx.path(),
        &["--secret", "id=tok,env=TOK"],
        &[("TOK", &b)],
    );
    assert!(!cached, "a new secret value must rerun the step");
    assert_eq!(
        first, second,
        "the image digest changed with the secret's value"
    );
    // The same value again: a cache hit.
    let (third, cached) = build_once(
        &env,
        ctx.path(),
        &["--secret", "id=tok,env=TOK"],
        &[("TOK", &b)],
    );
    assert!(cached);
    assert_eq!(third, first);

    // Nowhere in the store: layers, blobs, cache keys, transcripts, provenance, the database.
    for v in [&a, &b, &stored] {
        let mut hits = Vec::new();
        files_containing(env.root.path(), v.as_bytes(), &mut hits);
        files_containing(&env.run_dir, v.as_bytes(), &mut hits);
        let plain = sha256_hex(v.as_bytes());
        files_containing(env.root.path(), plain.as_bytes(), &mut hits);
        assert!(
            hits.is_empty(),
            "a value or its plain digest is in {hits:?}"
        );
    }
    // No layer carries the mount point.
    let blobs = env.root.path().join("blobs/sha256");
    for e in std::fs::read_dir(&blobs).unwrap().flatten() {
        let out = std::process::Command::new("tar")
            .arg("-tzf")
            .arg(e.path())
            .output()
            .unwrap();
        if out.status.success() {
            let list = stdout(&out);
            assert!(!list.contains("run/secrets"), "{list}");
        }
    }
    let out = env.ok(&[
        "run",
        "--rm",
        "test/withsecret:1",
        "sh",
        "-c",
        "cat /built; ls /run/secrets 2>&1; true",
    ]);
    assert!(out.starts_with("built\n"), "{out}");
    assert!(
        out.contains("No such file"),
        "the image has /run/secrets: {out}"
    );

    // Bad input: an undeclared id, a declared one without a value, a bad flag.
    for (args, says) in [
        (
            vec!["--secret", "id=nope,src=/etc/hostname"],
            "declares no build secret 'nope'",
        ),
        (vec![], "build secret 'tok' has no value"),
        (vec!["--secret", "id=tok"], "neither src= nor env="),
        (
            vec!["--secret", "id=tok,env=UNSET_VAR_FOR_GCR_TEST"],
            "is not set",
        ),
    ] {
        let mut full = vec!["build"];
        full.extend(args.iter().copied());
        full.push(ctx.path().to_str().unwrap());
        let out = env.gcr(&full);
        assert!(!out.status.success(), "{full:?}");
        assert!(stderr(&out).contains(says), "{full:?}: {}", stderr(&out));
    }
}

/// Removes a file on drop.
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
