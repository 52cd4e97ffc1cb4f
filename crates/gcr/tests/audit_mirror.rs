//! `gcr audit mirror --git DIR` / `gcr audit verify --git DIR`: the ledger appended to a
//! git repository (one commit per run, fast-forward only), read back by `git` itself.

mod common;
use common::*;
use std::process::Command;

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn mirror_appends_only_new_entries_and_verify_catches_a_changed_ledger() {
    let env = Env::new();
    let repo = env.root.path().join("mirror.git");
    let r = repo.to_str().unwrap();
    env.ok(&["tag", IMAGE, "m/one:1"]);
    let first = env.ok(&["audit", "mirror", "--git", r]);
    assert!(first.starts_with("appended "), "{first}");
    env.ok(&["tag", IMAGE, "m/two:1"]);
    let second = env.ok(&["audit", "mirror", "--git", r]);
    assert!(second.starts_with("appended 1 entries"), "{second}");
    assert!(env
        .ok(&["audit", "mirror", "--git", r])
        .contains("up to date"));
    // git reads it: two commits on refs/gcr/audit, with the trailers.
    let log = git(&repo, &["log", "--format=%s%n%b", "refs/gcr/audit"]);
    assert_eq!(log.matches("gcr audit: entries").count(), 2, "{log}");
    let size: u64 = env
        .ok(&["audit", "log", "--format", "json"])
        .lines()
        .count() as u64;
    assert!(log.contains(&format!("Gcr-Index: {}", size - 1)), "{log}");
    let body = git(&repo, &["show", "refs/gcr/audit:entries.jsonl"]);
    assert!(body.contains("\"name\":\"docker.io/m/two:1\""), "{body}");
    assert!(env
        .ok(&["audit", "verify", "--git", r])
        .contains(&format!("{size} entries match")));
    // The ledger changed under the mirror: verify names the entry; mirror refuses.
    let db = env.root.path().join("gcr.db");
    let out = Command::new("sqlite3")
        .arg(&db)
        .arg("UPDATE events SET name = 'forged' WHERE seq = (SELECT MAX(seq) FROM events)")
        .output()
        .expect("sqlite3 runs");
    assert!(out.status.success());
    let v = env.gcr(&["audit", "verify", "--git", r]);
    assert!(!v.status.success());
    assert!(
        stderr(&v).contains(&format!("at entry {}", size - 1)),
        "{}",
        stderr(&v)
    );
}

#[test]
fn a_mirror_of_another_ledger_is_not_fast_forwarded() {
    let a = Env::new();
    let b = Env::new();
    let repo = a.root.path().join("shared.git");
    let r = repo.to_str().unwrap();
    a.ok(&["tag", IMAGE, "a/x:1"]);
    a.ok(&["audit", "mirror", "--git", r]);
    b.ok(&["tag", IMAGE, "b/y:1"]);
    b.ok(&["tag", IMAGE, "b/z:1"]);
    let out = b.gcr(&["audit", "mirror", "--git", r]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("diverged"), "{}", stderr(&out));
    // Nothing was written: the ref still points at a's commit.
    assert_eq!(
        git(&repo, &["rev-list", "--count", "refs/gcr/audit"]).trim(),
        "1"
    );
}
