//! cgroup v1 specifics (also hybrid hosts): one `gcr/<id>` directory per hierarchy among
//! memory, cpu, cpuacct, pids, freezer and (when asked for) cpuset; limits in
//! `memory.limit_in_bytes`, `memory.memsw.limit_in_bytes` (when swap accounting exists),
//! `cpu.cfs_quota_us`, `cpu.shares`, `pids.max`, `cpuset.cpus`/`cpuset.mems`; figures and
//! the freezer.

use std::path::{Path, PathBuf};

use super::mountinfo::{Hierarchy, BLKIO, CPU, CPUACCT, CPUSET, HUGETLB, MEMORY, PIDS};
use super::{fs, Cgroup, CgroupError, CgroupManager, Resources, Stats};

/// The kernel's "unlimited" for memory limits is a page-rounded i64::MAX; treat anything
/// this large as unlimited.
const UNLIMITED: u64 = 1 << 62;

pub(super) fn create(
    m: &CgroupManager,
    hierarchies: &[Hierarchy],
    rel: &Path,
    res: &Resources,
) -> Result<Cgroup, CgroupError> {
    let mut dirs: Vec<(u8, PathBuf)> = Vec::with_capacity(hierarchies.len());
    let mut result = Ok(());
    for h in hierarchies {
        // A hierarchy with only the cpu controller is needed only for cpu limits.
        if h.ctrls == CPU && !res.wants_cpu() {
            continue;
        }
        // Likewise cpuset, whose new groups must be given CPUs and memory nodes.
        if h.ctrls & CPUSET != 0 && !res.makes_cpuset() {
            continue;
        }
        // blkio and hugetlb only for the OCI configs that limit them.
        if h.ctrls == BLKIO && res.block_io.is_none()
            || h.ctrls == HUGETLB && res.hugetlb.is_empty()
        {
            continue;
        }
        let dir = h.mount.join(rel);
        let parent = dir.parent().unwrap_or(&h.mount).to_path_buf();
        if let Err(e) = m.mkdir_group(&parent, &dir, || Ok(())) {
            result = Err(e);
            break;
        }
        dirs.push((h.ctrls, dir.clone()));
        if h.ctrls & CPUSET != 0 {
            let (c, m) = (res.cpuset_cpus.as_deref(), res.cpuset_mems.as_deref());
            if let Err(e) = super::cpuset::v1_inherit(&h.mount, &dir, c, m) {
                result = Err(e);
                break;
            }
        }
    }
    let cg = Cgroup::v1(dirs);
    let result = result.and_then(|()| apply(&cg, res, true));
    match result {
        Ok(()) => Ok(cg),
        Err(e) => {
            let _ = cg.destroy();
            Err(e)
        }
    }
}

/// An update that limits what a live group was made without (the cpu hierarchy's group
/// exists only for CPU limits, blkio's and hugetlb's only for theirs): the missing
/// directories are made and the group's processes `pids` moved into them (again for those
/// forked meanwhile), so the new limits hold for the container as they would had it
/// started with them.
pub(super) fn join_missing(
    dirs: &[(u8, PathBuf)],
    pids: &[i32],
    res: &Resources,
) -> Result<(), CgroupError> {
    let wanted = |c: u8| {
        c & CPU != 0 && res.wants_cpu()
            || c & BLKIO != 0 && res.block_io.is_some()
            || c & HUGETLB != 0 && !res.hugetlb.is_empty()
    };
    let missing: Vec<&Path> = dirs
        .iter()
        .filter(|(c, d)| wanted(*c) && !d.exists())
        .map(|(_, d)| d.as_path())
        .collect();
    if missing.is_empty() || pids.is_empty() {
        return Ok(());
    }
    // Where the processes are listed: a hierarchy every group has.
    let source = dirs
        .iter()
        .map(|(_, d)| d.join("cgroup.procs"))
        .find(|p| p.exists());
    for d in &missing {
        std::fs::create_dir_all(d).map_err(|e| fs::err("create", d, e))?;
    }
    let mut pids = pids.to_vec();
    for _ in 0..3 {
        let mut moved = false;
        for d in &missing {
            let procs = d.join("cgroup.procs");
            let inside = fs::read_raw(&procs)
                .map(|t| fs::pids_in(&t))
                .unwrap_or_default();
            for pid in pids.iter().filter(|p| !inside.contains(p)) {
                match fs::write_raw(&procs, pid.to_string().as_bytes()) {
                    Ok(()) => moved = true,
                    // Gone meanwhile.
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                    Err(e) => return Err(fs::err("write to", &procs, e)),
                }
            }
        }
        let Some(src) = &source else { break };
        if !moved {
            break;
        }
        pids = fs::read_raw(src)
            .map(|t| fs::pids_in(&t))
            .unwrap_or_default();
    }
    Ok(())
}

