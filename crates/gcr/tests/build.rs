//! `gcr build` end to end: determinism across directories, times and stores; the step
//! cache; every error of issue 4 (hash pin, missing/escaping src, unknown base, failing
//! command, invalid spec) with no image tagged; `.gcrignore`; whiteouts from `rm`;
//! dependencies; `--verify`; and running the built busybox example.

mod common;

use std::path::{Path, PathBuf};

use common::{need_root, stderr, stdout, Env, IMAGE};

const SPEC: &str = r#"format: gcr-v1.0
name: test/app
version: "1.0"
base: test/busybox:1
build:
  copy:
    - src: ./files/
      dest: /data/
      owner: 1000:1000
    - src: ./one.txt
      dest: /etc/app/
  env: { GREETING: hello }
  commands:
    - echo "$GREETING" > /data/greeting && rm /data/f1.txt /bin/vi
runtime:
  cmd: [cat, /data/greeting]
  workdir: /data
  ports: [8080/tcp]
metadata:
  description: test app
"#;

/// Writes a context with `spec` and 30 small files into `dir`.
fn context(dir: &Path, spec: &str) {
    std::fs::create_dir_all(dir.join("files/sub")).unwrap();
    for i in 0..30 {
        std::fs::write(dir.join(format!("files/f{i}.txt")), format!("file {i}\n")).unwrap();
    }
    std::fs::write(dir.join("files/sub/deep.txt"), "deep\n").unwrap();
    std::fs::write(dir.join("one.txt"), "one\n").unwrap();
    std::fs::write(dir.join("app.gcr"), spec).unwrap();
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("gcr-build-test-")
        .tempdir()
        .unwrap()
}

/// Runs `gcr build --progress json` and returns the parsed events.
fn build_json(env: &Env, dir: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["build", "--progress", "json"];
    args.extend_from_slice(extra);
    let d = dir.to_str().unwrap();
    args.push(d);
    let out = env.ok(&args);
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad json line {l:?}: {e}")))
        .collect()
}

fn done(events: &[serde_json::Value]) -> &serde_json::Value {
    events
        .iter()
        .find(|e| e["event"] == "done")
        .expect("a done event")
}

fn steps(events: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    events.iter().filter(|e| e["event"] == "step").collect()
}

