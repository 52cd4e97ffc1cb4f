//! cgroup v2 specifics: creating `gcr/<id>` (enabling memory, cpu, pids and cpuset in the
//! parents' `cgroup.subtree_control` when the `gcr` parent is new or a controller file is
//! missing), writing limits (`memory.max`, `memory.swap.max`, `cpu.max`, `cpu.weight`,
//! `pids.max`, `cpuset.cpus`, `cpuset.mems`, the device program), and reading figures.

use std::path::Path;

use super::{fs, Cgroup, CgroupError, CgroupManager, Resources, Stats};

const WANTED: [&str; 4] = ["memory", "cpu", "pids", "cpuset"];

pub(super) fn create(
    m: &CgroupManager,
    root: &Path,
    rel: &Path,
    res: &Resources,
) -> Result<Cgroup, CgroupError> {
    let dir = root.join(rel);
    let parent = dir.parent().unwrap_or(root).to_path_buf();
    let mut enabled = false;
    m.mkdir_group(&parent, &dir, || {
        enabled = true;
        enable_controllers(root, &parent, res)
    })?;
    let cg = Cgroup::v2(dir.clone());
    let mut result = apply(&dir, res);
    if !enabled
        && matches!(&result, Err(CgroupError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound)
    {
        // A limit file is missing: the parents lack the controller (e.g. `gcr` was created
        // by someone else). Enable it and try once more.
        result = enable_controllers(root, &parent, res).and_then(|()| apply(&dir, res));
    }
    match result {
        Ok(()) => Ok(cg),
        Err(e) => {
            let _ = cg.destroy();
            Err(e)
        }
    }
}

/// An update of live group `dir`: a limit whose controller its parents do not enable yet
/// (io or hugetlb for a group made without such limits) has them enabled, then is written
/// again.
pub(super) fn update(dir: &Path, res: &Resources) -> Result<(), CgroupError> {
    match apply(dir, res) {
        Err(CgroupError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            // The hierarchy's root: the topmost ancestor that is a cgroup.
            let root = dir
                .ancestors()
                .skip(1)
                .take_while(|a| a.join("cgroup.controllers").exists())
                .last()
                .unwrap_or(dir);
            let parent = dir.parent().unwrap_or(root);
            enable_controllers(root, parent, res)?;
            apply(dir, res)
        }
        r => r,
    }
}

/// Writes `+memory +cpu +pids +cpuset` (those the root offers) to the root's subtree_control when
/// missing there, and to the `gcr` parent's.
fn enable_controllers(root: &Path, parent: &Path, res: &Resources) -> Result<(), CgroupError> {
    let avail = fs::read(&root.join("cgroup.controllers"))?;
    let want: Vec<&str> = WANTED
        .into_iter()
        .chain(super::extra::v2_controllers(res))
        .filter(|c| avail.split_whitespace().any(|a| a == *c))
        .collect();
    if want.is_empty() {
        return Ok(());
    }
    let root_ctl = root.join("cgroup.subtree_control");
    let enabled = fs::read(&root_ctl)?;
    let missing: Vec<String> = want
        .iter()
        .filter(|c| !enabled.split_whitespace().any(|a| a == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if !missing.is_empty() {
        fs::write(&root_ctl, &missing.join(" "))?;
    }
    let all: Vec<String> = want.iter().map(|c| format!("+{c}")).collect();
    // Every level between the root and the parent (one, `gcr`, for gcr's own groups).
    let mut levels: Vec<&Path> = parent.ancestors().take_while(|a| *a != root).collect();
    levels.reverse();
    for l in levels {
        fs::write(&l.join("cgroup.subtree_control"), &all.join(" "))?;
    }
    Ok(())
}

/// cpu.weight from Docker's cpu-shares (the conversion runc and crun use).
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

pub(super) fn apply(dir: &Path, res: &Resources) -> Result<(), CgroupError> {
    if let Some(mem) = res.memory {
        fs::write(&dir.join("memory.max"), &mem.to_string())?;
        let swap = match res.memory_swap {
            Some(-1) => "max".to_string(),
            Some(total) => (total as u64).saturating_sub(mem).to_string(),
            None => mem.to_string(),
        };
        let p = dir.join("memory.swap.max");
        match fs::write_raw(&p, swap.as_bytes()) {
            Ok(()) => {}
            // No swap accounting on this kernel: memory is limited without swap, as Docker.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(fs::err("write to", &p, e)),
        }
    }
    match (res.quota_us(), res.cpu_period) {
        (Some(q), _) => fs::write(&dir.join("cpu.max"), &format!("{q} {}", res.period_us()))?,
        (None, Some(p)) => fs::write(&dir.join("cpu.max"), &format!("max {p}"))?,
        (None, None) => {}
    }
    if let Some(s) = res.cpu_shares {
        fs::write(&dir.join("cpu.weight"), &shares_to_weight(s).to_string())?;
    }
    if let Some(p) = res.pids.filter(|p| *p > 0) {
        fs::write(&dir.join("pids.max"), &p.to_string())?;
    }
    super::cpuset::write(dir, res.cpuset_cpus.as_deref(), res.cpuset_mems.as_deref())?;
    super::extra::apply_v2(dir, res)?;
    if let Some(rules) = &res.devices {
        super::devices::apply(dir, rules)?;
    }
    Ok(())
}

pub(super) fn stats(dir: &Path) -> Result<Stats, CgroupError> {
    stats_from(&|file| {
        let p = dir.join(file);
        match fs::read_raw(&p) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(fs::err("read", &p, e)),
        }
    })
}

/// A file of the group's directory: its text, `None` when it is absent.
pub(super) type Reader<'a> = &'a dyn Fn(&str) -> Result<Option<String>, CgroupError>;

/// [`stats`] from any reader of the group's files (paths, or files held open). An absent
/// counter reads as 0, an absent limit (or `max`) as none.
pub(super) fn stats_from(read: Reader) -> Result<Stats, CgroupError> {
    let number = |file: &str| -> Result<Option<u64>, CgroupError> {
        match read(file)? {
            None => Ok(None),
            Some(t) if t.trim() == "max" => Ok(None),
            Some(t) => t.trim().parse().map(Some).map_err(|_| CgroupError::Parse {
                path: file.into(),
                text: t.trim().to_string(),
            }),
        }
    };
    let usage = number("memory.current")?.unwrap_or(0);
    let inactive = read("memory.stat")?
        .and_then(|t| fs::keyed(&t, "inactive_file"))
        .unwrap_or(0);
    let cpu_us = read("cpu.stat")?
        .and_then(|t| fs::keyed(&t, "usage_usec"))
        .unwrap_or(0);
    Ok(Stats {
        memory_usage: usage.saturating_sub(inactive),
        memory_limit: number("memory.max")?,
        cpu_usage_ns: cpu_us.saturating_mul(1000),
        pids_current: number("pids.current")?.unwrap_or(0),
        pids_limit: number("pids.max")?,
    })
}

pub(super) fn frozen(dir: &Path) -> bool {
    fs::read_raw(&dir.join("cgroup.events"))
        .ok()
        .and_then(|t| fs::keyed(&t, "frozen"))
        == Some(1)
}

pub(super) fn set_frozen(dir: &Path, freeze: bool) -> Result<(), CgroupError> {
    fs::write(&dir.join("cgroup.freeze"), if freeze { "1" } else { "0" })?;
    if fs::wait_until(5000, || frozen(dir) == freeze) {
        Ok(())
    } else {
        Err(CgroupError::FreezeTimeout {
            path: dir.to_path_buf(),
            state: if freeze { "frozen" } else { "thawed" },
        })
    }
}

pub(super) fn oom_killed(dir: &Path) -> bool {
    fs::read_raw(&dir.join("memory.events"))
        .ok()
        .and_then(|t| fs::keyed(&t, "oom_kill"))
        .unwrap_or(0)
        > 0
}

/// `cgroup.kill` (Linux 5.14+); false when the file does not exist.
pub(super) fn kill(dir: &Path) -> bool {
    fs::write_raw(&dir.join("cgroup.kill"), b"1").is_ok()
}
