//! The cgroups of build steps: each step runs in `gcr/build-<pid>.<start>-<id>`, named
//! after the `gcr build` process that owns it (its pid and start time, in clock ticks since
//! boot, from `/proc/<pid>/stat`), so that any later gcr process can tell a group whose
//! build is gone ([`reap_leftovers`]) from one of a build still running, even after the
//! pid has been reused.

use std::path::Path;

use gcr_runtime::cgroups::CgroupManager;

/// Prefix of every build step's group name.
const PREFIX: &str = "build-";

/// The start time of process `pid` (field 22 of `/proc/<pid>/stat`), `None` when it does
/// not exist.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The group name of step `id` of this process's build.
pub(crate) fn name(id: &str) -> String {
    let pid = std::process::id();
    let start = start_time(pid).unwrap_or(0);
    let short: String = id.chars().take(12).collect();
    format!("{PREFIX}{pid}.{start}-{short}")
}

/// The owner (pid, start time) a step group's name records; `None` for other groups.
fn owner(name: &str) -> Option<(u32, u64)> {
    let rest = name.strip_prefix(PREFIX)?;
    let (owner, _) = rest.split_once('-')?;
    let (pid, start) = owner.split_once('.')?;
    Some((pid.parse().ok()?, start.parse().ok()?))
}

/// Whether the build that made group `name` is gone (its pid is free or belongs to a
/// process started at another time; a start time of 0, recorded when the owner could not
/// read its own, compares only the pid).
fn orphaned(name: &str) -> bool {
    owner(name).is_some_and(|(pid, start)| match start_time(pid) {
        None => true,
        Some(now) => start != 0 && now != start,
    })
}

/// Kills the processes of every build step group whose build is gone and removes the
/// groups (each hierarchy of each group); returns the names of the groups removed. Groups
/// of running builds and of containers are left alone; errors are skipped (the next call
/// retries).
pub fn reap_leftovers() -> Vec<String> {
    let Ok(manager) = CgroupManager::detect() else {
        return Vec::new();
    };
    reap_in(&manager)
}

fn reap_in(manager: &CgroupManager) -> Vec<String> {
    let mut names: Vec<String> = manager
        .parent_dirs()
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| orphaned(n))
        .collect();
    names.sort();
    names.dedup();
    names.retain(|n| {
        let group = manager.open(n);
        group.kill_all(libc::SIGKILL);
        // Killed processes leave the group as they exit: retry for up to 2 s.
        for _ in 0..20 {
            if group.destroy().is_ok() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        group.paths().iter().all(|p| !Path::exists(p))
    });
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_record_this_process_as_a_live_owner() {
        let n = name("0123456789abcdef0123");
        assert!(
            n.starts_with(&format!("build-{}.", std::process::id())),
            "{n}"
        );
        assert!(n.ends_with("-0123456789ab"), "{n}");
        let (pid, start) = owner(&n).unwrap();
        assert_eq!(pid, std::process::id());
        assert!(start > 0, "{n}");
        assert!(!orphaned(&n), "{n}");
    }

    #[test]
    fn dead_or_reused_owners_make_orphans_and_other_groups_are_not_build_groups() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(orphaned(&format!("build-{pid}.5-abc")));
        // A live pid whose start time differs: the pid was reused.
        let me = std::process::id();
        let start = start_time(me).unwrap();
        assert!(orphaned(&format!("build-{me}.{}-abc", start + 1)));
        assert!(!orphaned(&format!("build-{me}.0-abc")));
        assert!(orphaned(&format!("build-{pid}.0-abc")));
        for other in ["0123abcd", "build-", "build-x.1-a", "build-12-a", "gcr"] {
            assert!(!orphaned(other), "{other}");
        }
    }

    #[test]
    fn start_time_of_live_and_missing_processes() {
        assert!(start_time(std::process::id()).is_some());
        assert_eq!(start_time(u32::MAX), None);
    }

    #[test]
    fn reaping_removes_only_orphaned_build_groups() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cg");
        std::fs::create_dir(&root).unwrap();
        let mi = format!(
            "30 20 0:26 / {} rw,nosuid - cgroup2 cgroup2 rw\n",
            root.display()
        );
        let manager = CgroupManager::from_mountinfo(&mi).unwrap();
        let parent = root.join("gcr");
        let live = name("live");
        for n in ["build-4194304999.7-dead", live.as_str(), "0123container"] {
            std::fs::create_dir_all(parent.join(n)).unwrap();
        }
        assert_eq!(
            reap_in(&manager),
            vec!["build-4194304999.7-dead".to_string()]
        );
        assert!(!parent.join("build-4194304999.7-dead").exists());
        assert!(parent.join(&live).is_dir());
        assert!(parent.join("0123container").is_dir());
    }
}
