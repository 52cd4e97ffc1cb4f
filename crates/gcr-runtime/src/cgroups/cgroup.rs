//! One container's cgroup: joining it, freezing, figures, OOM detection, killing everything
//! inside and removing it. Works the same for a group just created and for one opened by a
//! later process.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::mountinfo::{CPUACCT, FREEZER, MEMORY, PIDS};
use super::{fs, v1, v2, CgroupError, Stats};

/// How a new process enters a group. Neither way writes a pid to `cgroup.procs`, which
/// takes the kernel's global threadgroup lock and waits for an RCU grace period: about
/// 12 ms on this kind of VM, against 0.15 ms for the ways below.
pub enum Join {
    /// v2: `clone3(CLONE_INTO_CGROUP)` with this directory descriptor.
    IntoCgroup(OwnedFd),
    /// v1: the (single-threaded) child writes "0" to each hierarchy's `tasks` file, which
    /// moves only the calling thread and needs no global lock.
    SelfTasks(Vec<OwnedFd>),
}

impl Join {
    /// Child side of [`Join::SelfTasks`]: moves the calling thread into every hierarchy.
    /// Returns the errno of the first failed write.
    pub(crate) fn enter_self(&self) -> Result<(), i32> {
        let Join::SelfTasks(fds) = self else {
            return Ok(());
        };
        for fd in fds {
            // SAFETY: a one-byte write from a static buffer to a descriptor we hold.
            if unsafe { libc::write(fd.as_raw_fd(), c"0".as_ptr().cast(), 1) } != 1 {
                return Err(crate::sys::errno());
            }
        }
        Ok(())
    }

    /// The descriptors the child must keep open.
    pub(crate) fn raw_fds(&self) -> Vec<RawFd> {
        match self {
            Join::IntoCgroup(_) => Vec::new(),
            Join::SelfTasks(fds) => fds.iter().map(|f| f.as_raw_fd()).collect(),
        }
    }
}

/// A container's cgroup (v2: one directory; v1: one per hierarchy).
#[derive(Clone, Debug)]
pub struct Cgroup {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    V2(PathBuf),
    V1(Vec<(u8, PathBuf)>),
}

impl Cgroup {
    pub(super) fn v2(dir: PathBuf) -> Self {
        Self {
            kind: Kind::V2(dir),
        }
    }

    pub(super) fn v1(dirs: Vec<(u8, PathBuf)>) -> Self {
        Self {
            kind: Kind::V1(dirs),
        }
    }

    pub(super) fn v1_dir(&self, ctrl: u8) -> Option<&Path> {
        match &self.kind {
            Kind::V1(dirs) => dirs
                .iter()
                .find(|(c, _)| c & ctrl != 0)
                .map(|(_, d)| d.as_path()),
            Kind::V2(_) => None,
        }
    }

    /// The group's directory on v2; `None` on v1.
    pub(super) fn v2_dir(&self) -> Option<&Path> {
        match &self.kind {
            Kind::V2(d) => Some(d.as_path()),
            Kind::V1(_) => None,
        }
    }

    /// The same group with one more v1 directory (a hierarchy this crate does not manage,
    /// e.g. a devices group its caller made): joined, listed and destroyed with the others.
    /// On v2 the group is returned as it is.
    pub fn with_v1_dir(mut self, dir: PathBuf) -> Self {
        if let Kind::V1(dirs) = &mut self.kind {
            dirs.push((0, dir));
        }
        self
    }

    /// Changes the limits of a live group (`gcr-runc update`); what `res` leaves `None`
    /// stays as it is.
    pub fn update(&self, res: &super::Resources) -> Result<(), CgroupError> {
        res.validate()?;
        match &self.kind {
            Kind::V2(d) => super::v2::update(d, res),
            Kind::V1(dirs) => {
                v1::join_missing(dirs, &self.procs(), res)?;
                super::v1::apply(self, res, false)
            }
        }
    }

    /// The group directories (v2: one; v1: one per hierarchy), e.g. for diagnostics.
    pub fn paths(&self) -> Vec<&Path> {
        match &self.kind {
            Kind::V2(d) => vec![d.as_path()],
            Kind::V1(dirs) => dirs.iter().map(|(_, d)| d.as_path()).collect(),
        }
    }