/// Asserts the build failed with exit code 1, that stderr contains every needle, and that
/// no image was tagged.
fn fails_with(env: &Env, dir: &Path, needles: &[&str]) {
    let out = env.gcr(&["build", dir.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout {} stderr {err}",
        stdout(&out)
    );
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
    let inspect = env.gcr(&["inspect", "test/app:1.0"]);
    assert!(!inspect.status.success(), "a failed build tagged an image");
}

fn layer_entries(env: &Env, digest: &str) -> Vec<String> {
    let hex = digest.strip_prefix("sha256:").unwrap();
    let blob = env.root.path().join("blobs/sha256").join(hex);
    let out = std::process::Command::new("tar")
        .arg("-tzvf")
        .arg(&blob)
        .output()
        .unwrap();
    assert!(out.status.success());
    stdout(&out).lines().map(str::to_string).collect()
}

#[test]
fn same_digest_from_two_directories_times_and_stores_and_warm_cache() {
    if !need_root("same_digest_from_two_directories_times_and_stores_and_warm_cache") {
        return;
    }
    let (a, b) = (tempdir(), tempdir());
    context(a.path(), SPEC);
    let env1 = Env::new();
    let first = build_json(&env1, a.path(), &[]);
    let d1 = done(&first)["manifest"].as_str().unwrap().to_string();
    // Later, elsewhere, in another store: new mtimes, inodes and path.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    context(&b.path().join("nested"), SPEC);
    let env2 = Env::new();
    let second = build_json(&env2, &b.path().join("nested"), &[]);
    assert_eq!(
        d1,
        done(&second)["manifest"],
        "digest depends on directory or time"
    );
    // Warm cache and --no-cache in the first store.
    let warm = build_json(&env1, a.path(), &[]);
    assert_eq!(d1, done(&warm)["manifest"]);
    let cold = build_json(&env1, a.path(), &["--no-cache"]);
    assert_eq!(d1, done(&cold)["manifest"]);
    assert!(steps(&cold).iter().all(|s| s["cached"] == false));
    // The image runs, with the spec's runtime config.
    assert_eq!(env1.ok(&["run", "--rm", "test/app:1.0"]).trim(), "hello");
}

#[test]
fn cached_rebuild_reports_every_step_cached() {
    if !need_root("cached_rebuild_reports_every_step_cached") {
        return;
    }
    let dir = tempdir();
    context(dir.path(), SPEC);
    let env = Env::new();
    let first = build_json(&env, dir.path(), &[]);
    assert!(steps(&first).iter().all(|s| s["cached"] == false));
    let again = build_json(&env, dir.path(), &[]);
    let s = steps(&again);
    assert_eq!(s.len(), 3);
    assert!(s.iter().all(|s| s["cached"] == true), "{again:?}");
    assert_eq!(done(&again)["cached"], 3);
    let tree = env.ok(&["build", dir.path().to_str().unwrap()]);
    assert!(tree.contains("Building: test/app:1.0"), "{tree}");
    assert!(tree.contains("├── Base image: test/busybox:1"), "{tree}");
    assert!(
        tree.contains("├── Copying files: 32 files in 2 layers (hash verified), cached"),
        "{tree}"
    );
    assert!(tree.contains("└── Built: sha256:"), "{tree}");
    assert!(tree.contains("3 of 3 steps cached"), "{tree}");
    // A changed file invalidates its copy step and everything after it.
    std::fs::write(dir.path().join("one.txt"), "changed\n").unwrap();
    let changed = build_json(&env, dir.path(), &[]);
    let c: Vec<bool> = steps(&changed)
        .iter()
        .map(|s| s["cached"] == true)
        .collect();
    assert_eq!(c, vec![true, false, false]);
    assert_ne!(done(&changed)["manifest"], done(&again)["manifest"]);
}

#[test]
fn command_rm_becomes_whiteouts() {
    if !need_root("command_rm_becomes_whiteouts") {
        return;
    }
    let dir = tempdir();
    context(dir.path(), SPEC);
    let env = Env::new();
    build_json(&env, dir.path(), &[]);
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["inspect", "test/app:1.0"])).unwrap();
    let layers = inspect[0]["Layers"].as_array().unwrap();
    let top = layers.last().unwrap()["Digest"].as_str().unwrap();
    let entries = layer_entries(&env, top);
    let names: Vec<&str> = entries
        .iter()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert!(names.contains(&"data/.wh.f1.txt"), "{entries:?}");
    assert!(names.contains(&"bin/.wh.vi"), "{entries:?}");
    assert!(names.contains(&"data/greeting"), "{entries:?}");
    // Deterministic headers: root-free names, mtime = created (1970).
    assert!(
        entries.iter().all(|l| l.contains("1970-01-01")),
        "{entries:?}"
    );
    let ls = env.ok(&[
        "run",
        "--rm",
        "test/app:1.0",
        "sh",
        "-c",
        "ls /data/f1.txt /bin/vi 2>&1; ls -n /data/f2.txt",
    ]);
    assert!(ls.contains("No such file"), "{ls}");
    let owner: Vec<&str> = ls
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .skip(2)
        .take(2)
        .collect();
    assert_eq!(owner, ["1000", "1000"], "owner not applied: {ls}");
}

#[test]
fn hash_pin_mismatch_names_both_digests() {
    let dir = tempdir();
    let wrong = format!("sha256:{}", "0".repeat(64));
    let spec = SPEC.replace(
        "      owner: 1000:1000\n",
        &format!("      owner: 1000:1000\n      hash: {wrong}\n"),
    );
    context(dir.path(), &spec);
    let env = Env::new();
    fails_with(
        &env,
        dir.path(),
        &["hash mismatch", &format!("expected {wrong}"), "got sha256:"],
    );
}

