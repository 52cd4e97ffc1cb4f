//! The container's cgroup: where it goes (`cgroupsPath` in cgroupfs form `/a/b`, relative
//! `a/b`, or systemd form `slice:prefix:name` with `--systemd-cgroup`), the limits of
//! `linux.resources` it takes, and `linux.resources.devices` (v1: the devices controller;
//! v2: an eBPF device program on the container's group).
//!
//! The systemd form is mapped to the path systemd's cgroupfs layout gives the unit
//! (`a-b.slice` -> `a.slice/a-b.slice`, then `prefix-name.scope`); gcr-runc makes the
//! group itself rather than asking systemd over D-Bus for a transient unit.

use std::path::{Path, PathBuf};

use gcr_runtime::cgroups::devices::DeviceRule;
use gcr_runtime::cgroups::{Cgroup, CgroupManager, CgroupVersion, Resources};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

use crate::OciError;

fn cg_err(e: impl std::fmt::Display) -> OciError {
    OciError::Cgroup(e.to_string())
}

/// The group at `rel` (no filesystem access beyond reading mountinfo).
pub(crate) fn open(rel: &Path) -> Result<Cgroup, OciError> {
    Ok(CgroupManager::detect().map_err(cg_err)?.open_at(rel))
}

/// The relative group path for `cgroups_path` (None: `gcr-runc/<id>`).
pub(crate) fn path_for(
    cgroups_path: Option<&Path>,
    id: &str,
    systemd: bool,
) -> Result<PathBuf, OciError> {
    let Some(p) = cgroups_path.map(|p| p.to_string_lossy().into_owned()) else {
        return Ok(if systemd {
            PathBuf::from(format!("system.slice/gcr-runc-{id}.scope"))
        } else {
            PathBuf::from("gcr-runc").join(id)
        });
    };
    if systemd {
        let parts: Vec<&str> = p.split(':').collect();
        let [slice, prefix, name] = parts.as_slice() else {
            return Err(OciError::Invalid(format!(
                "linux.cgroupsPath {p:?} is not in systemd's slice:prefix:name form (--systemd-cgroup is set)"
            )));
        };
        let slice = if slice.is_empty() {
            "system.slice"
        } else {
            slice
        };
        if !slice.ends_with(".slice") || slice.contains('/') {
            return Err(OciError::Invalid(format!(
                "linux.cgroupsPath {p:?}: {slice:?} is not a slice name (like system.slice)"
            )));
        }
        let mut rel = PathBuf::new();
        let stem = slice.trim_end_matches(".slice");
        if stem != "-" {
            let mut acc = String::new();
            for part in stem.split('-') {
                if !acc.is_empty() {
                    acc.push('-');
                }
                acc.push_str(part);
                rel.push(format!("{acc}.slice"));
            }
        }
        let unit = if name.ends_with(".slice") {
            name.to_string()
        } else if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        rel.push(unit);
        return Ok(rel);
    }
    if p.contains(':') {
        return Err(OciError::Invalid(format!(
            "linux.cgroupsPath {p:?} looks like systemd's slice:prefix:name form; pass --systemd-cgroup or give a path like /default/{id}"
        )));
    }
    let mut rel = PathBuf::new();
    for c in Path::new(&p).components() {
        match c {
            std::path::Component::RootDir | std::path::Component::CurDir => {}
            std::path::Component::Normal(n) => rel.push(n),
            _ => {
                return Err(OciError::Invalid(format!(
                    "linux.cgroupsPath {p:?} must not contain \"..\""
                )))
            }
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(OciError::Invalid(format!(
            "linux.cgroupsPath {p:?} names the root group; give a path like /default/{id}"
        )));
    }
    Ok(rel)
}

/// The runtime's limits for `linux.resources`; anything else set there is refused.
pub(crate) fn resources(r: Option<&LinuxResources>) -> Result<Resources, OciError> {
    let mut out = Resources::default();
    let Some(r) = r else { return Ok(out) };
    let others = [
        (r.network().is_some(), "linux.resources.network"),
        (r.rdma().is_some(), "linux.resources.rdma"),
    ];
    if let Some((_, f)) = others.iter().find(|(set, _)| *set) {
        return Err(OciError::unsupported(f));
    }
    crate::cgroup_extra::map(r, &mut out)?;
    // Written last, in key order (runc writes them last too); refused on v1 by the runtime.
    let mut unified: Vec<(String, String)> = r
        .unified()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    unified.sort();
    out.unified = unified;
    if let Some(m) = r.memory() {
        if m.kernel().is_some()
            || m.kernel_tcp().is_some()
            || m.use_hierarchy().is_some()
            || m.check_before_update().is_some()
        {
            return Err(OciError::unsupported(
                "linux.resources.memory (only limit, swap, reservation, swappiness and disableOOMKiller)",
            ));
        }
        if let Some(l) = m.limit().filter(|l| *l > 0) {
            out.memory = Some(l as u64);
            out.memory_swap = Some(m.swap().unwrap_or(-1));
        } else if m.swap().is_some() {
            return Err(OciError::Invalid(
                "linux.resources.memory.swap needs linux.resources.memory.limit".into(),
            ));
        }
    }
    if let Some(c) = r.cpu() {
        if c.realtime_period().is_some() || c.realtime_runtime().is_some() || c.idle().is_some() {
            return Err(OciError::unsupported(
                "linux.resources.cpu (only shares, quota, period, cpus and mems)",
            ));
        }
        out.cpuset_cpus = c.cpus().clone().filter(|s| !s.trim().is_empty());
        out.cpuset_mems = c.mems().clone().filter(|s| !s.trim().is_empty());
        // The period as given (runc writes it), 100000 by default.
        out.cpu_period = c.period().filter(|p| *p > 0);
        if let Some(q) = c.quota().filter(|q| *q > 0) {
            let period = c.period().filter(|p| *p > 0).unwrap_or(100_000);
            out.cpus = Some(q as f64 / period as f64);
        }
        out.cpu_shares = c.shares().filter(|s| *s > 0);
    }
    if let Some(p) = r.pids() {
        out.pids = Some(p.limit());
    }
    Ok(out)
}

/// `res` for a new container: on v1 its cpu and cpuset groups are made too even without
/// such limits (shares 1024, the kernel's default), as runc does, so that `update` can set
/// them later.
pub(crate) fn for_create(mut res: Resources, v1: bool) -> Resources {
    if v1 && res.cpus.is_none() && res.cpu_shares.is_none() {
        res.cpu_shares = Some(1024);
    }
    // Likewise its cpuset group (the parent's CPUs and memory nodes): kubelet's static CPU
    // manager moves running containers' cpusets with `update`.
    res.cpuset_group = v1;
    res
}

/// True on a cgroup v1 (or hybrid) host.
pub(crate) fn is_v1() -> Result<bool, OciError> {
    Ok(CgroupManager::detect().map_err(cg_err)?.version() == CgroupVersion::V1)
}

/// Device rules every runc container gets after its config's (runc's `AllowedDevices`):
/// mknod of any node (opening it is another matter), the standard nodes, and /dev/net/tun.
const DEFAULT_ALLOW: [&str; 12] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",    // null
    "c 1:8 rwm",    // random
    "c 1:7 rwm",    // full
    "c 5:0 rwm",    // tty
    "c 1:5 rwm",    // zero
    "c 1:9 rwm",    // urandom
    "c 136:* rwm",  // pts
    "c 5:2 rwm",    // ptmx
    "c 5:1 rwm",    // console
    "c 10:200 rwm", // tun
];

