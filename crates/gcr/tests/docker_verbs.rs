//! Docker's everyday verbs (issue 19, item 4): `rename` (the name a user network resolves
//! follows), `ps --no-trunc/-l/-n`, `images REPO[:TAG]`, `logs -n/--since/--until`,
//! `rm -v`, `container prune`, `image prune [-a]`, `system prune`, `export`, and the
//! `container …`/`image …` groups naming the same verbs.

mod common;

use std::collections::BTreeSet;

use common::{need_root, stderr, stdout, Env, IMAGE};

/// What a following command (`events`, `stats`) printed until `enough` says so (at most
/// 10 s); the command is then killed.
fn follow(child: &mut std::process::Child, enough: fn(&str) -> bool) -> String {
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut got = String::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut out, &mut buf) {
            if n == 0 {
                break;
            }
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
            if enough(&got) {
                break;
            }
        }
        let _ = tx.send(got);
    });
    let got = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    got
}

/// A tarball holding one file, `x`, with `text`.
fn one_file_tar(text: &str, out: &std::path::Path) {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("x"), text).unwrap();
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(d.path())
        .arg("-cf")
        .arg(out)
        .arg("x")
        .status()
        .unwrap();
    assert!(st.success());
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

#[test]
fn rename_ps_flags_logs_window_and_groups() {
    if !need_root("rename_ps_flags_logs_window_and_groups") {
        return;
    }
    let env = Env::new();
    env.ok(&["network", "create", "--subnet", "10.233.7.0/24", "vnet"]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "old",
        "--network",
        "vnet",
        IMAGE,
        "sleep",
        "60",
    ]);
    env.ok(&["rename", "old", "new1"]);
    let names = env.ok(&["ps", "--format", "json"]);
    assert!(
        names.contains("\"new1\"") && !names.contains("\"old\""),
        "{names}"
    );
    let hosts = env.ok(&[
        "run",
        "--rm",
        "--network",
        "vnet",
        IMAGE,
        "cat",
        "/etc/hosts",
    ]);
    assert!(
        hosts.contains("new1"),
        "the network resolves the new name: {hosts}"
    );
    let events = env.ok(&[
        "events", "--since", "0", "--until", "0s", "--format", "json",
    ]);
    assert!(events.contains("rename from old"), "{events}");
    // Taken and invalid names are refused and change nothing.
    env.ok(&["create", "--name", "other", IMAGE, "true"]);
    let out = env.gcr(&["rename", "new1", "other"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already in use"), "{}", stderr(&out));
    let out = env.gcr(&["rename", "new1", "-bad"]);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert_eq!(env.ok(&["ps", "-q"]).lines().count(), 1);

    // ps: -l is the newest container whatever its state, -n N the N newest, --no-trunc
    // the full id and command.
    let latest = env.ok(&["ps", "-l", "--format", "json"]);
    assert_eq!(latest.lines().count(), 1);
    assert!(latest.contains("\"other\""), "{latest}");
    assert_eq!(env.ok(&["ps", "-n", "2", "-q"]).lines().count(), 2);
    let full = env.ok(&["ps", "--no-trunc", "-q"]);
    assert_eq!(full.trim().len(), 64, "{full}");
    env.ok(&[
        "run",
        "-d",
        "--name",
        "longcmd",
        IMAGE,
        "sh",
        "-c",
        "echo one; echo two; echo three; sleep 60 # a command longer than twenty characters",
    ]);
    let table = env.ok(&["ps", "--no-trunc"]);
    assert!(table.contains("longer than twenty characters"), "{table}");

    // logs: -n, --since in the future shows nothing, --until in the past nothing.
    assert!(common::eventually(5, || env
        .ok(&["logs", "longcmd"])
        .contains("three")));
    assert_eq!(env.ok(&["logs", "-n", "1", "longcmd"]), "three\n");
    assert_eq!(env.ok(&["logs", "--since", "4000000000", "longcmd"]), "");
    assert_eq!(env.ok(&["logs", "--until", "1h", "longcmd"]), "");
    assert_eq!(
        env.ok(&["logs", "--since", "1h", "longcmd"])
            .lines()
            .count(),
        3
    );
    let out = env.gcr(&["logs", "--since", "yesterday-ish", "longcmd"]);
    assert!(!out.status.success() && stderr(&out).contains("--since"));

    // The groups name the same verbs.
    assert_eq!(
        lines(&env.ok(&["container", "ls", "-a", "-q"])),
        lines(&env.ok(&["ps", "-a", "-q"]))
    );
    assert_eq!(env.ok(&["image", "ls", "-q"]), env.ok(&["images", "-q"]));
    let doc = env.ok(&["container", "inspect", "new1"]);
    assert!(doc.contains("new1"), "{doc}");
    assert!(!env.gcr(&["image", "inspect", "new1"]).status.success());
    let help = env.ok(&["container"]);
    assert!(help.contains("prune") && help.contains("gcr ps"), "{help}");
    let out = env.gcr(&["container", "frob"]);
    assert!(
        stderr(&out).contains("not a gcr container command"),
        "{}",
        stderr(&out)
    );
    env.ok(&["container", "rm", "-f", "longcmd", "new1"]);
    env.ok(&["network", "rm", "vnet"]);
}

#[test]
fn prune_export_images_filter_and_rm_v() {
    if !need_root("prune_export_images_filter_and_rm_v") {
        return;
    }
    let env = Env::new();
    // images REPO[:TAG].
    env.ok(&["tag", IMAGE, "test/other:7"]);
    let only = env.ok(&["images", "test/other"]);
    assert!(
        only.contains("test/other") && !only.contains("test/busybox"),
        "{only}"
    );
    assert_eq!(env.ok(&["images", "-q", "test/other:8"]), "");
    assert_eq!(
        env.ok(&["images", "-q", "docker.io/test/other:7"])
            .lines()
            .count(),
        1
    );

    // export: the image's files with the container's changes on top.
    env.ok(&[
        "run",
        "--name",
        "ex",
        IMAGE,
        "sh",
        "-c",
        "echo hi > /made && rm /etc/group && mkdir -p /d/e && ln -s /made /d/link",
    ]);
    let tar = env.root.path().join("ex.tar");
    env.ok(&["export", "-o", tar.to_str().unwrap(), "ex"]);
    let listing = std::process::Command::new("tar")
        .args(["-tvf", tar.to_str().unwrap()])
        .output()
        .unwrap();
    let listing = stdout(&listing);
    let names: BTreeSet<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    for want in ["made", "bin/busybox", "etc/passwd", "d/e/", "d/link"] {
        assert!(names.contains(want), "{want} missing: {listing}");
    }
    assert!(!names.contains("etc/group"), "a deleted file was exported");
    assert!(listing.contains("d/link -> /made"), "{listing}");
    let out = env.gcr(&["export", "-o", "/nonexistent/dir/x.tar", "ex"]);
    assert!(!out.status.success() && stderr(&out).contains("/nonexistent/dir/x.tar"));
    // Streamed to a pipe: the same bytes.
    let piped = env.gcr(&["export", "ex"]);
    assert_eq!(piped.stdout, std::fs::read(&tar).unwrap());

    // rm -v: the anonymous volume goes with its container; without -v it stays.
    env.ok(&["create", "--name", "v1", "-v", "/data", IMAGE, "true"]);
    env.ok(&["create", "--name", "v2", "-v", "/data", IMAGE, "true"]);
    let vols = || env.ok(&["volume", "ls", "-q"]).lines().count();
    assert_eq!(vols(), 2);
    env.ok(&["rm", "-v", "v1"]);
    assert_eq!(vols(), 1);
    env.ok(&["rm", "v2"]);
    assert_eq!(vols(), 1);

    // container prune: stopped ones go, running ones stay.
    env.ok(&["run", "-d", "--name", "up", IMAGE, "sleep", "60"]);
    env.ok(&["create", "--name", "idle", IMAGE, "true"]);
    let out = env.ok(&["container", "prune", "-f"]);
    assert!(out.contains("Deleted Containers:") && out.contains("Total reclaimed space"));
    let left = env.ok(&["ps", "-a", "--format", "json"]);
    assert!(left.contains("\"up\"") && !left.contains("\"ex\"") && !left.contains("\"idle\""));

    // image prune: dangling only; -a every image no container uses.
    // A one-file image imported without a name is dangling.
    let small = env.root.path().join("small.tar");
    one_file_tar("dangling\n", &small);
    env.ok(&["import", small.to_str().unwrap()]);
    let dangling = || {
        env.ok(&["images"])
            .lines()
            .filter(|l| l.contains("<none>"))
            .count()
    };
    assert_eq!(dangling(), 1);
    let out = env.ok(&["image", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(dangling(), 0);
    one_file_tar("unused\n", &small);
    env.ok(&["import", small.to_str().unwrap(), "test/unused:1"]);
    env.ok(&["image", "prune", "-f"]);
    assert!(
        env.ok(&["images"]).contains("test/unused"),
        "a tagged image is not dangling"
    );
    env.ok(&["image", "prune", "-a", "-f"]);
    let images = env.ok(&["images"]);
    assert!(images.contains("test/busybox"), "in use by 'up': {images}");
    assert!(!images.contains("test/unused"), "{images}");

    // system df -v: the three tables, the image with its container count.
    let v = env.ok(&["system", "df", "-v"]);
    assert!(
        v.contains("Images space usage") && v.contains("Containers space usage"),
        "{v}"
    );
    let img_line = v
        .lines()
        .find(|l| l.starts_with("test/busybox"))
        .unwrap_or("");
    assert!(
        img_line.trim_end().ends_with('1'),
        "one container uses it: {v}"
    );
    // system prune: stopped containers, unused user networks; volumes only when asked.
    env.ok(&["network", "create", "--subnet", "10.233.8.0/24", "idle-net"]);
    env.ok(&["create", "--name", "gone", "-v", "/x", IMAGE, "true"]);
    env.ok(&["kill", "up"]);
    env.ok(&["wait", "up"]);
    let out = env.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Deleted network: idle-net"), "{out}");
    assert_eq!(env.ok(&["ps", "-aq"]), "");
    assert!(vols() >= 1, "volumes stay without --volumes");
    env.ok(&["system", "prune", "-f", "--volumes"]);
    assert_eq!(vols(), 0);
}

#[test]
fn commit_makes_an_image_of_a_containers_changes() {
    if !need_root("commit_makes_an_image_of_a_containers_changes") {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run",
        "--name",
        "cm",
        "-e",
        "MODE=prod",
        "-w",
        "/srv",
        IMAGE,
        "sh",
        "-c",
        "echo v1 > /srv/app && touch -d @1000000000 /srv/app && rm /etc/group",
    ]);
    let images = env.ok(&["images", "-q"]).lines().count();
    // A change that is not a config instruction is refused; nothing is made.
    let out = env.gcr(&["commit", "-c", "RUN rm -rf /", "cm", "committed:0"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("RUN does not change the config"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.ok(&["images", "-q"]).lines().count(), images);

    let id = env.ok(&[
        "commit",
        "-m",
        "first commit",
        "-a",
        "Jane <jane@example.com>",
        "-c",
        "CMD [\"cat\", \"/srv/app\"]",
        "-c",
        "EXPOSE 8080",
        "cm",
        "committed:1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(env.ok(&["run", "--rm", "committed:1"]), "v1\n");
    let stat = env.ok(&["run", "--rm", "committed:1", "stat", "-c", "%Y", "/srv/app"]);
    assert_eq!(stat.trim(), "1000000000", "the file's mtime is kept");
    let gone = env.gcr(&["run", "--rm", "committed:1", "test", "-e", "/etc/group"]);
    assert!(!gone.status.success(), "a deleted file stays deleted");
    let doc: serde_json::Value =
        serde_json::from_str(&env.ok(&["inspect", "--type", "image", "committed:1"])).unwrap();
    let doc = &doc[0];
    assert_eq!(doc["Author"], "Jane <jane@example.com>");
    let cfg = &doc["Config"];
    assert!(cfg["Env"].to_string().contains("MODE=prod"), "{cfg}");
    assert_eq!(cfg["WorkingDir"], "/srv");
    assert_eq!(cfg["Cmd"], serde_json::json!(["cat", "/srv/app"]));
    assert!(cfg["ExposedPorts"].get("8080/tcp").is_some(), "{cfg}");
    let history = env.ok(&["history", "--format", "json", "committed:1"]);
    assert!(history.contains("first commit"), "{history}");
    // The ledger says what made the image: a commit, not a build.
    let events = env.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        "0s",
        "--filter",
        "type=image",
        "--format",
        "{{.Action}} {{.Actor.ID}}",
    ]);
    assert!(
        events.contains(&format!("commit {}", id.trim())),
        "{events}"
    );
    assert!(!events.contains("build"), "{events}");

    // A running container is committed in place and keeps running.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "live",
        IMAGE,
        "sh",
        "-c",
        "echo up > /state; sleep 60",
    ]);
    assert!(common::eventually(5, || env
        .gcr(&["exec", "live", "test", "-e", "/state"])
        .status
        .success()));
    env.ok(&["container", "commit", "live", "committed:2"]);
    assert_eq!(
        env.ok(&["run", "--rm", "committed:2", "cat", "/state"]),
        "up\n"
    );
    let state = env.ok(&["inspect", "--type", "container", "live"]);
    assert!(state.contains("\"running\""), "{state}");
    env.ok(&["rm", "-f", "live", "cm"]);
}

#[test]
fn import_keeps_the_tarballs_mtimes() {
    if !need_root("import_keeps_the_tarballs_mtimes") {
        return;
    }
    let env = Env::new();
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::copy(common::busybox_tar(), d.path().join("bb.tar")).unwrap();
    // busybox plus one file from 2009, in one tarball.
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd {r} && tar -xf ../bb.tar && echo old > old.txt && touch -d @1234567890 old.txt && tar -cf ../img.tar .",
            r = root.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let tar = d.path().join("img.tar");
    env.ok(&["import", tar.to_str().unwrap(), "test/mtimes:1"]);
    let m = env.ok(&[
        "run",
        "--rm",
        "test/mtimes:1",
        "stat",
        "-c",
        "%Y",
        "/old.txt",
    ]);
    assert_eq!(m.trim(), "1234567890");
    // The same tarball gives the same image.
    let a = env.ok(&["images", "-q", "--no-trunc", "test/mtimes:1"]);
    env.ok(&["import", tar.to_str().unwrap(), "test/mtimes:2"]);
    assert_eq!(a, env.ok(&["images", "-q", "--no-trunc", "test/mtimes:2"]));
    // --change and -m: the config and history say so; a bad change makes nothing.
    let before = env.ok(&["images", "-q"]).lines().count();
    let out = env.gcr(&[
        "import",
        "-c",
        "RUN true",
        tar.to_str().unwrap(),
        "test/bad:1",
    ]);
    assert!(
        !out.status.success() && stderr(&out).contains("RUN"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.ok(&["images", "-q"]).lines().count(), before);
    env.ok(&[
        "import",
        "-c",
        "CMD [\"cat\", \"/old.txt\"]",
        "-c",
        "ENV MODE=imported",
        "-m",
        "from a tarball",
        tar.to_str().unwrap(),
        "test/changed:1",
    ]);
    assert_eq!(env.ok(&["run", "--rm", "test/changed:1"]), "old\n");
    let env_line = env.ok(&["inspect", "-f", "{{json .Config.Env}}", "test/changed:1"]);
    assert!(env_line.contains("MODE=imported"), "{env_line}");
    let h = env.ok(&["history", "--format", "json", "test/changed:1"]);
    assert!(h.contains("from a tarball"), "{h}");
    // An import is as old as its newest file (the directory written above: today), with
    // or without changes.
    let created = env.ok(&["inspect", "-f", "{{.Created}}", "test/mtimes:1"]);
    assert!(!created.starts_with("1970"), "{created}");
    assert_eq!(
        env.ok(&["inspect", "-f", "{{.Created}}", "test/changed:1"]),
        created
    );
    assert_eq!(
        env.ok(&["images"])
            .lines()
            .filter(|l| l.contains("<none>"))
            .count(),
        0,
        "the plain import step is not left behind"
    );
}

#[test]
fn go_templates_format_ps_images_and_inspect() {
    if !need_root("go_templates_format_ps_images_and_inspect") {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run", "-d", "--name", "tpl1", "-l", "tier=web", IMAGE, "sleep", "60",
    ]);
    env.ok(&["create", "--name", "tpl2", IMAGE, "true"]);
    assert_eq!(env.ok(&["ps", "--format", "{{.Names}}"]), "tpl1\n");
    assert_eq!(
        env.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]),
        "tpl2 created\ntpl1 running\n"
    );
    let table = env.ok(&["ps", "-a", "--format", "table {{.Names}}\\t{{.Status}}"]);
    let mut lines = table.lines();
    let head = lines.next().unwrap_or("");
    assert!(
        head.starts_with("NAMES") && head.contains("STATUS"),
        "{table}"
    );
    assert_eq!(lines.count(), 2, "{table}");
    assert_eq!(
        env.ok(&["inspect", "-f", "{{.State.Status}}", "tpl1"]),
        "running\n"
    );
    assert_eq!(
        env.ok(&[
            "inspect",
            "-f",
            "{{.Name}} {{.State.Running}}",
            "tpl1",
            "tpl2"
        ])
        .lines()
        .count(),
        2
    );
    let cfg = env.ok(&["inspect", "-f", "{{json .Config.Labels}}", "tpl1"]);
    assert!(cfg.contains("\"tier\":\"web\""), "{cfg}");
    assert_eq!(
        env.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "test/busybox:1\n"
    );
    // Networks and volumes take templates with Docker's field names too.
    env.ok(&["volume", "create", "tplvol"]);
    assert_eq!(
        env.ok(&["volume", "ls", "--format", "{{.Name}}"]),
        "tplvol\n"
    );
    let mp = env.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "tplvol"]);
    assert!(
        mp.trim().ends_with("_data") || mp.contains("tplvol"),
        "{mp}"
    );
    let nets = env.ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(nets.lines().any(|l| l == "host host"), "{nets}");
    let nt = env.ok(&["network", "ls", "--format", "table {{.Name}}\t{{.Driver}}"]);
    assert!(nt.starts_with("NAME"), "{nt}");
    let bad = env.gcr(&["ps", "--format", "{{.Names"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("invalid --format template"),
        "{}",
        stderr(&bad)
    );
    env.ok(&["rm", "-f", "tpl1", "tpl2"]);
}