#[test]
fn correct_hash_pin_is_accepted() {
    let dir = tempdir();
    let spec = "format: gcr-v1.0\nname: test/app\nversion: \"1.0\"\nbase: scratch\nbuild:\n  copy:\n    - src: ./one.txt\n      dest: /one.txt\n";
    context(dir.path(), spec);
    let env = Env::new();
    let ev = build_json(&env, dir.path(), &[]);
    let layer = steps(&ev)[0]["layer"].as_str().unwrap().to_string();
    let pinned = spec.replace(
        "dest: /one.txt\n",
        &format!("dest: /one.txt\n      hash: {layer}\n"),
    );
    std::fs::write(dir.path().join("app.gcr"), pinned).unwrap();
    let ev2 = build_json(&env, dir.path(), &["--no-cache"]);
    assert_eq!(steps(&ev2)[0]["layer"], layer.as_str());
}

#[test]
fn missing_and_escaping_sources_are_refused() {
    let env = Env::new();
    let dir = tempdir();
    context(dir.path(), &SPEC.replace("./one.txt", "./nope.txt"));
    fails_with(&env, dir.path(), &["copy source 'nope.txt' does not exist"]);
    let dir2 = tempdir();
    context(dir2.path(), &SPEC.replace("./one.txt", "./outside"));
    std::os::unix::fs::symlink("/etc", dir2.path().join("outside")).unwrap();
    fails_with(
        &env,
        dir2.path(),
        &["copy source 'outside' resolves outside the build context"],
    );
    let dir3 = tempdir();
    context(dir3.path(), &SPEC.replace("./one.txt", "../one.txt"));
    let out = env.gcr(&["build", dir3.path().to_str().unwrap()]);
    assert!(!out.status.success());
}

#[test]
fn unknown_base_is_named() {
    let env = Env::new();
    let dir = tempdir();
    context(
        dir.path(),
        &SPEC.replace("base: test/busybox:1", "base: nosuch/image:9"),
    );
    fails_with(
        &env,
        dir.path(),
        &["base image 'docker.io/nosuch/image:9' was not found locally"],
    );
}

#[test]
fn invalid_spec_is_positioned() {
    let env = Env::new();
    let dir = tempdir();
    context(
        dir.path(),
        &SPEC.replace("runtime:\n", "runtime:\n  colour: blue\n"),
    );
    fails_with(&env, dir.path(), &["app.gcr", "colour"]);
}

#[test]
fn failing_command_reports_code_and_output_and_tags_nothing() {
    if !need_root("failing_command_reports_code_and_output_and_tags_nothing") {
        return;
    }
    let env = Env::new();
    let dir = tempdir();
    let spec = SPEC.replace(
        "    - echo \"$GREETING\" > /data/greeting && rm /data/f1.txt /bin/vi\n",
        "    - echo first-line; echo boom-line >&2; exit 3\n",
    );
    context(dir.path(), &spec);
    fails_with(
        &env,
        dir.path(),
        &["exit code 3", "first-line", "boom-line", "command 1"],
    );
}

#[test]
fn gcrignore_excludes_files() {
    if !need_root("gcrignore_excludes_files") {
        return;
    }
    let env = Env::new();
    let dir = tempdir();
    let spec = SPEC.replace(
        "    - echo \"$GREETING\" > /data/greeting && rm /data/f1.txt /bin/vi\n",
        "    - test ! -e /data/f3.txt && test ! -e /data/sub/deep.txt && test -e /data/f4.txt && test -e /data/sub/keep.log\n",
    );
    context(dir.path(), &spec);
    std::fs::write(dir.path().join("files/sub/keep.log"), "k").unwrap();
    std::fs::write(dir.path().join("files/sub/drop.log"), "d").unwrap();
    std::fs::write(
        dir.path().join(".gcrignore"),
        "# test\nfiles/f3.txt\nfiles/sub/*\n!files/sub/keep.log\n",
    )
    .unwrap();
    let ev = build_json(&env, dir.path(), &[]);
    assert_eq!(steps(&ev)[0]["files"], 30, "{ev:?}");
}