    /// Moves `pid` into the group (v1: into every hierarchy whose directory exists).
    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        let s = pid.to_string();
        match &self.kind {
            Kind::V2(d) => fs::write(&d.join("cgroup.procs"), &s),
            Kind::V1(dirs) => {
                for (_, d) in dirs {
                    let p = d.join("cgroup.procs");
                    match fs::write_raw(&p, s.as_bytes()) {
                        Ok(()) => {}
                        // A hierarchy gcr did not use for this container (cpu without limits).
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !d.exists() => {}
                        Err(e) => return Err(fs::err("write to", &p, e)),
                    }
                }
                Ok(())
            }
        }
    }

    /// How a process about to be cloned enters the group (see [`Join`]). Opens the files
    /// now, in the parent, so the child only writes.
    pub fn join(&self) -> Result<Join, CgroupError> {
        match &self.kind {
            Kind::V2(d) => self
                .v2_dir_fd()
                .map(Join::IntoCgroup)
                .ok_or_else(|| fs::err("open", d, std::io::Error::last_os_error())),
            Kind::V1(dirs) => {
                let mut fds = Vec::with_capacity(dirs.len());
                for (_, d) in dirs {
                    let p = d.join("tasks");
                    match std::fs::OpenOptions::new()
                        .write(true)
                        .custom_flags(libc::O_CLOEXEC)
                        .open(&p)
                    {
                        Ok(f) => fds.push(OwnedFd::from(f)),
                        // A hierarchy gcr did not use for this container (cpu without limits).
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !d.exists() => {}
                        Err(e) => return Err(fs::err("open", &p, e)),
                    }
                }
                Ok(Join::SelfTasks(fds))
            }
        }
    }

    /// An fd of the v2 group directory for `clone3(CLONE_INTO_CGROUP)`; `None` on v1 or if it
    /// cannot be opened.
    pub fn v2_dir_fd(&self) -> Option<OwnedFd> {
        let Kind::V2(d) = &self.kind else { return None };
        let c = std::ffi::CString::new(d.as_os_str().as_bytes()).ok()?;
        // SAFETY: NUL-terminated path; the returned fd is owned by the OwnedFd below.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        // SAFETY: fd is a fresh descriptor we own.
        (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn freezer(&self) -> Result<&Path, CgroupError> {
        self.v1_dir(FREEZER)
            .ok_or(CgroupError::NoController("freezer"))
    }

    /// Freezes every process and waits until the kernel reports the group frozen.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        match &self.kind {
            Kind::V2(d) => v2::set_frozen(d, true),
            Kind::V1(_) => v1::set_frozen(self.freezer()?, true),
        }
    }

    /// Thaws the group and waits until it is running again.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        match &self.kind {
            Kind::V2(d) => v2::set_frozen(d, false),
            Kind::V1(_) => v1::set_frozen(self.freezer()?, false),
        }
    }

    /// Whether the group is (completely) frozen.
    pub fn is_frozen(&self) -> bool {
        match &self.kind {
            Kind::V2(d) => v2::frozen(d),
            Kind::V1(_) => self.v1_dir(FREEZER).is_some_and(v1::frozen),
        }
    }

    /// Memory, CPU and pids figures. Controllers that are missing give zeros / no limit.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        match &self.kind {
            Kind::V2(d) => v2::stats(d),
            Kind::V1(_) => v1::stats(self),
        }
    }

    /// runc's `events --stats` figures (see [`super::DetailedStats`]).
    pub fn detailed_stats(&self) -> Result<super::DetailedStats, CgroupError> {
        match &self.kind {
            Kind::V2(d) => super::detail::v2(d),
            Kind::V1(_) => super::detail::v1(self),
        }
    }

    /// Block I/O bytes of the group: v2's `io.stat` alone (one file, where
    /// [`Cgroup::detailed_stats`] reads every controller's); empty on v1 (gcr makes no v1
    /// blkio group for a container).
    pub fn block_io(&self) -> super::BlkioStats {
        match &self.kind {
            Kind::V2(d) => super::detail::block_io_v2(d),
            Kind::V1(_) => super::BlkioStats::default(),
        }
    }

    /// How many processes of the group the kernel OOM killer has killed so far (0 without
    /// a memory controller).
    pub fn oom_kills(&self) -> u64 {
        match &self.kind {
            Kind::V2(d) => super::detail::oom_kills_v2(d),
            Kind::V1(_) => self.v1_dir(MEMORY).map_or(0, super::detail::oom_kills_v1),
        }
    }

    /// Whether the kernel OOM killer killed a process of the group (read it before
    /// [`Cgroup::destroy`]).
    pub fn oom_killed(&self) -> bool {
        match &self.kind {
            Kind::V2(d) => v2::oom_killed(d),
            Kind::V1(_) => self.v1_dir(MEMORY).is_some_and(v1::oom_killed),
        }
    }

    /// All pids in the group (empty when it does not exist).
    pub fn procs(&self) -> Vec<i32> {
        let dirs: Vec<&Path> = match &self.kind {
            Kind::V2(d) => vec![d.as_path()],
            Kind::V1(_) => [PIDS, FREEZER, MEMORY, CPUACCT]
                .iter()
                .filter_map(|c| self.v1_dir(*c))
                .collect(),
        };
        dirs.iter()
            .find_map(|d| fs::read_raw(&d.join("cgroup.procs")).ok())
            .map(|t| fs::pids_in(&t))
            .unwrap_or_default()
    }

    /// Sends `sig` to every process. SIGKILL on v2 uses `cgroup.kill` when the kernel has it;
    /// otherwise SIGKILL freezes the group first (so nothing forks away), kills each pid and
    /// thaws it (a paused group too, so the kill takes effect on v1). Other signals go to each
    /// pid directly and leave a paused group paused.
    pub fn kill_all(&self, sig: i32) {
        if sig != libc::SIGKILL {
            self.signal_each(sig);
            return;
        }
        if let Kind::V2(d) = &self.kind {
            if v2::kill(d) {
                return;
            }
        }
        let was_frozen = self.is_frozen();
        let froze = !was_frozen && self.freeze().is_ok();
        self.signal_each(sig);
        if froze || was_frozen {
            let _ = self.thaw();
        }
    }

    fn signal_each(&self, sig: i32) {
        for pid in self.procs() {
            // SAFETY: kill(2) with a pid read from the group; no memory is touched.
            unsafe { libc::kill(pid, sig) };
        }
    }

    /// Removes every directory of the group (the `gcr` parent stays). Missing directories are
    /// fine; a group still busy is retried for about 100 ms.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        match &self.kind {
            Kind::V2(d) => fs::rmdir_cgroup(d),
            Kind::V1(dirs) => {
                let mut first_err = None;
                for (_, d) in dirs {
                    if let Err(e) = fs::rmdir_cgroup(d) {
                        first_err.get_or_insert(e);
                    }
                }
                first_err.map_or(Ok(()), Err)
            }
        }
    }
}
