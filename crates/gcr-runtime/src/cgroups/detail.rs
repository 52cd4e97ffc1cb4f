//! Detailed figures of a group in the shape of runc's `events --stats` (cpu usage with its
//! per-CPU split and throttling, memory usage/swap/kernel entries with their limits, peaks
//! and fail counts, pids, block I/O) and the OOM-kill counter `events` watches.
//!
//! v1 reads the group's directory in each hierarchy (cpuacct, cpu, memory, pids); v2 reads
//! `cpu.stat`, `memory.*`, `pids.*` and `io.stat` of its one directory. A file the kernel
//! does not offer (no swap accounting, no kmem, `memory.peak` before 5.19) leaves its entry
//! out or zero, as runc does.

use std::path::Path;

use super::mountinfo::{CPU, CPUACCT, MEMORY, PIDS};
use super::{fs, Cgroup, CgroupError};

/// CPU figures, nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuStats {
    pub total: u64,
    pub percpu: Vec<u64>,
    pub percpu_kernel: Vec<u64>,
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
    /// CFS periods, throttled periods and throttled time (ns).
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
}

/// One memory counter: usage, peak, limit (`u64::MAX` or the kernel's page-rounded
/// `i64::MAX` when unlimited, as read) and how often the limit was hit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryEntry {
    pub usage: u64,
    pub max: u64,
    pub limit: u64,
    pub failcnt: u64,
}

/// Memory figures: the group's usage, swap (v1: memory+swap, as runc reports it on both
/// versions), kernel and kernel TCP memory where the kernel accounts them, and
/// `memory.stat` as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: Option<MemoryEntry>,
    pub kernel: Option<MemoryEntry>,
    pub kernel_tcp: Option<MemoryEntry>,
    pub raw: Vec<(String, u64)>,
}

/// Tasks in the group and their limit (`None`: unlimited).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PidsStats {
    pub current: u64,
    pub limit: Option<u64>,
}

/// One block I/O counter of a device (`op`: Read, Write, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// Bytes and operations per device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlkioStats {
    pub service_bytes: Vec<BlkioEntry>,
    pub serviced: Vec<BlkioEntry>,
}

/// Everything [`Cgroup::detailed_stats`] reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DetailedStats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    pub blkio: BlkioStats,
}

fn read_opt(dir: Option<&Path>, file: &str) -> Result<Option<String>, CgroupError> {
    let Some(d) = dir else { return Ok(None) };
    let p = d.join(file);
    match fs::read_with_capacity(&p, 4096) {
        Ok(s) => Ok(Some(s)),
        // ENOENT: no such controller file; EOPNOTSUPP/EINVAL: kmem files on kernels
        // that keep them but no longer account.
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP) | Some(libc::EINVAL)
                ) =>
        {
            Ok(None)
        }
        Err(e) => Err(fs::err("read", &p, e)),
    }
}

fn num(text: Option<&str>) -> Option<u64> {
    let t = text?.trim();
    if t == "max" {
        return Some(u64::MAX);
    }
    t.parse().ok()
}