#[test]
fn events_follow_until_and_filter() {
    if !need_root("events_follow_until_and_filter") {
        return;
    }
    let env = Env::new();
    env.ok(&["create", "--name", "ev-old", IMAGE, "true"]);
    // Following: new events only (not ev-old's), as they happen, filtered.
    let mut child = env
        .cmd(&["events", "--format", "json", "--filter", "container=ev-new"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    env.ok(&["create", "--name", "ev-new", IMAGE, "true"]);
    env.ok(&["rm", "ev-new"]);
    let got = follow(&mut child, |got| got.lines().count() >= 2);
    assert!(got.contains("ev-new") && !got.contains("ev-old"), "{got}");
    assert_eq!(
        got.lines().count(),
        2,
        "create and remove of ev-new only: {got}"
    );
    // --until ends the listing; --filter type and event.
    let past = env.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        "0s",
        "--filter",
        "event=create",
        "--filter",
        "type=container",
    ]);
    // (The default bridge's creation, at the first create, is an event of its own.)
    assert_eq!(past.lines().count(), 2, "{past}");
    let none = env.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        "0s",
        "--filter",
        "type=image",
    ]);
    assert!(!none.contains("ev-"), "{none}");
    let bad = env.gcr(&["events", "--filter", "colour=red", "--until", "0s"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn ps_and_images_filters_and_relative_bind_sources() {
    if !need_root("ps_and_images_filters_and_relative_bind_sources") {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run", "-d", "--name", "f-web", "-l", "tier=web", IMAGE, "sleep", "60",
    ]);
    assert_eq!(
        env.gcr(&["run", "--name", "f-failed", IMAGE, "sh", "-c", "exit 3"])
            .status
            .code(),
        Some(3)
    );
    env.ok(&["create", "--name", "f-new", "-l", "tier=db", IMAGE, "true"]);
    let names = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = env
            .ok(&[&["ps", "--format", "{{.Names}}"][..], args].concat())
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&["--filter", "status=exited"]), ["f-failed"]);
    assert_eq!(names(&["--filter", "exited=3"]), ["f-failed"]);
    assert_eq!(names(&["-a", "--filter", "label=tier"]), ["f-new", "f-web"]);
    assert_eq!(names(&["-a", "--filter", "label=tier=db"]), ["f-new"]);
    assert_eq!(names(&["-a", "--filter", "name=f-w"]), ["f-web"]);
    assert_eq!(
        names(&[
            "-a",
            "--filter",
            "ancestor=test/busybox:1",
            "--filter",
            "status=created"
        ]),
        ["f-new"]
    );
    assert_eq!(
        names(&["--filter", "status=created", "--filter", "status=running"]),
        ["f-new", "f-web"]
    );
    let bad = env.gcr(&["ps", "--filter", "colour=red"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("status, name"), "{}", stderr(&bad));
    // images: reference globs and dangling.
    env.ok(&["tag", IMAGE, "other/thing:2"]);
    let refs = env.ok(&[
        "images",
        "--format",
        "{{.Repository}}",
        "--filter",
        "reference=test/*",
    ]);
    assert_eq!(refs, "test/busybox\n");
    assert_eq!(env.ok(&["images", "-q", "--filter", "dangling=true"]), "");

    // -v ./rel:/x is the current directory's ./rel.
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("rel")).unwrap();
    std::fs::write(d.path().join("rel/f"), "relative\n").unwrap();
    let out = env
        .cmd(&["run", "--rm", "-v", "./rel:/x:ro", IMAGE, "cat", "/x/f"])
        .current_dir(d.path())
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "relative\n", "{}", stderr(&out));
    env.ok(&["rm", "-f", "f-web", "f-failed", "f-new"]);
}

