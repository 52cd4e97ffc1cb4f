//! The foreground `run` start path: the run directory's image cache (a start from it is
//! held until the store confirms the image) and the shared layer of /etc mount targets.

mod common;

use common::*;
use std::process::Command;

/// A second image: the test busybox plus /marker containing "other".
fn import_other(env: &Env, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("other.tar");
    std::fs::copy(busybox_tar(), &tar).unwrap();
    std::fs::write(dir.path().join("marker"), "other\n").unwrap();
    let ok = Command::new("tar")
        .arg("-rf")
        .arg(&tar)
        .arg("-C")
        .arg(dir.path())
        .arg("./marker")
        .status()
        .unwrap()
        .success();
    assert!(ok);
    env.ok(&["import", tar.to_str().unwrap(), name]);
}

fn cache_entries(env: &Env) -> usize {
    std::fs::read_dir(env.run_dir.join("images")).map_or(0, |d| d.count())
}

#[test]
fn image_cache_follows_retag_and_removal() {
    if !need_root("image_cache_follows_retag_and_removal") {
        return;
    }
    let env = Env::new();
    import_other(&env, "test/other:1");
    let run = |cmd: &[&str]| {
        let mut a = vec!["run", "--rm", "--network", "none", IMAGE];
        a.extend_from_slice(cmd);
        env.gcr(&a)
    };
    // The first run records the image; the second starts from the cache.
    let out = run(&["cat", "/etc/passwd"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(cache_entries(&env), 1);
    let out = run(&["sh", "-c", "cat /marker 2>/dev/null || echo none"]);
    assert_eq!(stdout(&out).trim(), "none");
    // The name now means another image: the cached start is discarded, the new one runs.
    env.ok(&["tag", "test/other:1", IMAGE]);
    for _ in 0..2 {
        let out = run(&["cat", "/marker"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out).trim(), "other");
    }
    // Exit codes and errors are the container's own on the cached path too.
    assert_eq!(run(&["sh", "-c", "exit 7"]).status.code(), Some(7));
    assert_eq!(run(&["/nonexistent"]).status.code(), Some(127));
    // The name is gone: the proper error, not a start from the cache.
    env.ok(&["rmi", IMAGE]);
    let out = run(&["true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("unable to find image"),
        "{}",
        stderr(&out)
    );
    // Nothing of the discarded starts is left.
    assert_eq!(env.ok(&["ps", "-aq"]).trim(), "");
    let containers = env.root.path().join("containers");
    assert!(
        eventually(10, || std::fs::read_dir(&containers).unwrap().count() == 0),
        "container directories left behind"
    );
}

#[test]
fn cached_start_refuses_a_taken_name() {
    if !need_root("cached_start_refuses_a_taken_name") {
        return;
    }
    let env = Env::new();
    env.ok(&["run", "--rm", "--network", "none", IMAGE, "true"]);
    assert_eq!(cache_entries(&env), 1);
    env.ok(&["run", "-d", "--name", "taken", IMAGE, "sleep", "30"]);
    let out = env.gcr(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--name",
        "taken",
        IMAGE,
        "echo",
        "ran",
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("already in use"), "{}", stderr(&out));
    assert!(
        !stdout(&out).contains("ran"),
        "the command must not have run"
    );
    env.ok(&["rm", "-f", "taken"]);
}

#[test]
fn network_files_need_no_copy_up() {
    if !need_root("network_files_need_no_copy_up") {
        return;
    }
    let env = Env::new();
    let id = env.ok(&["run", "-d", "--network", "none", IMAGE, "sleep", "30"]);
    let id = id.trim();
    let out = env.ok(&[
        "exec",
        id,
        "sh",
        "-c",
        "cat /etc/hostname; grep -c localhost /etc/hosts",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], &id[..12]);
    assert!(lines[1].parse::<u32>().unwrap() >= 1);
    // The image has no /etc/hosts or /etc/hostname, yet the upper dir stays empty.
    let upper = env.root.path().join("containers").join(id).join("upper");
    let entries: Vec<_> = std::fs::read_dir(&upper).unwrap().collect();
    assert!(entries.is_empty(), "upper has {entries:?}");
    // The image's own files stay visible and writable.
    env.ok(&[
        "exec",
        id,
        "sh",
        "-c",
        "grep -q root /etc/passwd && echo x > /etc/new",
    ]);
    env.ok(&["rm", "-f", id]);
}
