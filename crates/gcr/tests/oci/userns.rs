//! User namespaces (`linux.uidMappings`/`gidMappings`, Kubernetes' `hostUsers: false`)
//! side by side with runc: ids and maps inside, ownership on the host of what the
//! container makes, capabilities, a host-owned file, exec into the running container,
//! and mappings refused before anything is made.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use super::{common, edit_config, state, Bundle};

/// The host ids the container's 0..65536 map to.
const HOST_ID: u32 = 231_072;

/// A bundle whose root belongs to the mapped root (as runc's users prepare it), with a
/// user namespace, a writable root and a host-owned file bound at /data/host.
fn userns_bundle() -> Bundle {
    let b = Bundle::new();
    // The mapped root must reach the root filesystem through the bundle directory.
    std::fs::set_permissions(b.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let ok = Command::new("chown")
        .args(["-R", &format!("{HOST_ID}:{HOST_ID}")])
        .arg(b.path().join("rootfs"))
        .status()
        .unwrap()
        .success();
    assert!(ok, "chown the rootfs");
    std::fs::create_dir(b.path().join("data")).unwrap();
    std::fs::write(b.path().join("data/host"), "host\n").unwrap();
    std::fs::set_permissions(
        b.path().join("data/host"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    b.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": HOST_ID, "size": 65536}]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "rw"]
        }));
    });
    b
}

/// Runs `args` in the foreground with `w`; returns (exit code, stdout, owner uid:gid of
/// /tmp/made in the root as the host sees it), removing /tmp/made.
fn run_one(b: &mut Bundle, w: &str, id: &str, args: &[&str]) -> (i32, String, Option<String>) {
    let a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    b.edit(|c| c["process"]["args"] = json!(a));
    b.ids.push(format!("{w}:{id}"));
    let bundle = b.path().to_str().unwrap().to_string();
    let out = b.tool(w, &["run", "--bundle", &bundle, id]);
    let made = b.path().join("rootfs/tmp/made");
    let owner = std::fs::metadata(&made)
        .ok()
        .map(|m| format!("{}:{}", m.uid(), m.gid()));
    let _ = std::fs::remove_file(&made);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        owner,
    )
}

#[test]
fn userns_run_matches_runc() {
    if !common::need_root("userns_run_matches_runc") {
        return;
    }
    let mut b = userns_bundle();
    let probe = [
        "sh",
        "-c",
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; grep Cap /proc/self/status; \
         hostname; touch /tmp/made; stat -c '%n %u %g %a' /tmp/made /proc /dev /sys; \
         echo x >> /data/host 2>&1 || echo denied; cat /data/host; exit 7",
    ];
    let g = run_one(&mut b, "gcr", "uns-gcr", &probe);
    let r = run_one(&mut b, "runc", "uns-runc", &probe);
    assert_eq!(g, r, "gcr-runc vs runc");
    let (code, out, owner) = g;
    assert_eq!(code, 7);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    assert_eq!(lines[1], "0", "{out}");
    let map: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(map, ["0", &HOST_ID.to_string(), "65536"], "{out}");
    assert!(out.contains("CapBnd:\t0000000020000420"), "{out}");
    assert!(out.contains("/tmp/made 0 0 644"), "{out}");
    assert!(
        out.ends_with("denied\nhost"),
        "the host file changed: {out}"
    );
    assert_eq!(owner, Some(format!("{HOST_ID}:{HOST_ID}")), "{out}");
    assert_eq!(
        std::fs::read_to_string(b.path().join("data/host")).unwrap(),
        "host\n"
    );
    // The config's seccomp profile, masked and read-only paths hold in the namespace.
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
    });
    let probe = [
        "sh",
        "-c",
        "mkdir /tmp/d 2>&1; wc -c < /proc/kcore; (echo x > /proc/sys/kernel/hostname) 2>&1; \
         ls /sys/firmware | wc -l; exit 0",
    ];
    let g = run_one(&mut b, "gcr", "uns2-gcr", &probe);
    let r = run_one(&mut b, "runc", "uns2-runc", &probe);
    assert_eq!(g, r, "gcr-runc vs runc");
    assert!(g.1.contains("Operation not permitted"), "{}", g.1);
    assert!(g.1.contains("Read-only file system"), "{}", g.1);
}

#[test]
fn userns_host_network_binds_sys() {
    if !common::need_root("userns_host_network_binds_sys") {
        return;
    }
    // sysfs cannot be mounted from a user namespace that does not own the network
    // namespace: gcr-runc binds the host's /sys read-only (runc 1.2 does too; 1.1 fails).
    let mut b = userns_bundle();
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "network");
    });
    let (code, out, _) = run_one(
        &mut b,
        "gcr",
        "uns-hostnet",
        &[
            "sh",
            "-c",
            "test -e /sys/class/net/lo && echo lo; touch /sys/x 2>/dev/null || echo ro; id -u",
        ],
    );
    assert_eq!((code, out.as_str()), (0, "lo\nro\n0"));
}

