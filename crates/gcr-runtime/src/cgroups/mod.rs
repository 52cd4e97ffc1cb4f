//! cgroups for containers, v1 (including hybrid hosts where each v1 controller has its own
//! mount next to an unused cgroup2 mount) and v2.
//!
//! [`CgroupManager::detect`] reads `/proc/self/mountinfo` once; nothing else is scanned.
//! Every container gets `<mount>/gcr/<id>` (v2: one directory; v1: one per hierarchy among
//! memory, cpu, cpuacct, pids and freezer; a cpu-only hierarchy is used only when a cpu limit
//! is requested). The `gcr` parent is created, and on v2 its controllers enabled, only when it
//! is missing. Only requested limits are written, with Docker's units and defaults.
//! A [`Cgroup`] from [`CgroupManager::open`] works in a later process (stop, pause, stats, rm).

mod cgroup;
mod cpuset;
mod detail;
pub mod devices;
mod extra;
mod fs;
mod held;
pub use fs::slurp;
pub use held::Held;
mod mountinfo;
mod support;
pub use support::Support;
mod v1;
mod v2;

#[cfg(test)]
mod tests_cpuset;
#[cfg(test)]
mod tests_detail;
#[cfg(test)]
mod tests_extra;
#[cfg(test)]
mod tests_fake;
#[cfg(test)]
mod tests_held;
#[cfg(test)]
mod tests_host;
#[cfg(test)]
pub(crate) mod testutil;

use std::path::{Path, PathBuf};

pub use cgroup::{Cgroup, Join};
pub use cpuset::{check as check_cpuset, parse_list as parse_cpuset, CpusetKind};
pub use detail::{
    BlkioEntry, BlkioStats, CpuStats, DetailedStats, MemoryEntry, MemoryStats, PidsStats,
};
pub use extra::{BlockIo, Throttle, WeightDevice};
use mountinfo::Layout;

/// Name of the parent group all containers live under.
pub const PARENT: &str = "gcr";

/// Errors from cgroup operations.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No usable cgroup filesystem in mountinfo.
    #[error("no cgroup filesystem is mounted: mount cgroup2 at /sys/fs/cgroup (or the v1 memory, cpu, pids and freezer hierarchies)")]
    NotMounted,
    /// A file operation on cgroupfs failed.
    #[error("cannot {op} {}: {source}{}", path.display(), hint(source))]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The cgroupfs path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A control file had unexpected content.
    #[error("cannot parse {text:?} in {}: the cgroup filesystem is not what gcr expects", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Its content.
        text: String,
    },
    /// The group still holds processes after retries.
    #[error("cgroup {} is still busy: stop the processes inside it first", .0.display())]
    Busy(PathBuf),
    /// A resource value that cannot be applied.
    #[error("invalid resource limit: {0}")]
    Invalid(String),
    /// Freezing or thawing did not complete.
    #[error("cgroup {} did not reach state {state} within 5 s: a process may be stuck in the kernel; retry or kill it", path.display())]
    FreezeTimeout {
        /// The group directory.
        path: PathBuf,
        /// The wanted state.
        state: &'static str,
    },
    /// The operation needs a controller that is not mounted or enabled.
    #[error("the {0} cgroup controller is not available on this host: enable it (v2: cgroup.subtree_control; v1: mount it)")]
    NoController(&'static str),
    /// The container id cannot name a directory.
    #[error("invalid cgroup name {0:?}: use letters, digits, '_', '-' or '.' only")]
    BadId(String),
}

fn hint(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS) => {
            " (run gcr as root on a writable cgroupfs)"
        }
        Some(libc::ENOENT) => " (the controller is not enabled for this group)",
        Some(libc::EBUSY) => " (processes are still inside; stop them first)",
        Some(libc::EINVAL) => " (the kernel rejected the value)",
        _ => "",
    }
}

