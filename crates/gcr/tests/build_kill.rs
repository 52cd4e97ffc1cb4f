//! A killed `gcr build` takes its running step with it: the step runs in a gcr cgroup
//! (`gcr/build-<pid>.<start>-<id>`), and when the build process dies of SIGKILL the step's
//! processes die and the group is removed within seconds. A later build removes build
//! groups whose owner is gone.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{eventually, need_root, Env};

/// Host pids (other than this test's) whose command line contains `marker` as an argument.
fn marked_pids(marker: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == marker.as_bytes()))
        })
        .collect()
}

/// The cgroup mounts of this host, from mountinfo: (mount point, fstype, super options),
/// only mounts of a hierarchy's root.
fn cgroup_mounts() -> Vec<(PathBuf, String, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            let fstype = *post.first()?;
            if (fstype != "cgroup" && fstype != "cgroup2") || pre.get(3) != Some(&"/") {
                return None;
            }
            Some((
                PathBuf::from(pre.get(4)?),
                fstype.to_string(),
                post.get(2).unwrap_or(&"").to_string(),
            ))
        })
        .collect()
}

/// The mounts of the hierarchies gcr uses: the v1 ones of its controllers when there are
/// any (hybrid hosts), else cgroup2.
fn gcr_hierarchies() -> Vec<PathBuf> {
    let mounts = cgroup_mounts();
    let v1: Vec<PathBuf> = mounts
        .iter()
        .filter(|(_, fstype, opts)| {
            fstype == "cgroup"
                && opts
                    .split(',')
                    .any(|o| ["memory", "cpu", "cpuacct", "pids", "freezer"].contains(&o))
        })
        .map(|(m, _, _)| m.clone())
        .collect();
    if !v1.is_empty() {
        return v1;
    }
    mounts
        .into_iter()
        .filter(|(_, fstype, _)| fstype == "cgroup2")
        .map(|(m, _, _)| m)
        .collect()
}

/// The gcr cgroup directories `pid` is in (every hierarchy, v1 and v2).
fn gcr_cgroups_of(pid: i32) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let mounts = cgroup_mounts();
    let mut dirs = Vec::new();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if !path.contains("/gcr/") {
            continue;
        }
        let mount = mounts.iter().find(|(_, fstype, opts)| {
            if ctrls.is_empty() {
                fstype == "cgroup2"
            } else {
                fstype == "cgroup" && ctrls.split(',').all(|c| opts.split(',').any(|o| o == c))
            }
        });
        if let Some((m, _, _)) = mount {
            dirs.push(m.join(path.trim_start_matches('/')));
        }
    }
    dirs
}

/// Every `gcr/build-<owner>.*` directory in any hierarchy.
fn build_groups_of(owner: i32) -> Vec<PathBuf> {
    let prefix = format!("build-{owner}.");
    cgroup_mounts()
        .iter()
        .filter_map(|(m, _, _)| std::fs::read_dir(m.join("gcr")).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .collect()
}

/// Kills every process in cgroup `dir` and removes it (best effort).
fn remove_group(dir: &Path) {
    for _ in 0..100 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        let pids: Vec<i32> = procs
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        for p in &pids {
            // SAFETY: kill(2) of a pid read from the group.
            unsafe { libc::kill(*p, libc::SIGKILL) };
        }
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills the build, the marked step processes and the build's groups, even when the test
/// fails.
struct Cleanup {
    build: Option<Child>,
    marker: String,
    groups: Vec<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut c) = self.build.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for pid in marked_pids(&self.marker) {
            // SAFETY: kill(2) of a process this test's build started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        for g in &self.groups {
            remove_group(g);
        }
    }
}

fn context(dir: &Path, command: &str) {
    std::fs::write(
        dir.join("app.gcr"),
        format!(
            "format: gcr-v1.0\nname: test/sleeper\nversion: \"1.0\"\nbase: test/busybox:1\n\
             build:\n  commands:\n    - {command}\nruntime:\n  cmd: [true]\n"
        ),
    )
    .unwrap();
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("gcr-build-kill-test-")
        .tempdir()
        .unwrap()
}