fn rule(d: &LinuxDeviceCgroup) -> String {
    let typ = d
        .typ()
        .map(|t| t.as_str().to_string())
        .unwrap_or_else(|| "a".into());
    let num = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_else(|| "*".into());
    let access = d.access().clone().unwrap_or_else(|| "rwm".into());
    if typ == "a" {
        return format!("a *:* {access}");
    }
    format!("{typ} {}:{} {access}", num(d.major()), num(d.minor()))
}

/// The rules for `devices` on cgroup v2 (the container's eBPF device program): the config's,
/// then the defaults, as on v1.
pub(crate) fn device_rules(devices: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, OciError> {
    let mut rules = devices
        .iter()
        .map(DeviceRule::from_oci)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| OciError::Invalid(format!("linux.resources.devices: {e}")))?;
    for r in DEFAULT_ALLOW {
        rules.push(DeviceRule::parse(true, r).map_err(cg_err)?);
    }
    gcr_runtime::cgroups::devices::check(&rules)
        .map_err(|e| OciError::Invalid(format!("linux.resources.devices: {e}")))?;
    Ok(rules)
}

/// Makes and configures the v1 devices group `rel` for `devices` (plus the defaults), for
/// the container's process to join with its other groups (see
/// `gcr_runtime::Extras::join_also`). On cgroup v2 there is no such group (None): the rules
/// go into the container's group as an eBPF program ([`device_rules`]).
pub(crate) fn devices(
    rel: &Path,
    devices: &[LinuxDeviceCgroup],
    v1: bool,
) -> Result<Option<PathBuf>, OciError> {
    if devices.is_empty() || !v1 {
        return Ok(None);
    }
    let Some(mount) = devices_mount() else {
        return Err(OciError::Invalid(
            "linux.resources.devices is set but this host has no v1 devices hierarchy mounted; mount one or drop the field".into(),
        ));
    };
    let dir = mount.join(rel);
    std::fs::create_dir_all(&dir).map_err(|e| OciError::io("cannot create", &dir, e))?;
    let write = |file: &str, line: &str| {
        let p = dir.join(file);
        std::fs::write(&p, line).map_err(|e| OciError::io("cannot write", p, e))
    };
    let res = (|| {
        for d in devices {
            write(
                if d.allow() {
                    "devices.allow"
                } else {
                    "devices.deny"
                },
                &rule(d),
            )?;
        }
        for r in DEFAULT_ALLOW {
            write("devices.allow", r)?;
        }
        Ok(())
    })();
    match res {
        Ok(()) => Ok(Some(dir)),
        Err(e) => {
            let _ = std::fs::remove_dir(&dir);
            Err(e)
        }
    }
}

