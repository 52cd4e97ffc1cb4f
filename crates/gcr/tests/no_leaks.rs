//! 200 `run --rm` cycles (and detached runs) leave no mount, cgroup, process, namespace or
//! file behind.

mod common;
use common::*;

/// Mounts on the host under `root` (other tests running in parallel mount and unmount
/// their own run dirs elsewhere).
fn mounts(root: &std::path::Path) -> usize {
    let root = root.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|p| p.starts_with(&root)))
        .count()
}

fn gcr_cgroups() -> Vec<String> {
    let mut out = Vec::new();
    for line in std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
    {
        let f: Vec<&str> = line.split(' ').collect();
        if line.contains(" - cgroup") {
            let gcr = std::path::Path::new(f[4]).join("gcr");
            if let Ok(rd) = std::fs::read_dir(&gcr) {
                for e in rd.flatten() {
                    if e.path().is_dir() {
                        out.push(e.path().display().to_string());
                    }
                }
            }
        }
    }
    out
}

fn net_namespaces() -> std::collections::HashSet<String> {
    let mut s = std::collections::HashSet::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(l) = std::fs::read_link(e.path().join("ns/net")) {
            s.insert(l.display().to_string());
        }
    }
    s
}

fn dir_entries(p: &std::path::Path) -> usize {
    std::fs::read_dir(p).map(|r| r.count()).unwrap_or(0)
}

#[test]
fn two_hundred_rm_cycles_leave_nothing() {
    if !need_root("two_hundred_rm_cycles_leave_nothing") {
        return;
    }
    let env = Env::new();
    env.ok(&["run", "--rm", IMAGE, "true"]);
    let r = env.root.path();
    let (m0, c0, n0) = (mounts(r), gcr_cgroups(), net_namespaces().len());
    for i in 0..200 {
        let o = env.gcr(&["run", "--rm", "--network", "none", IMAGE, "/bin/true"]);
        assert!(o.status.success(), "cycle {i}: {}", stderr(&o));
    }
    for _ in 0..5 {
        env.ok(&["run", "-d", "--rm", IMAGE, "sh", "-c", "exit 0"]);
    }
    assert!(eventually(10, || env.ok(&["ps", "-aq"]).trim().is_empty()));
    assert!(
        eventually(5, || mounts(r) == m0),
        "mounts leaked: {} -> {}",
        m0,
        mounts(r)
    );
    assert!(
        eventually(5, || gcr_cgroups().len() <= c0.len()),
        "cgroups leaked: {:?}",
        gcr_cgroups()
    );
    assert!(
        eventually(5, || net_namespaces().len() <= n0),
        "namespaces leaked"
    );
    assert_eq!(
        dir_entries(&env.root.path().join("containers")),
        0,
        "container dirs leaked"
    );
    // Removed containers' directories go through the trash; the reaper empties it and
    // leaves (it lingers 2 s after the last removal).
    let trash = env.root.path().join("trash");
    assert!(
        eventually(10, || dir_entries(&trash) <= 1),
        "trash not emptied: {:?}",
        std::fs::read_dir(&trash).map(|r| r.count())
    );
    assert!(
        eventually(10, || {
            let o = std::process::Command::new("pgrep")
                .args(["-f", &format!("__reap {}", env.root.path().display())])
                .output()
                .unwrap();
            stdout(&o).trim().is_empty()
        }),
        "the trash reaper did not exit"
    );
    // Only the image cache stays: one entry for the one image that ran.
    let left: Vec<String> = std::fs::read_dir(&env.run_dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "images")
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "run-time files leaked: {left:?}");
    assert!(dir_entries(&env.run_dir.join("images")) <= 1);
    let procs = std::process::Command::new("pgrep")
        .args(["-f", &format!("__supervise {}", env.root.path().display())])
        .output()
        .unwrap();
    assert!(
        stdout(&procs).trim().is_empty(),
        "supervisors left: {}",
        stdout(&procs)
    );
}
