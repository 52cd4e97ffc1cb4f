//! The secret scan of `gcr build`'s copy sources: a planted key refuses the build (exit
//! 125, file:line and rule named, the secret never shown) and stores nothing (no image, no
//! blob, no step-cache entry); `--allow-secret` lets that path through (a file or a
//! directory prefix) and only for that build; files in the context that no copy takes, or
//! that `.gcrignore` drops, are not scanned; a clean cached rebuild reads no file again;
//! index rows a non-scanning build wrote are not trusted.
//! Samples are assembled at run time so this file holds no token-shaped string.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{stderr, stdout, Env};

const SPEC: &str = "format: gcr-v1.0\nname: test/scan\nversion: \"1.0\"\nbase: scratch\nbuild:\n  copy:\n    - src: ./app/\n      dest: /app/\n";

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("gcr-scan-test-")
        .tempdir()
        .unwrap()
}

/// A fake GitHub token (pattern-valid, never issued).
fn token() -> String {
    format!("{}{}{}", "gh", "p_", "Zq3x9LmN2pR7sT1vW4yB6cD8fG0hJ5kQ2aE9")
}

/// A fake PEM private key.
fn pem() -> String {
    let line = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun";
    format!(
        "-----BEGIN {} PRIVATE KEY-----\n{line}\n{line}\n-----END RSA PRIVATE KEY-----\n",
        "RSA"
    )
}

/// A context whose copy source `app/` holds 20 clean files plus `extra` (path, content).
fn context(dir: &Path, extra: &[(&str, String)]) {
    std::fs::create_dir_all(dir.join("app/conf")).unwrap();
    for i in 0..20 {
        std::fs::write(
            dir.join(format!("app/f{i}.txt")),
            format!("line one\nvalue {i}\n"),
        )
        .unwrap();
    }
    for (p, c) in extra {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, c).unwrap();
    }
    std::fs::write(dir.join("app.gcr"), SPEC).unwrap();
}