/// cgroup v1 (including hybrid layouts) or v2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Legacy or hybrid hierarchy: v1 controllers.
    V1,
    /// Unified hierarchy.
    V2,
}

/// Requested limits, Docker units. `None` means "do not touch".
#[derive(Default, Clone, Debug)]
pub struct Resources {
    /// `--memory` in bytes.
    pub memory: Option<u64>,
    /// `--memory-swap`: memory plus swap in bytes, -1 for unlimited swap. Unset with
    /// `memory` set means twice `memory` (as Docker).
    pub memory_swap: Option<i64>,
    /// `--cpus`: quota/period with period 100000 us.
    pub cpus: Option<f64>,
    /// The cfs period in microseconds for `cpus` (OCI `cpu.period`); None: 100000, the
    /// kernel's default, never written.
    pub cpu_period: Option<u64>,
    /// `--cpu-shares` (v1 cpu.shares; v2 converted to cpu.weight).
    pub cpu_shares: Option<u64>,
    /// `--pids-limit`; zero or negative means unlimited.
    pub pids: Option<i64>,
    /// `--cpuset-cpus`: the CPUs the container may run on (`0-2,4`).
    pub cpuset_cpus: Option<String>,
    /// `--cpuset-mems`: the memory nodes it may allocate from.
    pub cpuset_mems: Option<String>,
    /// v1: make the cpuset group even without lists (its parent's then), so that an
    /// update can set them later — runc's behaviour, which the OCI personality keeps.
    pub cpuset_group: bool,
    /// OCI `memory.reservation` (v1 `memory.soft_limit_in_bytes`, v2 `memory.low`).
    pub memory_reservation: Option<i64>,
    /// OCI `memory.swappiness`, 0-100 (v1 only; ignored on v2, as runc).
    pub memory_swappiness: Option<u64>,
    /// OCI `memory.disableOOMKiller` (v1 `memory.oom_control`; ignored on v2, as runc).
    pub disable_oom_killer: bool,
    /// OCI `hugepageLimits`: (page size as in `2MB`, limit in bytes).
    pub hugetlb: Vec<(String, u64)>,
    /// OCI `blockIO`.
    pub block_io: Option<Box<BlockIo>>,
    /// Device rules, applied on v2 with an eBPF program ([`devices::apply`]; an update
    /// replaces the program). v1 ignores them: there the caller keeps its own devices group
    /// (see [`Cgroup::with_v1_dir`]).
    pub devices: Option<Vec<devices::DeviceRule>>,
    /// OCI `unified`: v2 interface files and their values, written last (they win over
    /// the limits above); refused on v1, as runc.
    pub unified: Vec<(String, String)>,
}

impl Resources {
    fn wants_cpu(&self) -> bool {
        self.cpus.is_some() || self.cpu_shares.is_some() || self.cpu_period.is_some()
    }

    fn wants_cpuset(&self) -> bool {
        self.cpuset_cpus.is_some() || self.cpuset_mems.is_some()
    }

    fn makes_cpuset(&self) -> bool {
        self.wants_cpuset() || self.cpuset_group
    }

    fn validate(&self) -> Result<(), CgroupError> {
        if let Some(c) = self.cpus {
            if !(c.is_finite() && c > 0.0 && c <= 100_000.0) {
                return Err(CgroupError::Invalid(format!(
                    "--cpus {c} must be a positive number of CPUs"
                )));
            }
        }
        if let Some(s) = self.memory_swap {
            match self.memory {
                None if s != -1 => {
                    return Err(CgroupError::Invalid(
                        "--memory-swap needs --memory to be set as well".to_string(),
                    ))
                }
                Some(m) if s != -1 && (s < 0 || (s as u64) < m) => {
                    return Err(CgroupError::Invalid(format!(
                        "--memory-swap {s} must be at least --memory {m} (or -1 for unlimited swap)"
                    )))
                }
                _ => {}
            }
        }
        if self.memory == Some(0) {
            return Err(CgroupError::Invalid(
                "--memory 0 leaves no memory; give a positive size".to_string(),
            ));
        }
        for (v, kind, label) in [
            (&self.cpuset_cpus, CpusetKind::Cpus, "--cpuset-cpus"),
            (&self.cpuset_mems, CpusetKind::Mems, "--cpuset-mems"),
        ] {
            if let Some(v) = v {
                cpuset::check(label, v, kind)?;
            }
        }
        if self.cpu_shares == Some(0) {
            return Err(CgroupError::Invalid(
                "--cpu-shares must be at least 2".to_string(),
            ));
        }
        if let Some(d) = &self.devices {
            devices::check(d)?;
        }
        self.validate_extra()
    }

