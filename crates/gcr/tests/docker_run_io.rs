//! `gcr run`/`start` input and output as Docker users know them (issue 19): `--cidfile`,
//! `-a`, stdin only with `-i`, "the input device is not a TTY", `start -a` from the first
//! byte, `--log-opt max-size/max-file` rotation read back by `logs`, and a foreground run's
//! output kept for `logs` (pipes or its terminal) unless `--log-driver none`.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{need_root, stderr, stdout, Env, IMAGE};

#[test]
fn cidfile_attach_streams_and_stdin_only_with_i() {
    if !need_root("cidfile_attach_streams_and_stdin_only_with_i") {
        return;
    }
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let cid = dir.path().join("cid");
    let c = cid.to_str().unwrap();
    let id = env.ok(&["run", "-d", "--cidfile", c, IMAGE, "sleep", "100"]);
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), id.trim());
    let out = env.gcr(&["run", "-d", "--cidfile", c, IMAGE, "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(
        env.ok(&["ps", "-aq"]).lines().count(),
        1,
        "a second container was made"
    );
    // A failed create leaves no empty file behind.
    let cid2 = dir.path().join("cid2");
    let out = env.gcr(&[
        "create",
        "--cidfile",
        cid2.to_str().unwrap(),
        "no/such:image",
    ]);
    assert!(!out.status.success());
    assert!(!cid2.exists());
    // -a: only the named streams.
    let both = ["sh", "-c", "echo out; echo err >&2"];
    let run = |flags: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(flags);
        a.push(IMAGE);
        a.extend_from_slice(&both);
        env.gcr(&a)
    };
    let o = run(&[]);
    assert_eq!(
        (stdout(&o).as_str(), stderr(&o).as_str()),
        ("out\n", "err\n")
    );
    let o = run(&["-a", "stdout"]);
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("out\n", ""));
    let o = run(&["-a", "STDERR"]);
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("", "err\n"));
    env.fails(&["run", "-d", "-a", "stdout", IMAGE, "true"], "-a and -d");
    env.fails(&["run", "-a", "stdlog", IMAGE, "true"], "invalid -a");
    // stdin reaches the container only with -i.
    let piped = |args: &[&str]| {
        let mut child = env
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // gcr may exit (-it without a terminal) or close stdin (no -i) before the write:
        // a broken pipe then is the expected outcome, not a failure.
        let _ = child.stdin.take().unwrap().write_all(b"typed\n");
        child.wait_with_output().unwrap()
    };
    let o = piped(&["run", "--rm", IMAGE, "cat"]);
    assert_eq!(stdout(&o), "", "stdin was forwarded without -i");
    assert!(o.status.success());
    let o = piped(&["run", "--rm", "-i", IMAGE, "cat"]);
    assert_eq!(stdout(&o), "typed\n");
    let o = piped(&["run", "--rm", "-i", "-a", "stdout", IMAGE, "cat"]);
    assert_eq!(stdout(&o), "", "-a without stdin forwarded stdin");
    // -it without a terminal: Docker's words, exit 1, and nothing hangs.
    let o = piped(&["run", "--rm", "-it", IMAGE, "cat"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("the input device is not a TTY"),
        "{}",
        stderr(&o)
    );
    let name = env.ok(&["ps", "-q"]);
    let o = piped(&["exec", "-it", name.trim(), "cat"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("the input device is not a TTY"));
    let o = piped(&["exec", "-i", name.trim(), "cat"]);
    assert_eq!(stdout(&o), "typed\n");
    let o = piped(&["exec", name.trim(), "cat"]);
    assert_eq!(stdout(&o), "");
}

#[test]
fn start_attach_keeps_early_output() {
    if !need_root("start_attach_keeps_early_output") {
        return;
    }
    let env = Env::new();
    for i in 0..4 {
        let name = format!("early{i}");
        env.ok(&[
            "create",
            "--name",
            &name,
            IMAGE,
            "sh",
            "-c",
            "echo first; sleep 0.2; echo second; exit 4",
        ]);
        let o = env.gcr(&["start", "-a", &name]);
        assert_eq!(stdout(&o), "first\nsecond\n", "try {i}");
        assert_eq!(o.status.code(), Some(4));
    }
}

#[test]
fn log_opt_rotates_and_logs_reads_across_files() {
    if !need_root("log_opt_rotates_and_logs_reads_across_files") {
        return;
    }
    let env = Env::new();
    let id = env.ok(&[
        "run",
        "-d",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=3",
        IMAGE,
        "sh",
        "-c",
        "i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo line $i; done",
    ]);
    let id = id.trim();
    assert!(common::eventually(10, || env
        .ok(&["inspect", "-f", "{{.State.Status}}", id])
        .trim()
        == "exited"));
    let log = env
        .root
        .path()
        .join("containers")
        .join(id)
        .join("container.log");
    let rotated: Vec<_> = (1..5)
        .map(|n| std::path::PathBuf::from(format!("{}.{n}", log.display())))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(
        rotated.len(),
        2,
        "max-file=3 keeps the log and two rotated files"
    );
    for p in rotated.iter().chain([&log]) {
        // A file ends at the first record past 1 KiB.
        assert!(
            std::fs::metadata(p).unwrap().len() < 1024 + 100,
            "{}",
            p.display()
        );
    }
    // `logs` reads them oldest first: consecutive lines ending with the last one.
    let out = env.ok(&["logs", id]);
    let nums: Vec<u32> = out
        .lines()
        .map(|l| l.trim_start_matches("line ").parse().unwrap())
        .collect();
    assert_eq!(*nums.last().unwrap(), 300);
    assert!(nums[0] > 1, "nothing was dropped: {}", nums[0]);
    assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
    // --tail reaches into the rotated files.
    let current = std::fs::read_to_string(&log).unwrap().lines().count();
    let n = (current + 5).to_string();
    let tail = env.ok(&["logs", "-n", &n, id]);
    assert_eq!(tail.lines().count(), current + 5);
    assert!(tail.ends_with("line 300\n"));
    // A follower keeps reading across rotations.
    let id = env.ok(&[
        "run",
        "-d",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        IMAGE,
        "sh",
        "-c",
        "sleep 0.3; i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo line $i; usleep 20000; done",
    ]);
    let out = env.ok(&["logs", "-f", id.trim()]);
    let nums: Vec<u32> = out
        .lines()
        .map(|l| l.trim_start_matches("line ").parse().unwrap())
        .collect();
    assert_eq!(nums, (1..=60).collect::<Vec<_>>());
    let out = env.gcr(&["run", "--rm", "--log-opt", "max-file=2", IMAGE, "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("needs max-size"), "{}", stderr(&out));
    env.fails(
        &[
            "run",
            "--rm",
            "--log-opt",
            "mode=non-blocking",
            IMAGE,
            "true",
        ],
        "unknown --log-opt mode",
    );
}

#[test]
fn foreground_output_is_kept_for_logs_unless_the_driver_is_none() {
    if !need_root("foreground_output_is_kept_for_logs_unless_the_driver_is_none") {
        return;
    }
    let env = Env::new();
    let both = "echo out; echo err >&2; printf tail";
    // Shown as it runs, and kept: `logs` gives each stream back on its own.
    let o = env.gcr(&["run", "--name", "fg", IMAGE, "sh", "-c", both]);
    assert_eq!(
        (stdout(&o).as_str(), stderr(&o).as_str()),
        ("out\ntail", "err\n")
    );
    let l = env.gcr(&["logs", "fg"]);
    assert_eq!(
        (stdout(&l).as_str(), stderr(&l).as_str()),
        ("out\ntail", "err\n")
    );
    // A stream -a leaves out is not shown but kept, as Docker's.
    let o = env.gcr(&[
        "run", "--name", "fga", "-a", "stdout", IMAGE, "sh", "-c", both,
    ]);
    assert_eq!(
        (stdout(&o).as_str(), stderr(&o).as_str()),
        ("out\ntail", "")
    );
    let l = env.gcr(&["logs", "fga"]);
    assert_eq!(stderr(&l), "err\n");
    // A caller that stops reading (`| head -1`) closes the container's stdout as its own
    // descriptor would: `yes` ends on SIGPIPE and the run with it; the log kept the start.
    let mut child = env
        .cmd(&[
            "run",
            "--name",
            "fgc",
            IMAGE,
            "sh",
            "-c",
            "yes; echo done >&2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let mut first = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut first).unwrap();
        assert_eq!(first, "y\n");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("gcr run went on after its stdout was closed");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let l = env.gcr(&["logs", "fgc"]);
    assert!(stdout(&l).starts_with("y\ny\n"), "the log kept the output");
    assert_eq!(stderr(&l), "done\n");
    // With a terminal: what the pty showed.
    let cmd = format!(
        "GCR_ROOT={} GCR_RUN_DIR={} {} run --name fgt -t {IMAGE} echo on-a-tty",
        env.root.path().display(),
        env.run_dir.display(),
        common::gcr_bin().display()
    );
    let o = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script(1) from util-linux");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(env.ok(&["logs", "fgt"]), "on-a-tty\r\n");
    // --log-driver none: shown, not kept; logs says so as Docker does.
    let o = env.gcr(&[
        "run",
        "--name",
        "fgn",
        "--log-driver",
        "none",
        IMAGE,
        "echo",
        "hi",
    ]);
    assert_eq!(stdout(&o), "hi\n");
    let l = env.gcr(&["logs", "fgn"]);
    assert_eq!(l.status.code(), Some(1));
    assert!(
        stderr(&l).contains("configured logging driver does not support reading"),
        "{}",
        stderr(&l)
    );
    let cfg = env.ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.LogConfig.Type}} [{{.LogPath}}]",
        "fgn",
    ]);
    assert_eq!(cfg.trim(), "none []");
    let id = env.ok(&[
        "run",
        "-d",
        "--log-driver",
        "none",
        IMAGE,
        "sh",
        "-c",
        "echo x; sleep 30",
    ]);
    let id = id.trim();
    assert!(env.gcr(&["logs", id]).status.code() == Some(1));
    assert!(!env
        .root
        .path()
        .join("containers")
        .join(id)
        .join("container.log")
        .exists());
    env.ok(&["rm", "-f", id]);
    // local keeps a log (Docker's defaults: 20 MB files, 5 of them); other drivers are
    // refused by name, as are options for none.
    env.ok(&[
        "run",
        "--name",
        "fgl",
        "--log-driver",
        "local",
        IMAGE,
        "echo",
        "kept",
    ]);
    assert_eq!(env.ok(&["logs", "fgl"]), "kept\n");
    let cfg = env.ok(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", "fgl"]);
    assert_eq!(
        cfg.trim(),
        r#"{"Config":{"max-file":"5","max-size":"20m"},"Type":"json-file"}"#
    );
    let before = env.ok(&["ps", "-aq"]);
    for (flags, says) in [
        (
            &["--log-driver", "syslog"][..],
            "log driver 'syslog' is not supported",
        ),
        (
            &["--log-driver", "none", "--log-opt", "max-size=1m"],
            "--log-opt",
        ),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(flags);
        a.extend_from_slice(&[IMAGE, "true"]);
        let o = env.gcr(&a);
        assert_eq!(o.status.code(), Some(125), "{flags:?}");
        assert!(stderr(&o).contains(says), "{flags:?}: {}", stderr(&o));
    }
    assert_eq!(env.ok(&["ps", "-aq"]), before, "no container was made");
}