fn blobs(env: &Env) -> BTreeSet<String> {
    match std::fs::read_dir(env.root.path().join("blobs/sha256")) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

fn images(env: &Env) -> String {
    env.ok(&["images", "-q", "--no-trunc"])
}

/// The build's events (`--progress json`).
fn build_json(env: &Env, dir: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["build", "--progress", "json"];
    args.extend_from_slice(extra);
    args.push(dir.to_str().unwrap());
    env.ok(&args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn copy_cached(events: &[serde_json::Value]) -> bool {
    events
        .iter()
        .find(|e| e["event"] == "step")
        .expect("a step")["cached"]
        .as_bool()
        .unwrap()
}

/// Asserts a refused build: exit 125, every needle in stderr, no secret, nothing stored.
fn refused(env: &Env, dir: &Path, extra: &[&str], needles: &[&str]) -> String {
    let (before_blobs, before_images) = (blobs(env), images(env));
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    args.push(dir.to_str().unwrap());
    let out = env.gcr(&args);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(125),
        "stdout {} stderr {err}",
        stdout(&out)
    );
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
    assert!(!err.contains(&token()[4..]), "the token is shown: {err}");
    assert!(!err.contains("MIIEowIBAAKCAQEA"), "the key is shown: {err}");
    assert_eq!(blobs(env), before_blobs, "a refused build stored blobs");
    assert_eq!(
        images(env),
        before_images,
        "a refused build stored an image"
    );
    err
}

#[test]
fn a_planted_key_refuses_the_build_and_stores_nothing() {
    let env = Env::new();
    let dir = tempdir();
    context(
        dir.path(),
        &[
            (
                "app/conf/settings.ini",
                format!("[github]\nuser = me\ntoken = {}\n", token()),
            ),
            ("app/keys/id_rsa", pem()),
        ],
    );
    let err = refused(
        &env,
        dir.path(),
        &[],
        &[
            "app/conf/settings.ini:3",
            "rule github-pat",
            "app/keys/id_rsa:1",
            "rule private-key",
            "--allow-secret app/conf/settings.ini",
            ".gcrignore",
        ],
    );
    // One sentence per hit.
    assert_eq!(err.matches("looks like").count(), 2, "{err}");

    // Allowing one file is not enough; allowing both (a file and a directory) builds.
    refused(
        &env,
        dir.path(),
        &["--allow-secret", "app/conf/settings.ini"],
        &["app/keys/id_rsa:1"],
    );
    let ev = build_json(
        &env,
        dir.path(),
        &[
            "--allow-secret",
            "./app/conf/settings.ini",
            "--allow-secret",
            "app/keys/",
        ],
    );
    // The refused builds wrote no step-cache entry: this copy is built, not cached.
    assert!(!copy_cached(&ev), "the copy step was cached after refusals");
    assert!(images(&env).contains("sha256:"));

    // The allowance is for that build only: the files are still refused without it, even
    // though the file index now knows the context.
    refused(
        &env,
        dir.path(),
        &[],
        &["app/conf/settings.ini:3", "app/keys/id_rsa:1"],
    );
    // The whole context allowed.
    let ev = build_json(&env, dir.path(), &["--allow-secret", "."]);
    assert!(copy_cached(&ev));
}

#[test]
fn files_not_copied_or_ignored_are_not_scanned() {
    let env = Env::new();
    let dir = tempdir();
    context(
        dir.path(),
        &[
            // In the context but outside the copy source.
            ("secrets/id_rsa", pem()),
            (".env", format!("GITHUB_TOKEN={}\n", token())),
            // Inside the copy source but ignored.
            ("app/private/key.pem", pem()),
            (".gcrignore", "app/private/\n".into()),
        ],
    );
    build_json(&env, dir.path(), &[]);
    // Dropping the ignore rule makes the same file a hit.
    std::fs::write(dir.path().join(".gcrignore"), "").unwrap();
    refused(
        &env,
        dir.path(),
        &[],
        &["app/private/key.pem:1", "rule private-key"],
    );
}

#[test]
fn a_clean_rebuild_reads_no_file_and_a_new_secret_is_still_found() {
    let env = Env::new();
    let dir = tempdir();
    context(dir.path(), &[]);
    build_json(&env, dir.path(), &[]);
    let ev = build_json(&env, dir.path(), &["--no-cache"]);
    assert!(!copy_cached(&ev));
    let id = ev.iter().find(|e| e["event"] == "done").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let t: serde_json::Value =
        serde_json::from_str(&env.ok(&["inspect", "--transcript", &id])).unwrap();
    let t = if t.is_array() { t[0].clone() } else { t };
    assert_eq!(
        t["cache"]["files_read"].as_u64(),
        Some(0),
        "the rebuild read files again: {t}"
    );
    // A secret added to a known file (its metadata changes) is found.
    std::fs::write(
        dir.path().join("app/f7.txt"),
        format!("line one\nkey: {}\n", token()),
    )
    .unwrap();
    refused(&env, dir.path(), &[], &["app/f7.txt:2", "rule github-pat"]);
}

#[test]
fn a_bad_allow_path_is_a_usage_error() {
    let env = Env::new();
    let dir = tempdir();
    context(dir.path(), &[]);
    let out = env.gcr(&[
        "build",
        "--allow-secret",
        "../elsewhere",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--allow-secret ../elsewhere"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn rows_indexed_without_the_scan_are_not_trusted() {
    let env = Env::new();
    let dir = tempdir();
    context(
        dir.path(),
        &[("app/conf/token.txt", format!("t={}\n", token()))],
    );
    // The bench-only switch: the build neither scans nor refuses, and fills the index.
    let out = env
        .cmd(&["build", "-q", dir.path().to_str().unwrap()])
        .env("GCR_NO_CONTEXT_SCAN", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // The next (scanning) build does not take those rows for clean files.
    refused(
        &env,
        dir.path(),
        &[],
        &["app/conf/token.txt:1", "rule github-pat"],
    );
}
