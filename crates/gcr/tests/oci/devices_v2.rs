//! Device rules on cgroup v2 (an eBPF program on the container's group), gcr-runc side by
//! side with runc. On a hybrid host each runtime runs in a private mount namespace where the
//! v1 hierarchies are unmounted and the cgroup2 hierarchy (the host's `unified` one) is
//! mounted at /sys/fs/cgroup: both then see a pure v2 layout (without controllers, which
//! these bundles do not ask for) and attach their device programs, which the kernel
//! enforces in hybrid mode too.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;

use super::{common, Bundle};

/// Where the cgroup2 hierarchy is mounted (/sys/fs/cgroup on a pure v2 host).
fn v2_mount() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        (post.split(' ').next() == Some("cgroup2"))
            .then(|| pre.split(' ').nth(4).map(PathBuf::from))
            .flatten()
    })
}

/// Removes the parent group the containers were put under (theirs are gone with `run`).
struct Parent(PathBuf);

impl Drop for Parent {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(&self.0) {
            for e in rd.flatten().filter(|e| e.path().is_dir()) {
                let _ = std::fs::write(e.path().join("cgroup.kill"), "1");
                std::thread::sleep(std::time::Duration::from_millis(50));
                let _ = std::fs::remove_dir(e.path());
            }
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// `run` of `id` by `w` in the foreground, in a mount namespace where the cgroup2 hierarchy
/// is /sys/fs/cgroup and alone (when `mount` is elsewhere): (exit code, stdout, stderr).
fn run_v2(b: &Bundle, w: &str, id: &str, mount: &Path) -> (i32, String, String) {
    let bin = if w == "gcr" {
        b.link.clone()
    } else {
        PathBuf::from("runc")
    };
    let root = b.path().join(format!("state-{w}"));
    let bundle = b.path().to_str().unwrap();
    let mut cmd = if mount == Path::new("/sys/fs/cgroup") {
        Command::new(&bin)
    } else {
        let mut c = Command::new("unshare");
        c.args(["-m", "--propagation", "private", "sh", "-c"])
            .arg("umount -R /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec \"$0\" \"$@\"")
            .arg(&bin);
        c
    };
    let out = cmd
        .arg("--root")
        .arg(root)
        .args(["run", "--bundle", bundle, id])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

#[test]
fn device_rules_on_cgroup_v2_hold_like_runc() {
    if !common::need_root("device_rules_on_cgroup_v2_hold_like_runc") {
        return;
    }
    let Some(mount) = v2_mount() else {
        eprintln!("skipped: no cgroup2 hierarchy mounted");
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI host without cgroup2"
        );
        return;
    };
    let _parent = Parent(mount.join("oci-dev2"));
    let b = Bundle::new();
    // containerd's rules: deny all, the standard nodes, /dev/full read-only (the defaults
    // both runtimes add make it rwm again, and allow mknod of any node). kmsg (1:11) is in
    // no rule: the container can make such a node but not open it, nor the one made for it
    // in its /tmp. The fds of the container's process show no BPF program.
    let probe = "mknod /tmp/m c 1 11 && echo mknod-ok; mknod /tmp/n c 1 3 && echo null-mknod-ok; \
                 cat /tmp/k >/dev/null 2>&1 && echo kmsg-open || echo kmsg-denied; \
                 cat /tmp/m >/dev/null 2>&1 && echo kmsg-open || echo kmsg-denied; \
                 head -c1 /dev/full | wc -c; echo x >/dev/null && echo null-ok; \
                 ls -l /proc/self/fd/ | grep -c bpf; grep -c '^0::/oci-dev2/' /proc/self/cgroup";
    b.edit(|c| {
        c["process"]["args"] = json!(["sh", "-c", probe]);
        c["root"]["readonly"] = json!(false);
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_MKNOD"));
        }
        // Nothing that needs a controller (the hybrid host's cgroup2 has none).
        c["linux"]["resources"] = json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "r"},
        ]});
    });
    let mut results = Vec::new();
    for w in ["gcr", "runc"] {
        let id = format!("dev2-{w}");
        b.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("/oci-dev2/{id}")));
        // Each run starts with /tmp/k (1:11) alone.
        let tmp = b.path().join("rootfs/tmp");
        for f in ["k", "m", "n"] {
            let _ = std::fs::remove_file(tmp.join(f));
        }
        let k = tmp.join("k");
        let made = Command::new("mknod")
            .arg(&k)
            .args(["c", "1", "11"])
            .status();
        assert!(made.unwrap().success(), "mknod {}", k.display());
        let (code, out, err) = run_v2(&b, w, &id, &mount);
        assert_eq!(code, 0, "{w} run: {err}");
        results.push(out);
    }
    assert_eq!(results[0], results[1], "gcr-runc vs runc");
    assert_eq!(
        results[0],
        "mknod-ok\nnull-mknod-ok\nkmsg-denied\nkmsg-denied\n1\nnull-ok\n0\n1"
    );
}
