//! `gcr cp` as `docker cp` behaves: both directions, running and stopped containers,
//! `DEST` an existing directory or a new name, `SRC/.` for contents, `-` for a tar stream,
//! owners only with `-a`, symlinks as links unless `-L`; a directory tree makes the round
//! trip byte for byte; a symlink in the container never leads the copy onto the host.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{need_root, stderr, Env, IMAGE};

fn tree(root: &Path) {
    std::fs::create_dir_all(root.join("a/b/c")).unwrap();
    std::fs::write(root.join("top.txt"), "top\n").unwrap();
    std::fs::write(
        root.join("a/bin.dat"),
        (0..=255u8).cycle().take(70_000).collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::write(root.join("a/b/c/deep"), "deep\n").unwrap();
    std::fs::set_permissions(
        root.join("a/b/c/deep"),
        std::fs::Permissions::from_mode(0o751),
    )
    .unwrap();
    std::os::unix::fs::symlink("b/c/deep", root.join("a/link")).unwrap();
    std::fs::write(root.join("empty"), "").unwrap();
}

fn same_tree(a: &Path, b: &Path) {
    let out = Command::new("diff")
        .args(["-r", "--no-dereference"])
        .arg(a)
        .arg(b)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "trees differ: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    for rel in ["a/b/c/deep", "top.txt", "a/bin.dat"] {
        let (x, y) = (
            std::fs::metadata(a.join(rel)).unwrap(),
            std::fs::metadata(b.join(rel)).unwrap(),
        );
        assert_eq!(x.mode(), y.mode(), "{rel}");
        assert_eq!(x.mtime(), y.mtime(), "{rel}");
    }
}

#[test]
fn copies_in_and_out_of_running_and_stopped_containers() {
    if !need_root("copies_in_and_out_of_running_and_stopped_containers") {
        return;
    }
    let env = Env::new();
    let host = tempfile::tempdir().unwrap();
    let src = host.path().join("src");
    tree(&src);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "cpr",
        IMAGE,
        "sh",
        "-c",
        "echo hello > /greeting; chown 1000:1000 /greeting; ln -s /greeting /glink; \
         mkdir -p /tmp/inner; ln -s ../../../../../../tmp/inner /esc; sleep 60",
    ]);
    assert!(common::eventually(5, || env
        .gcr(&["exec", "cpr", "test", "-e", "/esc"])
        .status
        .success()));

    // In: a directory to a new name, then round trip out to a new name.
    env.ok(&["cp", src.to_str().unwrap(), "cpr:/copied"]);
    let back = host.path().join("back");
    env.ok(&["cp", "cpr:/copied", back.to_str().unwrap()]);
    same_tree(&src, &back);
    // Owned by root in the container without -a.
    let owner = env.ok(&["exec", "cpr", "stat", "-c", "%u", "/copied/top.txt"]);
    assert_eq!(owner.trim(), "0");

    // Into an existing directory: it goes inside; SRC/. copies the contents.
    env.ok(&["exec", "cpr", "mkdir", "/dir"]);
    env.ok(&["cp", src.to_str().unwrap(), "cpr:/dir"]);
    env.ok(&["exec", "cpr", "test", "-f", "/dir/src/a/b/c/deep"]);
    env.ok(&["cp", &format!("{}/.", src.display()), "cpr:/dir"]);
    env.ok(&["exec", "cpr", "test", "-f", "/dir/top.txt"]);

    // Out: a file into a directory, owners kept only with -a, a link as a link unless -L.
    let out = host.path().join("out");
    std::fs::create_dir(&out).unwrap();
    env.ok(&["cp", "cpr:/greeting", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out.join("greeting")).unwrap(),
        "hello\n"
    );
    assert_eq!(std::fs::metadata(out.join("greeting")).unwrap().uid(), 0);
    env.ok(&[
        "cp",
        "-a",
        "cpr:/greeting",
        out.join("kept").to_str().unwrap(),
    ]);
    assert_eq!(std::fs::metadata(out.join("kept")).unwrap().uid(), 1000);
    env.ok(&["cp", "cpr:/glink", out.to_str().unwrap()]);
    assert!(std::fs::symlink_metadata(out.join("glink"))
        .unwrap()
        .file_type()
        .is_symlink());
    env.ok(&[
        "cp",
        "-L",
        "cpr:/glink",
        out.join("followed").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(out.join("followed")).unwrap(),
        "hello\n"
    );

    // A tar stream out (-) and in (-).
    let t = env.gcr(&["cp", "cpr:/copied/a", "-"]);
    assert!(t.status.success(), "{}", stderr(&t));
    let listing = {
        let mut c = Command::new("tar")
            .arg("-t")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(c.stdin.as_mut().unwrap(), &t.stdout).unwrap();
        drop(c.stdin.take());
        String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap()
    };
    assert!(
        listing.contains("a/b/c/deep") && listing.contains("a/link"),
        "{listing}"
    );
    let mut c = env
        .cmd(&["cp", "-", "cpr:/tmp"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(c.stdin.as_mut().unwrap(), &t.stdout).unwrap();
    drop(c.stdin.take());
    assert!(c.wait().unwrap().success());
    env.ok(&["exec", "cpr", "test", "-f", "/tmp/a/b/c/deep"]);

    // A symlink in the container pointing up and out stays inside it.
    let marker = format!("gcr-cp-escape-{}", std::process::id());
    std::fs::write(host.path().join(&marker), "x").unwrap();
    env.ok(&[
        "cp",
        host.path().join(&marker).to_str().unwrap(),
        "cpr:/esc/",
    ]);
    assert!(
        !Path::new("/tmp/inner").join(&marker).exists(),
        "the copy left the container"
    );
    env.ok(&["exec", "cpr", "test", "-f", &format!("/tmp/inner/{marker}")]);

    // Errors name what is missing; nothing is written.
    let e = env.gcr(&["cp", "cpr:/nope", out.to_str().unwrap()]);
    assert!(!e.status.success() && stderr(&e).contains("could not find the file /nope"));
    let e = env.gcr(&["cp", src.to_str().unwrap(), "cpr:/no/such/dir/x"]);
    assert!(
        !e.status.success() && stderr(&e).contains("does not exist"),
        "{}",
        stderr(&e)
    );
    let e = env.gcr(&["cp", "/nonexistent-gcr-src", "cpr:/tmp"]);
    assert!(!e.status.success() && stderr(&e).contains("/nonexistent-gcr-src"));
    let e = env.gcr(&["cp", "a", "b"]);
    assert!(!e.status.success() && stderr(&e).contains("CONTAINER:PATH"));

    // A stopped container: in and out through its layers, seen at its next start.
    env.ok(&["rm", "-f", "cpr"]);
    env.ok(&[
        "create",
        "--name",
        "cps",
        IMAGE,
        "cat",
        "/added/top.txt",
        "/etc/hostname",
    ]);
    env.ok(&["cp", src.to_str().unwrap(), "cps:/added"]);
    let back2 = host.path().join("back2");
    env.ok(&["cp", "cps:/added", back2.to_str().unwrap()]);
    same_tree(&src, &back2);
    env.ok(&[
        "cp",
        "cps:/etc/passwd",
        out.join("passwd").to_str().unwrap(),
    ]);
    assert!(std::fs::read_to_string(out.join("passwd"))
        .unwrap()
        .contains("root:"));
    env.ok(&["start", "cps"]);
    env.ok(&["wait", "cps"]);
    assert!(env.ok(&["logs", "cps"]).starts_with("top\n"));
    env.ok(&["rm", "cps"]);
}