/// Every `key value` line of a flat keyed file.
fn pairs(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn ticks_to_ns(ticks: u64) -> u64 {
    // SAFETY: sysconf with a constant name has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    ticks.saturating_mul(1_000_000_000 / hz)
}

/// v1: one memory counter from `<prefix>.usage_in_bytes`, `.max_usage_in_bytes`,
/// `.limit_in_bytes`, `.failcnt`; `None` when the kernel has no such counter.
fn v1_entry(dir: Option<&Path>, prefix: &str) -> Result<Option<MemoryEntry>, CgroupError> {
    let Some(usage) = read_opt(dir, &format!("{prefix}.usage_in_bytes"))? else {
        return Ok(None);
    };
    let get = |f: &str| -> Result<u64, CgroupError> {
        Ok(num(read_opt(dir, &format!("{prefix}.{f}"))?.as_deref()).unwrap_or(0))
    };
    Ok(Some(MemoryEntry {
        usage: num(Some(&usage)).unwrap_or(0),
        max: get("max_usage_in_bytes")?,
        limit: get("limit_in_bytes")?,
        failcnt: get("failcnt")?,
    }))
}

/// Rows of `cpuacct.usage_all` (`cpu user system`, ns): (user, system) per CPU.
fn usage_all(text: &str) -> (Vec<u64>, Vec<u64>) {
    let mut user = Vec::new();
    let mut sys = Vec::new();
    for l in text.lines().skip(1) {
        let f: Vec<u64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if let [_, u, s] = f.as_slice() {
            user.push(*u);
            sys.push(*s);
        }
    }
    (user, sys)
}

pub(super) fn v1(cg: &Cgroup) -> Result<DetailedStats, CgroupError> {
    let acct = cg.v1_dir(CPUACCT);
    let mut cpu = CpuStats {
        total: num(read_opt(acct, "cpuacct.usage")?.as_deref()).unwrap_or(0),
        percpu: read_opt(acct, "cpuacct.usage_percpu")?
            .map(|t| {
                t.split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect()
            })
            .unwrap_or_default(),
        ..Default::default()
    };
    if let Some(t) = read_opt(acct, "cpuacct.usage_all")? {
        (cpu.percpu_user, cpu.percpu_kernel) = usage_all(&t);
    }
    if let Some(t) = read_opt(acct, "cpuacct.stat")? {
        cpu.user = ticks_to_ns(fs::keyed(&t, "user").unwrap_or(0));
        cpu.kernel = ticks_to_ns(fs::keyed(&t, "system").unwrap_or(0));
    }
    if let Some(t) = read_opt(cg.v1_dir(CPU), "cpu.stat")? {
        cpu.periods = fs::keyed(&t, "nr_periods").unwrap_or(0);
        cpu.throttled_periods = fs::keyed(&t, "nr_throttled").unwrap_or(0);
        cpu.throttled_time = fs::keyed(&t, "throttled_time").unwrap_or(0);
    }
    let mem = cg.v1_dir(MEMORY);
    let raw = read_opt(mem, "memory.stat")?
        .map(|t| pairs(&t))
        .unwrap_or_default();
    let memory = MemoryStats {
        cache: raw
            .iter()
            .find(|(k, _)| k == "total_cache")
            .map_or(0, |(_, v)| *v),
        usage: v1_entry(mem, "memory")?.unwrap_or_default(),
        swap: v1_entry(mem, "memory.memsw")?,
        kernel: v1_entry(mem, "memory.kmem")?,
        kernel_tcp: v1_entry(mem, "memory.kmem.tcp")?,
        raw,
    };
    let pids = cg.v1_dir(PIDS);
    Ok(DetailedStats {
        cpu,
        memory,
        pids: PidsStats {
            current: num(read_opt(pids, "pids.current")?.as_deref()).unwrap_or(0),
            limit: num(read_opt(pids, "pids.max")?.as_deref()).filter(|l| *l != u64::MAX),
        },
        // gcr makes no v1 blkio group for a container: nothing of its own to read.
        blkio: BlkioStats::default(),
    })
}

/// v2 `io.stat` (`MAJ:MIN rbytes=N wbytes=N rios=N wios=N ...`) as runc's recursive
/// service bytes and serviced lists.
pub(super) fn io_stat(text: &str) -> BlkioStats {
    let mut out = BlkioStats::default();
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let Some((major, minor)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut out.service_bytes, "Read"),
                "wbytes" => (&mut out.service_bytes, "Write"),
                "dbytes" => (&mut out.service_bytes, "Discard"),
                "rios" => (&mut out.serviced, "Read"),
                "wios" => (&mut out.serviced, "Write"),
                "dios" => (&mut out.serviced, "Discard"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    out
}

pub(super) fn v2(dir: &Path) -> Result<DetailedStats, CgroupError> {
    let d = Some(dir);
    let mut cpu = CpuStats::default();
    if let Some(t) = read_opt(d, "cpu.stat")? {
        let us = |k: &str| fs::keyed(&t, k).unwrap_or(0).saturating_mul(1000);
        cpu.total = us("usage_usec");
        cpu.user = us("user_usec");
        cpu.kernel = us("system_usec");
        cpu.throttled_time = us("throttled_usec");
        cpu.periods = fs::keyed(&t, "nr_periods").unwrap_or(0);
        cpu.throttled_periods = fs::keyed(&t, "nr_throttled").unwrap_or(0);
    }
    let raw = read_opt(d, "memory.stat")?
        .map(|t| pairs(&t))
        .unwrap_or_default();
    let get = |f: &str| -> Result<Option<u64>, CgroupError> { Ok(num(read_opt(d, f)?.as_deref())) };
    let failcnt = read_opt(d, "memory.events")?
        .and_then(|t| fs::keyed(&t, "max"))
        .unwrap_or(0);
    let usage = MemoryEntry {
        usage: get("memory.current")?.unwrap_or(0),
        max: get("memory.peak")?.unwrap_or(0),
        limit: get("memory.max")?.unwrap_or(u64::MAX),
        failcnt,
    };
    // As runc: v1 reports swap as memory+swap, so v2's swap figures get memory added.
    let swap = match get("memory.swap.current")? {
        None => None,
        Some(s) => {
            let limit = get("memory.swap.max")?.unwrap_or(u64::MAX);
            Some(MemoryEntry {
                usage: s.saturating_add(usage.usage),
                max: get("memory.swap.peak")?.unwrap_or(0),
                limit: if limit == u64::MAX || usage.limit == u64::MAX {
                    u64::MAX
                } else {
                    limit.saturating_add(usage.limit)
                },
                failcnt: 0,
            })
        }
    };
    let memory = MemoryStats {
        cache: raw.iter().find(|(k, _)| k == "file").map_or(0, |(_, v)| *v),
        usage,
        swap,
        kernel: None,
        kernel_tcp: None,
        raw,
    };
    Ok(DetailedStats {
        cpu,
        memory,
        pids: PidsStats {
            current: get("pids.current")?.unwrap_or(0),
            limit: get("pids.max")?.filter(|l| *l != u64::MAX),
        },
        blkio: read_opt(d, "io.stat")?
            .map(|t| io_stat(&t))
            .unwrap_or_default(),
    })
}

/// The group's `io.stat` alone (empty when it cannot be read).
pub(super) fn block_io_v2(dir: &Path) -> BlkioStats {
    fs::read_raw(&dir.join("io.stat"))
        .map(|t| io_stat(&t))
        .unwrap_or_default()
}

/// The number of OOM kills the kernel counted in the group (v2 `memory.events`
/// `oom_kill`; v1 `memory.oom_control` `oom_kill`, or 1 while `under_oom` on kernels
/// without the counter).
pub(super) fn oom_kills_v2(dir: &Path) -> u64 {
    fs::read_raw(&dir.join("memory.events")).map_or(0, |t| oom_kills_in(&t, false))
}

pub(super) fn oom_kills_v1(memory: &Path) -> u64 {
    fs::read_raw(&memory.join("memory.oom_control")).map_or(0, |t| oom_kills_in(&t, true))
}

/// The OOM kills in the text of `memory.events` (v2) or `memory.oom_control` (v1).
pub(super) fn oom_kills_in(text: &str, v1: bool) -> u64 {
    match fs::keyed(text, "oom_kill") {
        Some(n) => n,
        None if v1 => u64::from(fs::keyed(text, "under_oom") == Some(1)),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroups_detail_io_stat_and_usage_all() {
        let b = io_stat("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\nbad\n");
        assert_eq!(b.service_bytes.len(), 3);
        assert_eq!(
            b.service_bytes[1],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Write".into(),
                value: 8192
            }
        );
        assert_eq!(b.serviced[0].value, 1);
        let (u, s) = usage_all("cpu user system\n0 10 20\n1 30 40\n");
        assert_eq!((u, s), (vec![10, 30], vec![20, 40]));
    }
}