/// Kills what is in the groups at `rel` (and its v1 devices group) and removes them: what a
/// create killed half-way left. Missing groups are fine.
pub(crate) fn remove_leftovers(rel: &Path) {
    // Never the root of a hierarchy or anything outside it: killing what is in the root
    // group would kill the host.
    let normal = |c: std::path::Component| matches!(c, std::path::Component::Normal(_));
    if rel.as_os_str().is_empty() || !rel.components().all(normal) {
        return;
    }
    let Ok(cg) = open(rel) else { return };
    let cg = match devices_mount() {
        Some(m) if m.join(rel).exists() => cg.with_v1_dir(m.join(rel)),
        _ => cg,
    };
    for _ in 0..200 {
        cg.kill_all(libc::SIGKILL);
        if cg.destroy().is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Where the v1 devices hierarchy is mounted (from this process's mountinfo).
fn devices_mount() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let mut post = post.split(' ');
        let (fstype, _source, opts) = (post.next()?, post.next()?, post.next()?);
        (fstype == "cgroup" && opts.split(',').any(|o| o == "devices"))
            .then(|| pre.split(' ').nth(4).map(PathBuf::from))
            .flatten()
    })
}

/// The container's cgroup as its processes join it: with its devices group, if any.
pub(crate) fn open_with_devices(rel: &Path, devices: Option<&Path>) -> Result<Cgroup, OciError> {
    let cg = open(rel)?;
    Ok(match devices {
        Some(d) => cg.with_v1_dir(d.to_path_buf()),
        None => cg,
    })
}

/// Removes a devices group made by [`devices`] (its processes are gone).
pub(crate) fn remove_devices(dir: &Path) {
    for _ in 0..50 {
        match std::fs::remove_dir(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            _ => return,
        }
    }
}
