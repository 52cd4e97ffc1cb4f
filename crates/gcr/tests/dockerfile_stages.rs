//! Dockerfile stages as the CLI builds them: only the stages the target needs (a broken
//! stage nobody needs does not run), independent stages at the same time (proven without a
//! clock: each waits, through a shared cache mount, for the other to have started, which
//! a one-at-a-time build can never satisfy), a transcript in stage order whatever finished
//! first, `-f -` from standard input and errors that name the file, line and column.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{need_root, stderr, Env};

fn write(dir: &std::path::Path, text: &str) {
    std::fs::write(dir.join("Dockerfile"), text).unwrap();
}

#[test]
fn unneeded_stages_are_skipped_and_independent_ones_run_together() {
    if !need_root("unneeded_stages_are_skipped_and_independent_ones_run_together") {
        return;
    }
    let env = Env::new();
    let ctx = tempfile::tempdir().unwrap();
    // Each of a and b marks its start in a shared cache directory, then waits (up to
    // 60 s) for the other's mark: only a build running both at once gets past this.
    let wait = |me: &str, other: &str| {
        format!(
            "RUN --mount=type=cache,target=/sync,id=gcr-test-stages-{} touch /sync/{me} && \
             i=0; while [ ! -e /sync/{other} ]; do i=$((i+1)); [ $i -gt 600 ] && exit 7; sleep 0.1; done; \
             echo {me} > /{me}\n",
            std::process::id()
        )
    };
    write(
        ctx.path(),
        &format!(
            "FROM test/busybox:1 AS broken\nRUN exit 9\n\
             FROM test/busybox:1 AS a\n{}\
             FROM test/busybox:1 AS b\n{}\
             FROM test/busybox:1\nCOPY --from=a /a /out/\nCOPY --from=b /b /out/\n",
            wait("a", "b"),
            wait("b", "a")
        ),
    );
    let dir = ctx.path().to_str().unwrap();
    let out = env.gcr(&["build", "--progress", "json", "-t", "stages:1", dir]);
    assert!(
        out.status.success(),
        "the build failed (stages not run together, or the unneeded broken stage ran): {}",
        stderr(&out)
    );
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let steps: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == "step")
        .map(|e| e["description"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(steps.len(), 4, "steps: {steps:?}");
    assert!(!steps.iter().any(|s| s.contains("exit 9")), "{steps:?}");
    assert!(
        steps[0].contains("touch /sync/a") && steps[1].contains("touch /sync/b"),
        "{steps:?}"
    );
    let t = env.ok(&["inspect", "--transcript", "stages:1"]);
    let t: serde_json::Value = serde_json::from_str(&t).unwrap();
    let t = if t.is_array() { t[0].clone() } else { t };
    let idx: Vec<u64> = t["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, vec![1, 2, 3, 4], "transcript steps in stage order");
    let ls = env.ok(&["run", "--rm", "stages:1", "cat", "/out/a", "/out/b"]);
    assert_eq!(ls, "a\nb\n");
}

#[test]
fn dockerfile_from_stdin_and_located_errors() {
    if !need_root("dockerfile_from_stdin_and_located_errors") {
        return;
    }
    let env = Env::new();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("hello.txt"), "hi\n").unwrap();
    let dir = ctx.path().to_str().unwrap();
    let build = |text: &str, args: &[&str]| {
        let mut c = env.cmd(&[&["build", "-f", "-"][..], args, &[dir]].concat());
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = build(
        "FROM test/busybox:1\nARG WHO\nCOPY hello.txt /\nRUN echo \"$WHO\" >> /hello.txt\n",
        &[
            "-t",
            "stdin:1",
            "--build-arg",
            "WHO=gcr",
            "--iidfile",
            &format!("{dir}/iid"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let id = std::fs::read_to_string(ctx.path().join("iid")).unwrap();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(
        env.ok(&["run", "--rm", "stdin:1", "cat", "/hello.txt"]),
        "hi\ngcr\n"
    );
    for (text, want) in [
        (
            "FROM test/busybox:1\n  RUNN true\n",
            "Dockerfile (stdin):2:3: unknown instruction: RUNN (did you mean RUN?)",
        ),
        (
            "FROM test/busybox:1\nCOPY --chmod=9 hello.txt /\n",
            "Dockerfile (stdin):2:1: invalid --chmod '9'",
        ),
        (
            "FROM test/busybox:1\nRUN exit 4\n",
            "Dockerfile (stdin):2:1: command 1 (RUN exit 4) failed with exit code 4",
        ),
        (
            "FROM test/busybox:1\nCOPY ../x /\n",
            "COPY source '../x' is outside the build context",
        ),
    ] {
        let out = build(text, &[]);
        assert!(!out.status.success(), "{text} built");
        let err = stderr(&out);
        assert!(err.contains(want), "{text}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // An unknown target names the stages there are.
    let out = build(
        "FROM test/busybox:1 AS one\nFROM test/busybox:1 AS two\n",
        &["--target", "three"],
    );
    assert!(
        stderr(&out).contains("its stages are: one, two"),
        "{}",
        stderr(&out)
    );
}
