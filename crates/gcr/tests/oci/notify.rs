//! `SCMP_ACT_NOTIFY` with `listenerPath`, side by side with runc: both send the listener
//! descriptor and the container process state to the same agent (a Python script using
//! the kernel's notify ioctls), which answers each notified syscall with EACCES — the
//! container sees the agent's answer.

use super::*;

/// The agent process; killed on drop.
struct Agent(std::process::Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn seccomp_notify_goes_to_the_listener_like_runc() {
    if !common::need_root("seccomp_notify_goes_to_the_listener_like_runc") {
        return;
    }
    let mut b = Bundle::new();
    let sock = b.path().join("agent.sock");
    let log = b.path().join("agent.log");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/seccomp_agent.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(&sock)
        .arg(&log)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    let _agent = Agent(child);
    assert_eq!(ready.trim(), "ready");
    b.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock,
            "listenerMetadata": "from-the-test",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    let (code, out) = same(
        &mut b,
        "notify",
        &[
            "sh",
            "-c",
            "mkdir /tmp/n 2>&1; echo rc=$?; [ -d /tmp/n ] || echo absent",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "mkdir: can't create directory '/tmp/n': Permission denied\nrc=1\nabsent"
    );
    // The agent's log: one connection per runtime, same shape.
    let text = std::fs::read_to_string(&log).unwrap();
    let entries: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 2, "{text}");
    let mkdir = [
        libc::SYS_mkdirat,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_mkdir,
    ];
    for e in &entries {
        assert_eq!(e["fds_received"], 1, "{e}");
        let st = &e["state"];
        assert_eq!(st["fds"], json!(["seccompFd"]), "{e}");
        assert_eq!(st["metadata"], "from-the-test", "{e}");
        assert_eq!(st["state"]["status"], "creating", "{e}");
        assert_eq!(st["state"]["pid"], st["pid"], "{e}");
        assert!(
            st["state"]["id"].as_str().unwrap().starts_with("notify-"),
            "{e}"
        );
        let calls = e["syscalls"].as_array().unwrap();
        assert!(
            !calls.is_empty() && calls.iter().all(|n| mkdir.contains(&n.as_i64().unwrap())),
            "{e}"
        );
    }
    let keys = |v: &Value| {
        let mut k: Vec<String> = v["state"].as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&entries[0]), keys(&entries[1]), "{text}");
    // Without a listenerPath: refused before anything runs, as runc refuses it.
    b.edit(|c| {
        c["linux"]["seccomp"]
            .as_object_mut()
            .unwrap()
            .remove("listenerPath");
    });
    let [(g, _), (r, _)] = b.run_both("nolistener");
    assert_ne!(g, 0);
    assert_ne!(r, 0);
}
