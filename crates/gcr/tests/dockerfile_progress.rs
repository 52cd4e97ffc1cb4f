//! The live display of a Dockerfile build: on a terminal (a real pty, through `script`)
//! `gcr build` draws BuildKit's frame on standard error — a header with the clock and the
//! steps done, `[stage n/m]` step lines with CACHED marks and times, the running step's
//! output beneath it — redrawn in place, and ends with FINISHED; a failed step is marked
//! ERROR with its last lines kept. Without a terminal the plain lines stay.

mod common;

use std::process::Command;

use common::{gcr_bin, need_root, stderr, stdout, Env, IMAGE};

const DOCKERFILE: &str = "FROM test/busybox:1 AS ticks\n\
    RUN for i in 1 2 3 4 5; do echo tick $i; sleep 0.15; done\n\
    FROM test/busybox:1\n\
    COPY --from=ticks /etc/passwd /copied\n";

/// Runs `gcr ARGS` on a pty; returns what the terminal got and whether gcr succeeded.
fn on_a_pty(env: &Env, args: &str) -> (String, bool) {
    let cmd = format!(
        "GCR_ROOT={} GCR_RUN_DIR={} {} {args}",
        env.root.path().display(),
        env.run_dir.display(),
        gcr_bin().display()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("script (util-linux) runs");
    (stdout(&out), out.status.success())
}

#[test]
fn a_terminal_gets_the_live_display_and_a_pipe_gets_plain_lines() {
    if !need_root("a_terminal_gets_the_live_display_and_a_pipe_gets_plain_lines") {
        return;
    }
    let env = Env::new();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), DOCKERFILE).unwrap();
    let dir = ctx.path().to_str().unwrap();
    let (term, ok) = on_a_pty(&env, &format!("build -t live:1 {dir}"));
    assert!(ok, "{term}");
    assert!(term.contains("\x1b[2K[+] Building "), "no frame: {term}");
    assert!(
        term.contains("\x1b[J\x1b["),
        "frames are redrawn in place: {term}"
    );
    assert!(term.contains(" => [ticks 2/2] RUN for i in"), "{term}");
    assert!(
        term.contains(" => => # tick 3"),
        "the running step's output: {term}"
    );
    assert!(
        term.contains(" => [stage-1 2/2] COPY --from=ticks"),
        "{term}"
    );
    assert!(term.contains("(4/4) FINISHED"), "{term}");
    assert!(
        term.contains(" => => naming to docker.io/library/live:1"),
        "{term}"
    );
    // The last frame no longer shows the finished step's output.
    let last = term.rsplit("[+] Building").next().unwrap_or("");
    assert!(!last.contains("# tick"), "{last}");

    let (term, ok) = on_a_pty(&env, &format!("build -t live:1 {dir}"));
    assert!(ok, "{term}");
    let last = term.rsplit("[+] Building").next().unwrap_or("");
    assert!(
        last.contains(" => CACHED [ticks 2/2] RUN for i in"),
        "{last}"
    );
    assert!(last.contains(" => CACHED [stage-1 2/2] COPY"), "{last}");

    // A pipe gets the plain lines, and the step's output once.
    let out = env.gcr(&["build", "--no-cache", "-t", "live:1", dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out) + &stderr(&out);
    assert!(!text.contains("\x1b["), "escape codes on a pipe: {text}");
    assert_eq!(text.matches("tick 3").count(), 1, "{text}");

    // A failed step: ERROR on it, its last lines kept, then the error.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN echo about to fail; exit 3\n"),
    )
    .unwrap();
    let (term, ok) = on_a_pty(&env, &format!("build -t live:2 {dir}"));
    assert!(!ok, "{term}");
    let last = term.rsplit("[+] Building").next().unwrap_or("");
    assert!(
        last.contains(" => ERROR [stage-0 2/2] RUN echo about to fail"),
        "{last}"
    );
    assert!(last.contains(" => => # about to fail"), "{last}");
    assert!(last.contains("exit"), "the error follows the frame: {last}");
}