    /// cfs quota in microseconds for the period (100 ms unless `cpu_period`), as Docker
    /// computes it.
    fn quota_us(&self) -> Option<u64> {
        let period = self.period_us();
        self.cpus
            .map(|c| ((c * 1e9).round() as u64 * period) / 1_000_000_000)
            .map(|q| q.max(1000))
    }

    fn period_us(&self) -> u64 {
        self.cpu_period.unwrap_or(CPU_PERIOD_US)
    }
}

/// The cfs period gcr uses (the kernel default, so it is never written unless an OCI
/// config gives another).
pub const CPU_PERIOD_US: u64 = 100_000;

/// Resource usage figures for `stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Memory in use, excluding inactive file cache (as `docker stats`).
    pub memory_usage: u64,
    /// Memory limit, `None` when unlimited.
    pub memory_limit: Option<u64>,
    /// Total CPU time in nanoseconds.
    pub cpu_usage_ns: u64,
    /// Number of tasks.
    pub pids_current: u64,
    /// pids limit, `None` when unlimited.
    pub pids_limit: Option<u64>,
}

/// The cgroup layout of this host, detected once.
#[derive(Clone, Debug)]
pub struct CgroupManager {
    layout: Layout,
    #[cfg(test)]
    mkdir_hook: Option<fn(&Path)>,
}

impl CgroupManager {
    /// Detects the layout from `/proc/self/mountinfo` (one read, no scanning).
    pub fn detect() -> Result<Self, CgroupError> {
        let p = Path::new("/proc/self/mountinfo");
        let text = fs::read_with_capacity(p, 16 * 1024).map_err(|e| fs::err("read", p, e))?;
        Self::from_mountinfo(&text)
    }

    /// Builds a manager from mountinfo text; the mount points in it are the cgroupfs roots
    /// (tests point them at a fake cgroupfs in a temp dir).
    pub fn from_mountinfo(text: &str) -> Result<Self, CgroupError> {
        Ok(Self {
            layout: mountinfo::parse(text)?,
            #[cfg(test)]
            mkdir_hook: None,
        })
    }

    /// v1 (including hybrid) or v2.
    pub fn version(&self) -> CgroupVersion {
        match self.layout {
            Layout::V1 { .. } => CgroupVersion::V1,
            Layout::V2 { .. } => CgroupVersion::V2,
        }
    }

    /// Creates `gcr/<id>` and applies the requested limits. On error nothing created stays.
    pub fn create(&self, id: &str, res: &Resources) -> Result<Cgroup, CgroupError> {
        check_id(id)?;
        res.validate()?;
        match &self.layout {
            Layout::V2 { root } => v2::create(self, root, &Path::new(PARENT).join(id), res),
            Layout::V1 { hierarchies } => {
                v1::create(self, hierarchies, &Path::new(PARENT).join(id), res)
            }
        }
    }

