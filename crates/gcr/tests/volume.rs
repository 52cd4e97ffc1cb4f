//! Volumes end to end (root): named volume data outlives its containers, bind mounts
//! honour `ro`, `--tmpfs` options, a volume in use cannot be removed, anonymous volumes of
//! `--rm` containers go with them.

mod common;

use common::*;

#[test]
fn named_volume_outlives_its_containers() {
    if !need_root("named_volume_outlives_its_containers") {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run",
        "--name",
        "writer",
        "--network",
        "none",
        "-v",
        "data:/app/data",
        IMAGE,
        "sh",
        "-c",
        "echo kept > /app/data/f",
    ]);
    env.ok(&["rm", "writer"]);
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "data:/app/data",
        IMAGE,
        "cat",
        "/app/data/f",
    ]);
    assert_eq!(out.trim(), "kept");
    let ls = env.ok(&["volume", "ls", "-q"]);
    assert!(ls.lines().any(|l| l == "data"), "{ls}");
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["volume", "inspect", "data"])).unwrap();
    let mp = v[0]["mountpoint"].as_str().unwrap().to_string();
    assert!(
        mp.starts_with(env.root.path().to_str().unwrap()) && mp.ends_with("volumes/data/_data"),
        "{mp}"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{mp}/f")).unwrap(),
        "kept\n"
    );
    env.ok(&["volume", "rm", "data"]);
    assert!(!std::path::Path::new(&mp).exists());
}

#[test]
fn bind_mount_read_only_refuses_writes() {
    if !need_root("bind_mount_read_only_refuses_writes") {
        return;
    }
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().to_str().unwrap();
    std::fs::write(dir.path().join("in"), "from-host").unwrap();
    let ro = format!("{host}:/mnt:ro");
    let out = env.gcr(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &ro,
        IMAGE,
        "sh",
        "-c",
        "cat /mnt/in; echo x > /mnt/new",
    ]);
    assert!(!out.status.success(), "write to a ro bind succeeded");
    assert!(stdout(&out).contains("from-host"));
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("new").exists());
    let rw = format!("{host}:/mnt");
    env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &rw,
        IMAGE,
        "sh",
        "-c",
        "echo y > /mnt/new",
    ]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("new")).unwrap(),
        "y\n"
    );
}

#[test]
fn tmpfs_mounts_with_options() {
    if !need_root("tmpfs_mounts_with_options") {
        return;
    }
    let env = Env::new();
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--tmpfs",
        "/scratch:size=1m",
        IMAGE,
        "sh",
        "-c",
        "grep ' /scratch ' /proc/mounts; echo ok > /scratch/f && cat /scratch/f",
    ]);
    assert!(
        out.contains("tmpfs /scratch tmpfs") && out.contains("size=1024k"),
        "{out}"
    );
    assert!(out.contains("nosuid") && out.contains("noexec"), "{out}");
    assert!(out.trim_end().ends_with("ok"));
}

#[test]
fn volume_in_use_cannot_be_removed_and_anonymous_ones_go_with_rm() {
    if !need_root("volume_in_use_cannot_be_removed_and_anonymous_ones_go_with_rm") {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run",
        "--name",
        "holder",
        "--network",
        "none",
        "-v",
        "vol1:/d",
        IMAGE,
        "true",
    ]);
    let out = env.gcr(&["volume", "rm", "vol1"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("in use by container(s) holder"),
        "{}",
        stderr(&out)
    );
    env.ok(&["rm", "holder"]);
    env.ok(&["volume", "rm", "vol1"]);
    // An anonymous volume (-v /path) lives as long as its --rm container.
    env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "/cache",
        IMAGE,
        "sh",
        "-c",
        "echo a > /cache/x",
    ]);
    assert_eq!(env.ok(&["volume", "ls", "-q"]).trim(), "");
    // Without --rm it stays until pruned after the container is gone.
    env.ok(&[
        "run",
        "--name",
        "anon",
        "--network",
        "none",
        "-v",
        "/cache",
        IMAGE,
        "true",
    ]);
    assert_eq!(env.ok(&["volume", "ls", "-q"]).lines().count(), 1);
    env.ok(&["volume", "prune", "-f"]);
    assert_eq!(
        env.ok(&["volume", "ls", "-q"]).lines().count(),
        1,
        "pruned a volume in use"
    );
    env.ok(&["rm", "anon"]);
    env.ok(&["volume", "prune", "-f"]);
    assert_eq!(env.ok(&["volume", "ls", "-q"]).trim(), "");
    // Bad specs are refused before anything is created.
    let out = env.gcr(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "data:relative",
        IMAGE,
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("absolute path"), "{}", stderr(&out));
}