#[test]
fn stats_streams_dockers_columns() {
    if !need_root("stats_streams_dockers_columns") {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "st1",
        "-m",
        "64m",
        IMAGE,
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    let once = env.ok(&["stats", "--no-stream", "st1"]);
    for col in ["CPU %", "MEM USAGE / LIMIT", "NET I/O", "BLOCK I/O", "PIDS"] {
        assert!(once.contains(col), "{col}: {once}");
    }
    assert!(once.contains("/ 64MiB"), "{once}");
    // A busy loop shows CPU: more than 10% of one CPU.
    let cpu: f64 = once
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().find(|w| w.ends_with('%')))
        .and_then(|w| w.trim_end_matches('%').parse().ok())
        .unwrap_or(0.0);
    assert!(cpu > 10.0, "{once}");
    // Streaming: a second table comes a second later, then we stop reading.
    let mut child = env
        .cmd(&["stats", "st1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let got = follow(&mut child, |got| got.matches("CONTAINER ID").count() >= 2);
    assert!(got.matches("CONTAINER ID").count() >= 2, "{got}");
    env.ok(&["rm", "-f", "st1"]);
}

#[test]
fn diff_lists_added_changed_and_deleted_paths() {
    if !need_root("diff_lists_added_changed_and_deleted_paths") {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run", "--name", "df1", IMAGE, "sh", "-c",
        "mkdir -p /gcrdiff/app && echo x > /gcrdiff/app/f && rm /etc/group && echo changed >> /etc/passwd",
    ]);
    let d = env.ok(&["diff", "df1"]);
    let lines: Vec<&str> = d.lines().collect();
    for want in [
        "A /gcrdiff",
        "A /gcrdiff/app",
        "A /gcrdiff/app/f",
        "C /etc",
        "D /etc/group",
        "C /etc/passwd",
    ] {
        assert!(lines.contains(&want), "{want} missing: {d}");
    }
    assert!(
        !d.contains("/etc/hosts") && !d.contains("/etc/hostname"),
        "gcr's own files: {d}"
    );
    env.ok(&["create", "--name", "df2", IMAGE, "true"]);
    assert_eq!(
        env.ok(&["diff", "df2"]),
        "",
        "a container never started changed nothing"
    );
    env.ok(&["rm", "df1", "df2"]);
}