    /// Creates the group at `rel` (relative to each cgroupfs root, e.g. `default/ID` from an
    /// OCI `cgroupsPath`; missing parents are made) and applies the limits. On error the
    /// group itself does not stay (parents made on the way do, as with runc).
    pub fn create_at(&self, rel: &Path, res: &Resources) -> Result<Cgroup, CgroupError> {
        check_rel(rel)?;
        res.validate()?;
        match &self.layout {
            Layout::V2 { root } => v2::create(self, root, rel, res),
            Layout::V1 { hierarchies } => v1::create(self, hierarchies, rel, res),
        }
    }

    /// The group at `rel` (see [`CgroupManager::create_at`]), without touching the filesystem.
    pub fn open_at(&self, rel: &Path) -> Cgroup {
        match &self.layout {
            Layout::V2 { root } => Cgroup::v2(root.join(rel)),
            Layout::V1 { hierarchies } => Cgroup::v1(
                hierarchies
                    .iter()
                    .map(|h| (h.ctrls, h.mount.join(rel)))
                    .collect(),
            ),
        }
    }

    /// The `gcr` parent directory in every hierarchy gcr uses (v2: one; v1: one per
    /// hierarchy), whether or not it exists yet: where a later process finds the groups of
    /// others (e.g. leftovers of a killed build).
    pub fn parent_dirs(&self) -> Vec<PathBuf> {
        match &self.layout {
            Layout::V2 { root } => vec![root.join(PARENT)],
            Layout::V1 { hierarchies } => {
                hierarchies.iter().map(|h| h.mount.join(PARENT)).collect()
            }
        }
    }

    /// The group of container `id`, without touching the filesystem.
    pub fn open(&self, id: &str) -> Cgroup {
        match &self.layout {
            Layout::V2 { root } => Cgroup::v2(root.join(PARENT).join(id)),
            Layout::V1 { hierarchies } => Cgroup::v1(
                hierarchies
                    .iter()
                    .map(|h| (h.ctrls, h.mount.join(PARENT).join(id)))
                    .collect(),
            ),
        }
    }

    fn mkdir(&self, path: &Path) -> std::io::Result<bool> {
        let created = fs::mkdir(path)?;
        #[cfg(test)]
        if let (true, Some(hook)) = (created, self.mkdir_hook) {
            hook(path);
        }
        Ok(created)
    }

    /// Creates `path` and its missing ancestors.
    fn mkdir_all(&self, path: &Path) -> std::io::Result<bool> {
        match self.mkdir(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(up) = path.parent() {
                    self.mkdir_all(up)?;
                }
                self.mkdir(path)
            }
            r => r,
        }
    }

    /// Creates `parent/<id>`; when `parent` is missing, creates it first and calls
    /// `on_parent_created`. Returns whether the group directory was new (an existing one, a
    /// leftover of a crashed run with the same id, is reused).
    fn mkdir_group(
        &self,
        parent: &Path,
        dir: &Path,
        on_parent_created: impl FnOnce() -> Result<(), CgroupError>,
    ) -> Result<bool, CgroupError> {
        match self.mkdir(dir) {
            Ok(new) => Ok(new),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Set the parent up even when a concurrent gcr created it first: its
                // controller setup may still be in flight, and repeating it is harmless.
                self.mkdir_all(parent)
                    .map_err(|e| fs::err("create", parent, e))?;
                on_parent_created()?;
                self.mkdir(dir).map_err(|e| fs::err("create", dir, e))
            }
            Err(e) => Err(fs::err("create", dir, e)),
        }
    }
}

/// A relative group path: normal components only, each a valid name.
fn check_rel(rel: &Path) -> Result<(), CgroupError> {
    let mut n = 0;
    for c in rel.components() {
        match c {
            std::path::Component::Normal(s) => check_id(&s.to_string_lossy())?,
            _ => return Err(CgroupError::BadId(rel.display().to_string())),
        }
        n += 1;
    }
    if n == 0 {
        return Err(CgroupError::BadId(rel.display().to_string()));
    }
    Ok(())
}

fn check_id(id: &str) -> Result<(), CgroupError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(CgroupError::BadId(id.to_string()))
    }
}
