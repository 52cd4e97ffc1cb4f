//! What this host's cgroups can limit beyond memory, CPU and pids, read from the cgroupfs
//! roots (no group is made): Docker's `sysinfo` checks, so that an engine can discard a
//! limit the kernel cannot apply with Docker's warning instead of failing at start.
//!
//! v1: the memory hierarchy's `memory.soft_limit_in_bytes`, `memory.swappiness`,
//! `memory.oom_control`; the blkio hierarchy's weight files (CFQ's `blkio.weight` or BFQ's
//! `blkio.bfq.weight`, which need such an I/O scheduler) and `blkio.throttle.*`. v2: the
//! memory and io controllers in the root's `cgroup.controllers` (swappiness and the OOM
//! killer switch do not exist on v2).

use std::path::Path;

use super::mountinfo::{Layout, BLKIO, MEMORY};
use super::CgroupManager;

/// The optional limits the host supports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Support {
    /// `--memory-reservation` (v1 `memory.soft_limit_in_bytes`, v2 `memory.low`).
    pub memory_reservation: bool,
    /// `--memory-swappiness` (v1 only).
    pub memory_swappiness: bool,
    /// `--oom-kill-disable` (v1 only).
    pub oom_kill_disable: bool,
    /// `--blkio-weight` (v1 CFQ/BFQ, v2 io).
    pub blkio_weight: bool,
    /// `--blkio-weight-device`.
    pub blkio_weight_device: bool,
    /// `--device-read-bps` and the other throttles.
    pub blkio_throttle: bool,
}

impl CgroupManager {
    /// The optional limits this host can apply (see [`Support`]).
    pub fn support(&self) -> Support {
        match &self.layout {
            Layout::V2 { root } => {
                let ctrls =
                    std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
                let has = |c: &str| ctrls.split_whitespace().any(|w| w == c);
                let io = has("io");
                Support {
                    memory_reservation: has("memory"),
                    memory_swappiness: false,
                    oom_kill_disable: false,
                    blkio_weight: io,
                    blkio_weight_device: io,
                    blkio_throttle: io,
                }
            }
            Layout::V1 { hierarchies } => {
                let mount = |bit: u8| {
                    hierarchies
                        .iter()
                        .find(|h| h.ctrls & bit != 0)
                        .map(|h| h.mount.as_path())
                };
                let has = |m: Option<&Path>, files: &[&str]| {
                    m.is_some_and(|m| files.iter().any(|f| m.join(f).exists()))
                };
                let (mem, blkio) = (mount(MEMORY), mount(BLKIO));
                Support {
                    memory_reservation: has(mem, &["memory.soft_limit_in_bytes"]),
                    memory_swappiness: has(mem, &["memory.swappiness"]),
                    oom_kill_disable: has(mem, &["memory.oom_control"]),
                    blkio_weight: has(blkio, &["blkio.weight", "blkio.bfq.weight"]),
                    blkio_weight_device: has(
                        blkio,
                        &["blkio.weight_device", "blkio.bfq.weight_device"],
                    ),
                    blkio_throttle: has(blkio, &["blkio.throttle.read_bps_device"]),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, files: &[&str]) {
        std::fs::create_dir_all(dir).unwrap();
        for f in files {
            std::fs::write(dir.join(f), "").unwrap();
        }
    }

    #[test]
    fn v1_support_follows_the_files_of_the_hierarchies() {
        let tmp = tempfile::tempdir().unwrap();
        let (mem, blkio) = (tmp.path().join("memory"), tmp.path().join("blkio"));
        touch(&mem, &["memory.soft_limit_in_bytes", "memory.oom_control"]);
        // mq-deadline: throttles, no weights.
        touch(&blkio, &["blkio.throttle.read_bps_device"]);
        let mi = format!(
            "32 31 0:29 / {} rw - cgroup cgroup rw,memory\n\
             33 31 0:30 / {} rw - cgroup cgroup rw,blkio\n",
            mem.display(),
            blkio.display()
        );
        let m = CgroupManager::from_mountinfo(&mi).unwrap();
        let s = m.support();
        assert!(s.memory_reservation && s.oom_kill_disable && s.blkio_throttle);
        assert!(!s.memory_swappiness && !s.blkio_weight && !s.blkio_weight_device);
        // BFQ's files count as weights.
        touch(&blkio, &["blkio.bfq.weight", "blkio.bfq.weight_device"]);
        let s = m.support();
        assert!(s.blkio_weight && s.blkio_weight_device);
    }

    #[test]
    fn v1_without_blkio_supports_no_block_io_limits() {
        let tmp = tempfile::tempdir().unwrap();
        let mem = tmp.path().join("memory");
        touch(&mem, &["memory.swappiness"]);
        let mi = format!(
            "32 31 0:29 / {} rw - cgroup cgroup rw,memory\n",
            mem.display()
        );
        let s = CgroupManager::from_mountinfo(&mi).unwrap().support();
        assert!(s.memory_swappiness && !s.memory_reservation);
        assert!(!s.blkio_weight && !s.blkio_throttle);
    }

    #[test]
    fn v2_support_follows_the_root_controllers() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cg");
        touch(&root, &[]);
        std::fs::write(root.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
        let mi = format!("30 20 0:26 / {} rw - cgroup2 cgroup2 rw\n", root.display());
        let m = CgroupManager::from_mountinfo(&mi).unwrap();
        let s = m.support();
        assert!(s.memory_reservation && s.blkio_weight && s.blkio_throttle);
        assert!(!s.memory_swappiness && !s.oom_kill_disable, "v1 only");
        std::fs::write(root.join("cgroup.controllers"), "cpu pids\n").unwrap();
        assert_eq!(m.support(), Support::default());
    }
}