/// Writes the limits of `res` into the group; `fresh`: a group just made (no limits yet,
/// nothing to read first), else an update of a live one.
pub(super) fn apply(cg: &Cgroup, res: &Resources, fresh: bool) -> Result<(), CgroupError> {
    if let Some(mem) = res.memory {
        let dir = cg
            .v1_dir(MEMORY)
            .ok_or(CgroupError::NoController("memory"))?;
        let memsw = match res.memory_swap {
            Some(-1) if fresh => None, // a new group has no swap limit
            Some(-1) => Some("-1".to_string()),
            Some(t) => Some(t.to_string()),
            None => Some(mem.saturating_mul(2).to_string()),
        };
        let set_mem = || fs::write(&dir.join("memory.limit_in_bytes"), &mem.to_string());
        let set_memsw = || {
            let Some(v) = &memsw else { return Ok(()) };
            let p = dir.join("memory.memsw.limit_in_bytes");
            match fs::write_raw(&p, v.as_bytes()) {
                Ok(()) => Ok(()),
                // No swap accounting: memory is limited without swap, as Docker does.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(fs::err("write to", &p, e)),
            }
        };
        // memsw may never be below memory: an update that raises memory sets memsw first.
        let raise = !fresh
            && read_opt(Some(dir), "memory.limit_in_bytes")?
                .and_then(|s| s.trim().parse::<u64>().ok())
                .is_some_and(|cur| mem > cur);
        if raise {
            set_memsw()?;
            set_mem()?;
        } else {
            set_mem()?;
            set_memsw()?;
        }
    }
    if res.wants_cpu() {
        let dir = cg.v1_dir(CPU).ok_or(CgroupError::NoController("cpu"))?;
        if let Some(p) = res.cpu_period {
            fs::write(&dir.join("cpu.cfs_period_us"), &p.to_string())?;
        }
        if let Some(q) = res.quota_us() {
            fs::write(&dir.join("cpu.cfs_quota_us"), &q.to_string())?;
        }
        if let Some(s) = res.cpu_shares {
            fs::write(&dir.join("cpu.shares"), &s.max(2).to_string())?;
        }
    }
    if let Some(p) = res.pids.filter(|p| *p > 0) {
        let dir = cg.v1_dir(PIDS).ok_or(CgroupError::NoController("pids"))?;
        fs::write(&dir.join("pids.max"), &p.to_string())?;
    }
    if res.wants_cpuset() && !fresh {
        // (A new group got its lists level by level in `create`.)
        let dir = cg.v1_dir(CPUSET).ok_or_else(|| {
            CgroupError::Invalid(
                "the container was started without a cpuset on this cgroup v1 host; give \
                 --cpuset-cpus/--cpuset-mems when it starts instead"
                    .into(),
            )
        })?;
        super::cpuset::write(dir, res.cpuset_cpus.as_deref(), res.cpuset_mems.as_deref())?;
    }
    super::extra::apply_v1(cg, res)
}

fn read_opt(dir: Option<&Path>, file: &str) -> Result<Option<String>, CgroupError> {
    let Some(d) = dir else { return Ok(None) };
    let p = d.join(file);
    match fs::read_raw(&p) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(fs::err("read", &p, e)),
    }
}

fn num(text: Option<String>) -> Option<u64> {
    let t = text?;
    t.trim().parse().ok()
}

pub(super) fn stats(cg: &Cgroup) -> Result<Stats, CgroupError> {
    stats_from(&|ctrl, file| read_opt(cg.v1_dir(ctrl), file))
}

/// A file of a controller's directory: its text, `None` when it (or the hierarchy) is absent.
pub(super) type Reader<'a> = &'a dyn Fn(u8, &str) -> Result<Option<String>, CgroupError>;

/// [`stats`] from any reader of the group's files (paths, or files held open).
pub(super) fn stats_from(read: Reader) -> Result<Stats, CgroupError> {
    let usage = num(read(MEMORY, "memory.usage_in_bytes")?).unwrap_or(0);
    let inactive = read(MEMORY, "memory.stat")?
        .and_then(|t| fs::keyed(&t, "total_inactive_file"))
        .unwrap_or(0);
    Ok(Stats {
        memory_usage: usage.saturating_sub(inactive),
        memory_limit: num(read(MEMORY, "memory.limit_in_bytes")?).filter(|l| *l < UNLIMITED),
        cpu_usage_ns: num(read(CPUACCT, "cpuacct.usage")?).unwrap_or(0),
        pids_current: num(read(PIDS, "pids.current")?).unwrap_or(0),
        pids_limit: num(read(PIDS, "pids.max")?),
    })
}

pub(super) fn frozen(freezer: &Path) -> bool {
    fs::read_raw(&freezer.join("freezer.state"))
        .map(|s| s.trim() == "FROZEN")
        .unwrap_or(false)
}

pub(super) fn set_frozen(freezer: &Path, freeze: bool) -> Result<(), CgroupError> {
    let state = if freeze { "FROZEN" } else { "THAWED" };
    let p = freezer.join("freezer.state");
    fs::write(&p, state)?;
    // While FREEZING, writing FROZEN again retries the tasks that could not be frozen yet.
    let done = fs::wait_until(5000, || match fs::read_raw(&p) {
        Ok(s) if s.trim() == state => true,
        _ => {
            let _ = fs::write_raw(&p, state.as_bytes());
            false
        }
    });
    if done {
        Ok(())
    } else {
        Err(CgroupError::FreezeTimeout {
            path: freezer.to_path_buf(),
            state: if freeze { "frozen" } else { "thawed" },
        })
    }
}

pub(super) fn oom_killed(memory: &Path) -> bool {
    let Ok(t) = fs::read_raw(&memory.join("memory.oom_control")) else {
        return false;
    };
    fs::keyed(&t, "oom_kill").unwrap_or(0) > 0 || fs::keyed(&t, "under_oom") == Some(1)
}