#[test]
fn userns_exec_matches_runc() {
    if !common::need_root("userns_exec_matches_runc") {
        return;
    }
    let mut b = userns_bundle();
    b.edit(|c| c["process"]["args"] = json!(["sleep", "30"]));
    let bundle = b.path().to_str().unwrap().to_string();
    let mut seen = Vec::new();
    for w in ["gcr", "runc"] {
        let id = format!("uexec-{w}");
        b.ids.push(format!("{w}:{id}"));
        assert!(
            b.detached(w, &["run", "-d", "--bundle", &bundle, &id]),
            "{w} run -d"
        );
        let s = state(&b, w, &id);
        assert_eq!(s["status"], "running", "{w}");
        let pid = s["pid"].as_i64().unwrap();
        let host_view = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
        let out = b.tool(
            w,
            &[
                "exec",
                &id,
                "sh",
                "-c",
                "cat /proc/self/uid_map /proc/self/gid_map; id -u; grep CapEff /proc/self/status; \
                 touch /tmp/made; exit 3",
            ],
        );
        let owner = std::fs::metadata(b.path().join("rootfs/tmp/made"))
            .map(|m| m.uid())
            .ok();
        let _ = std::fs::remove_file(b.path().join("rootfs/tmp/made"));
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            stdout.starts_with(host_view.trim()),
            "{w}: exec sees another map: {stdout} vs {host_view}"
        );
        seen.push((out.status.code(), stdout, owner));
        assert!(
            b.tool(w, &["kill", &id, "KILL"]).status.success(),
            "{w} kill"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while state(&b, w, &id)["status"] != "stopped" {
            assert!(std::time::Instant::now() < deadline, "{w}: not stopped");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(b.tool(w, &["delete", &id]).status.success(), "{w} delete");
    }
    assert_eq!(seen[0], seen[1], "gcr-runc vs runc");
    assert_eq!(seen[0].0, Some(3));
    assert_eq!(seen[0].2, Some(HOST_ID));
    assert!(!b.path().join("state-gcr/uexec-gcr").exists());
}

#[test]
fn userns_bad_mappings_are_refused_cleanly() {
    if !common::need_root("userns_bad_mappings_are_refused_cleanly") {
        return;
    }
    let b = userns_bundle();
    let bundle = b.path().to_str().unwrap().to_string();
    let orig = std::fs::read(b.path().join("config.json")).unwrap();
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit); 5] = [
        ("the user namespace has no linux.uidMappings", |c| {
            c["linux"]["uidMappings"] = json!([]);
        }),
        ("the user namespace has no linux.gidMappings", |c| {
            c["linux"].as_object_mut().unwrap().remove("gidMappings");
        }),
        (
            "linux.uidMappings is set but linux.namespaces has no user namespace",
            |c| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|n| n["type"] != "user");
            },
        ),
        ("is empty or runs past the last id", |c| {
            c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 0}]);
        }),
        // Only the kernel sees this one, once the process exists.
        ("cannot write linux.uidMappings", |c| {
            c["linux"]["uidMappings"] = json!([
                {"containerID": 0, "hostID": 300000, "size": 100},
                {"containerID": 50, "hostID": 400000, "size": 100}
            ]);
        }),
    ];
    for (i, (want, f)) in cases.iter().enumerate() {
        std::fs::write(b.path().join("config.json"), &orig).unwrap();
        edit_config(b.path(), f);
        let _ = std::fs::remove_file(b.path().join("gcr.log"));
        let id = format!("ubad{i}");
        let out = b.tool("gcr", &["create", "--bundle", &bundle, &id]);
        assert_eq!(out.status.code(), Some(1), "case {i}");
        let log = std::fs::read_to_string(b.path().join("gcr.log")).unwrap();
        let line: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
        assert_eq!(line["level"], "error");
        assert!(line["msg"].to_string().contains(want), "case {i}: {log}");
        let left: Vec<_> = std::fs::read_dir(b.path().join("state-gcr"))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "case {i} left state: {left:?}");
        for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let g = h.path().join("gcr-runc").join(&id);
            assert!(!Path::new(&g).exists(), "case {i} left {}", g.display());
        }
    }
}

#[test]
fn userns_join_by_path_matches_runc() {
    if !common::need_root("userns_join_by_path_matches_runc") {
        return;
    }
    // A pod's second container: the first one's user, network and ipc namespaces by path
    // (mappings given too: runc 1.1 wants them), its own mount, pid and uts namespaces.
    let mut first = userns_bundle();
    first.edit(|c| c["process"]["args"] = json!(["sleep", "30"]));
    let mut second = userns_bundle();
    let bundle = first.path().to_str().unwrap().to_string();
    let mut seen = Vec::new();
    for w in ["gcr", "runc"] {
        let id = format!("ujoin-a-{w}");
        first.ids.push(format!("{w}:{id}"));
        assert!(
            first.detached(w, &["run", "-d", "--bundle", &bundle, &id]),
            "{w} run -d"
        );
        let pid = state(&first, w, &id)["pid"].as_i64().unwrap();
        let user = std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
        second.edit(|c| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| !["user", "network", "ipc"].contains(&n["type"].as_str().unwrap()));
            for t in ["user", "net", "ipc"] {
                let typ = if t == "net" { "network" } else { t };
                ns.push(json!({"type": typ, "path": format!("/proc/{pid}/ns/{t}")}));
            }
        });
        let (code, out, owner) = run_one(
            &mut second,
            w,
            &format!("ujoin-b-{w}"),
            &[
                "sh",
                "-c",
                "readlink /proc/self/ns/user; id -u; cat /proc/self/uid_map; \
                 grep CapEff /proc/self/status; ls /sys/class/net; touch /tmp/made",
            ],
        );
        let (first_line, rest) = out.split_once('\n').unwrap_or((&out, ""));
        assert_eq!(
            Path::new(first_line),
            user,
            "{w}: not in the first container's user namespace: {out}"
        );
        seen.push((code, rest.to_string(), owner));
        assert!(first.tool(w, &["kill", &id, "KILL"]).status.success());
    }
    assert_eq!(seen[0], seen[1], "gcr-runc vs runc");
    assert_eq!(seen[0].0, 0);
    assert_eq!(seen[0].2, Some(format!("{HOST_ID}:{HOST_ID}")));
}
