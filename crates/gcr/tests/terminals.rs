//! Terminals driven through a real pty (util-linux `script`), as a user at a terminal
//! (issue 19, item 1): `run -it` gets the container's own /dev/pts with the caller's window
//! size, resizes are passed on, ctrl-p ctrl-q (or `--detach-keys`) detaches and `attach`
//! comes back, `exec -it` and `start -ai` work.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{gcr_bin, need_root, Env, IMAGE};

/// Runs `sh -c script` on a new pty of 30 rows and 100 columns (`$G` is gcr, with this
/// store), typing `input` (each chunk after its delay); returns what the terminal showed.
fn in_pty(env: &Env, script: &str, input: &[(u64, &[u8])]) -> String {
    let full = format!("stty rows 30 cols 100; {script}");
    let mut child = Command::new("script")
        .args(["-qec", &full, "/dev/null"])
        .env("G", gcr_bin())
        .env("GCR_ROOT", env.root.path())
        .env("GCR_RUN_DIR", &env.run_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux script");
    let mut stdin = child.stdin.take().unwrap();
    let chunks: Vec<(u64, Vec<u8>)> = input.iter().map(|(d, b)| (*d, b.to_vec())).collect();
    let writer = std::thread::spawn(move || {
        for (delay, bytes) in chunks {
            std::thread::sleep(Duration::from_millis(delay));
            let _ = stdin.write_all(&bytes);
            let _ = stdin.flush();
        }
        // Held open a while: script ends the session when its input ends.
        std::thread::sleep(Duration::from_secs(3));
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            // SAFETY: killing the script process this test started.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("the pty session of {script:?} hung");
        }
    };
    drop(writer);
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

fn skip_without_script() -> bool {
    if Command::new("script").arg("--version").output().is_ok() {
        return false;
    }
    assert!(
        std::env::var("CI").is_err(),
        "util-linux script missing in CI"
    );
    eprintln!("skipped: no util-linux script");
    true
}

#[test]
fn run_it_has_a_real_terminal_that_follows_resizes() {
    if !need_root("run_it_has_a_real_terminal_that_follows_resizes") || skip_without_script() {
        return;
    }
    let env = Env::new();
    let out = in_pty(
        &env,
        &format!("$G run -it --rm {IMAGE} sh -c 'tty; stty size; exit 3'; echo rc=$?"),
        &[],
    );
    assert!(out.contains("/dev/pts/0\n30 100\n"), "{out:?}");
    assert!(out.contains("rc=3"), "{out:?}");
    // A resize while it runs reaches the container's pty.
    let out = in_pty(
        &env,
        &format!(
            "$G run -it --rm {IMAGE} sh -c 'stty size; sleep 1.5; stty size' </dev/tty & \
             sleep 0.7; stty rows 40 cols 120; wait"
        ),
        &[],
    );
    assert!(
        out.contains("30 100\n") && out.contains("40 120\n"),
        "{out:?}"
    );
    // Typed input arrives; exec -it gets its own pty with the size too.
    env.ok(&["run", "-d", "--name", "tbox", IMAGE, "sleep", "600"]);
    let out = in_pty(
        &env,
        "$G exec -it tbox sh -c 'tty; stty size; read x; echo got-$x'; echo rc=$?",
        &[(800, b"typed\n")],
    );
    assert!(
        out.contains("/dev/pts/") && out.contains("30 100"),
        "{out:?}"
    );
    assert!(out.contains("got-typed") && out.contains("rc=0"), "{out:?}");
    env.ok(&["rm", "-f", "tbox"]);
}

#[test]
fn detach_keys_leave_it_running_and_attach_comes_back() {
    if !need_root("detach_keys_leave_it_running_and_attach_comes_back") || skip_without_script() {
        return;
    }
    let env = Env::new();
    let out = in_pty(
        &env,
        &format!("$G run -it --name det {IMAGE} sh; echo rc=$?"),
        &[(800, b"echo hello-$((40+2))\n"), (600, b"\x10\x11")],
    );
    assert!(out.contains("hello-42"), "{out:?}");
    assert!(out.contains("rc=0"), "{out:?}");
    let status = env.ok(&["inspect", "-f", "{{.State.Status}}", "det"]);
    assert_eq!(status.trim(), "running", "detached, not stopped");
    // Back in: the shell is still there; other detach keys; then its exit code.
    let out = in_pty(
        &env,
        "$G attach --detach-keys ctrl-a,d det; echo rc=$?",
        &[(800, b"echo again-$((1+1))\n"), (600, b"\x01d")],
    );
    assert!(out.contains("again-2") && out.contains("rc=0"), "{out:?}");
    let out = in_pty(&env, "$G attach det; echo rc=$?", &[(800, b"exit 7\n")]);
    assert!(out.contains("rc=7"), "{out:?}");
    let status = env.ok(&["inspect", "-f", "{{.State.Status}}", "det"]);
    assert_eq!(status.trim(), "exited");
    // start -ai: stdin and output from the first byte, and the exit code.
    env.ok(&[
        "create",
        "-it",
        "--name",
        "sai",
        IMAGE,
        "sh",
        "-c",
        "echo ready; read x; echo got-$x; exit 5",
    ]);
    let out = in_pty(&env, "$G start -ai sai; echo rc=$?", &[(800, b"abc\n")]);
    assert!(out.contains("ready") && out.contains("got-abc"), "{out:?}");
    assert!(out.contains("rc=5"), "{out:?}");
    // An unknown detach key is refused.
    let out = env.gcr(&["attach", "--detach-keys", "shift-x", "sai"]);
    assert!(!out.status.success());
}