#[test]
fn a_rm_container_whose_start_fails_leaves_nothing() {
    if !need_root("a_rm_container_whose_start_fails_leaves_nothing") {
        return;
    }
    let env = Env::new();
    // In the foreground (run --rm) and through a later start (create --rm, start: the
    // docker CLI's run --rm over the API), as dockerd's AutoRemove: the container and its
    // anonymous volume go.
    let o = env.gcr(&["run", "--rm", "-v", "/data", IMAGE, "nosuchcmd"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    env.ok(&[
        "create",
        "--rm",
        "-v",
        "/data",
        "--name",
        "rmfail",
        IMAGE,
        "nosuchcmd",
    ]);
    let o = env.gcr(&["start", "rmfail"]);
    assert!(!o.status.success(), "the start of a missing command failed");
    assert_eq!(env.ok(&["ps", "-aq"]).trim(), "", "no container left");
    assert_eq!(
        env.ok(&["volume", "ls", "-q"]).trim(),
        "",
        "no anonymous volume left"
    );
    // Without --rm the container stays, created, for the user to see.
    env.ok(&["create", "--name", "keepfail", IMAGE, "nosuchcmd"]);
    assert!(!env.gcr(&["start", "keepfail"]).status.success());
    assert_eq!(env.ok(&["ps", "-aq"]).lines().count(), 1);
}

#[test]
fn volumes_from_shares_another_containers_mounts() {
    if !need_root("volumes_from_shares_another_containers_mounts") {
        return;
    }
    let env = Env::new();
    let host = env.root.path().join("shared-bind");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("b"), "from-bind\n").unwrap();
    let bind = format!("{}:/bound:ro", host.display());
    // A data container with an anonymous volume, a named one and a read-only bind.
    env.ok(&[
        "run",
        "--name",
        "store",
        "--network",
        "none",
        "-v",
        "/anon",
        "-v",
        "vfnamed:/named",
        "-v",
        &bind,
        IMAGE,
        "sh",
        "-c",
        "echo a > /anon/f; echo n > /named/f",
    ]);
    let out = env.ok(&[
        "run", "--rm", "--network", "none", "--volumes-from", "store", IMAGE, "sh", "-c",
        "cat /anon/f /named/f /bound/b; echo w > /anon/g && echo wrote; echo x > /bound/x || echo bind-ro",
    ]);
    assert_eq!(out, "a\nn\nfrom-bind\nwrote\nbind-ro\n");
    // :ro makes every shared mount read-only; the consumer's own -v path stays its own.
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--volumes-from",
        "store:ro",
        "-v",
        "/named",
        IMAGE,
        "sh",
        "-c",
        "cat /anon/g; echo z > /anon/z || echo anon-ro; ls /named | wc -l",
    ]);
    assert_eq!(out, "w\nanon-ro\n0\n");
    // rm -v of a container that borrowed the anonymous volume leaves it to its owner.
    env.ok(&[
        "create",
        "--name",
        "borrower",
        "--volumes-from",
        "store",
        IMAGE,
        "true",
    ]);
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "borrower"])).unwrap();
    assert_eq!(
        v[0]["HostConfig"]["VolumesFrom"],
        serde_json::json!(["store"])
    );
    env.ok(&["rm", "-v", "borrower"]);
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--volumes-from",
        "store",
        IMAGE,
        "cat",
        "/anon/f",
    ]);
    assert_eq!(out, "a\n");
    let o = env.gcr(&["create", "--volumes-from", "nosuchctr", IMAGE, "true"]);
    assert!(
        !o.status.success() && stderr(&o).contains("no such container nosuchctr"),
        "{}",
        stderr(&o)
    );
    let o = env.gcr(&["create", "--volumes-from", "store:rx", IMAGE, "true"]);
    assert!(
        !o.status.success() && stderr(&o).contains("CONTAINER:ro"),
        "{}",
        stderr(&o)
    );
    env.ok(&["rm", "-v", "store"]);
    env.ok(&["volume", "rm", "vfnamed"]);
}