#[test]
fn dependencies_are_verified_and_extracted() {
    if !need_root("dependencies_are_verified_and_extracted") {
        return;
    }
    let env = Env::new();
    let dir = tempdir();
    context(dir.path(), SPEC);
    // A tar.gz dependency.
    let src = dir.path().join("pkg");
    std::fs::create_dir_all(src.join("lib")).unwrap();
    std::fs::write(src.join("lib/x.txt"), "dep content\n").unwrap();
    let tgz = dir.path().join("dep-1.0.tgz");
    assert!(std::process::Command::new("tar")
        .arg("-czf")
        .arg(&tgz)
        .arg("-C")
        .arg(&src)
        .arg("lib")
        .status()
        .unwrap()
        .success());
    let digest = {
        let out = std::process::Command::new("sha256sum")
            .arg(&tgz)
            .output()
            .unwrap();
        format!("sha256:{}", stdout(&out).split_whitespace().next().unwrap())
    };
    let deps = format!(
        "  dependencies:\n    - name: dep\n      version: \"1.0\"\n      source: file://dep-1.0.tgz\n      hash: {digest}\n      extract: true\n    - name: raw\n      version: \"2\"\n      source: file://one.txt\n      hash: sha256:{}\n      dest: /opt/raw/\n",
        sha256_hex(b"one\n")
    );
    let spec = SPEC.replace("  env:", &format!("{deps}  env:")).replace(
        "    - echo \"$GREETING\" > /data/greeting && rm /data/f1.txt /bin/vi\n",
        "    - grep -q 'dep content' /opt/deps/dep-1.0/lib/x.txt && grep -q one /opt/raw/one.txt\n",
    );
    std::fs::write(dir.path().join("app.gcr"), &spec).unwrap();
    let ev = build_json(&env, dir.path(), &[]);
    assert_eq!(steps(&ev).len(), 5);
    // A wrong hash is refused with both digests.
    let bad = spec.replace(&digest, &format!("sha256:{}", "1".repeat(64)));
    std::fs::write(dir.path().join("app.gcr"), bad).unwrap();
    let out = env.gcr(&["build", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("dependency 'dep' hash mismatch"), "{err}");
    assert!(err.contains(&digest), "{err}");
}

fn sha256_hex(b: &[u8]) -> String {
    use std::io::Write;
    let mut c = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(b).unwrap();
    let out = c.wait_with_output().unwrap();
    stdout(&out).split_whitespace().next().unwrap().to_string()
}

#[test]
fn verify_builds_twice_and_agrees() {
    if !need_root("verify_builds_twice_and_agrees") {
        return;
    }
    let env = Env::new();
    let dir = tempdir();
    context(dir.path(), SPEC);
    let out = env.ok(&["build", "--verify", dir.path().to_str().unwrap()]);
    assert!(
        out.contains("Reproducible: both builds gave sha256:"),
        "{out}"
    );
    assert!(out.contains("└── Built: sha256:"), "{out}");
    // The verification stores are gone.
    let tmp: Vec<PathBuf> = std::fs::read_dir(env.root.path().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        tmp.iter().all(|p| !p.to_string_lossy().contains("verify-")),
        "{tmp:?}"
    );
}

#[test]
fn busybox_example_builds_and_runs() {
    if !need_root("busybox_example_builds_and_runs") {
        return;
    }
    let env = Env::new();
    env.ok(&["tag", IMAGE, "demo/busybox:1.0"]);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/busybox-app");
    let out = env.ok(&["build", src.to_str().unwrap()]);
    assert!(out.contains("Running commands: 3 commands"), "{out}");
    assert!(out.contains("build checks passed"), "{out}");
    let run = env.ok(&["run", "--rm", "busybox-app:1.0.0"]);
    assert_eq!(
        run.trim(),
        "hello from busybox-app (running as 1000, in /app)"
    );
}