#[test]
fn killing_the_build_kills_its_step_and_removes_its_cgroup() {
    if !need_root("killing_the_build_kills_its_step_and_removes_its_cgroup") {
        return;
    }
    let env = Env::new();
    let ctx = tempdir();
    // A number of seconds no other process on this host sleeps: the step's marker.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let marker = format!(
        "86{:05}{:06}",
        std::process::id() % 100_000,
        nanos % 1_000_000
    );
    context(ctx.path(), &format!("[sleep, \"{marker}\"]"));
    let log = ctx.path().join("build.log");
    let child = env
        .cmd(&["build", "--no-cache", ctx.path().to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start gcr build");
    let build_pid = child.id() as i32;
    let mut guard = Cleanup {
        build: Some(child),
        marker: marker.clone(),
        groups: Vec::new(),
    };

    let running = eventually(60, || !marked_pids(&marker).is_empty());
    assert!(
        running,
        "the build step never started; build output: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let step = marked_pids(&marker);
    let groups: Vec<PathBuf> = step.iter().flat_map(|&p| gcr_cgroups_of(p)).collect();
    guard.groups = groups.clone();
    guard.groups.extend(build_groups_of(build_pid));
    assert!(
        !groups.is_empty(),
        "build step {step:?} runs in no gcr cgroup (its groups: {:?})",
        step.iter()
            .map(|p| std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap_or_default())
            .collect::<Vec<_>>()
    );
    for g in &groups {
        let name = g.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert!(
            name.starts_with(&format!("build-{build_pid}.")),
            "step cgroup {} is not named after build process {build_pid}",
            g.display()
        );
    }

    // SIGKILL: the build gets no chance to clean up.
    let mut child = guard.build.take().unwrap();
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the killed build exited with {status}");

    let gone = eventually(5, || marked_pids(&marker).is_empty());
    assert!(
        gone,
        "step processes {:?} outlived the killed build",
        marked_pids(&marker)
    );
    let removed = eventually(5, || {
        groups.iter().all(|g| !g.exists()) && build_groups_of(build_pid).is_empty()
    });
    assert!(
        removed,
        "build cgroups outlived the killed build: {:?}",
        groups
            .iter()
            .filter(|g| g.exists())
            .chain(build_groups_of(build_pid).iter())
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_build_removes_the_groups_of_dead_builds() {
    if !need_root("a_build_removes_the_groups_of_dead_builds") {
        return;
    }
    let env = Env::new();
    let ctx = tempdir();
    context(ctx.path(), "[\"true\"]");
    // A first build makes the `gcr` parents of the hierarchies gcr uses.
    env.ok(&["build", "--no-cache", ctx.path().to_str().unwrap()]);
    // A pid that no longer runs (and a start time no process has) owns the leftover group.
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id() as i32;
    dead.wait().unwrap();
    let name = format!("build-{dead_pid}.1-leftover");
    let mut groups = Vec::new();
    for m in gcr_hierarchies() {
        let dir = m.join("gcr").join(&name);
        if m.join("gcr").is_dir() && std::fs::create_dir(&dir).is_ok() {
            groups.push(dir);
        }
    }
    let _guard = Cleanup {
        build: None,
        marker: "no marker: nothing was started".into(),
        groups: groups.clone(),
    };
    assert!(
        !groups.is_empty(),
        "cannot create any gcr cgroup to leave behind"
    );
    env.ok(&["build", "--no-cache", ctx.path().to_str().unwrap()]);
    let left: Vec<&PathBuf> = groups.iter().filter(|g| g.exists()).collect();
    assert!(
        left.is_empty(),
        "a build left dead builds' groups: {left:?}"
    );
}
