//! The limits only the OCI personality asks for, written as runc 1.1 writes them: block I/O
//! (v1 `blkio.*`, v2 `io.weight`/`io.bfq.weight`/`io.max`), hugetlb (v1
//! `hugetlb.<size>.limit_in_bytes`, v2 `hugetlb.<size>.max`) and the memory extras
//! (reservation: v1 `memory.soft_limit_in_bytes`, v2 `memory.low`; swappiness and the OOM
//! killer switch: v1 only, ignored on v2 as runc does). Nothing here runs unless one of them
//! is set.

use std::path::Path;

use super::mountinfo::{BLKIO, HUGETLB, MEMORY};
use super::{fs, Cgroup, CgroupError, Resources};

/// One device's weight (OCI `blockIO.weightDevice`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WeightDevice {
    pub major: i64,
    pub minor: i64,
    pub weight: Option<u16>,
    pub leaf_weight: Option<u16>,
}

/// One device's rate (OCI `blockIO.throttle*Device`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Throttle {
    pub major: i64,
    pub minor: i64,
    pub rate: u64,
}

/// OCI `linux.resources.blockIO`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockIo {
    pub weight: Option<u16>,
    pub leaf_weight: Option<u16>,
    pub weight_device: Vec<WeightDevice>,
    pub read_bps: Vec<Throttle>,
    pub write_bps: Vec<Throttle>,
    pub read_iops: Vec<Throttle>,
    pub write_iops: Vec<Throttle>,
}

impl Resources {
    /// Any of the OCI-only limits of this module.
    pub(super) fn wants_extra(&self) -> bool {
        self.block_io.is_some()
            || !self.hugetlb.is_empty()
            || self.memory_reservation.is_some()
            || self.memory_swappiness.is_some()
            || self.disable_oom_killer
            || !self.unified.is_empty()
    }

    pub(super) fn validate_extra(&self) -> Result<(), CgroupError> {
        if let Some(s) = self.memory_swappiness.filter(|s| *s > 100) {
            return Err(CgroupError::Invalid(format!(
                "invalid memory swappiness value: {s} (valid range is 0-100)"
            )));
        }
        for (key, _) in &self.unified {
            let ok = key.split_once('.').is_some_and(|(c, f)| {
                !c.is_empty() && !f.is_empty() && c != "cgroup" && !key.contains('/')
            });
            if !ok {
                return Err(CgroupError::Invalid(format!(
                    "unified key {key:?} is not a cgroup v2 interface file like memory.high (cgroup.* files are the runtime's)"
                )));
            }
        }
        for (size, _) in &self.hugetlb {
            let ok = !size.is_empty()
                && size.ends_with('B')
                && size.bytes().all(|b| b.is_ascii_alphanumeric());
            if !ok {
                return Err(CgroupError::Invalid(format!(
                    "hugepage size {size:?} is not a page size like 2MB or 1GB"
                )));
            }
        }
        Ok(())
    }
}

/// v1: writes the extras into the container's hierarchies (made by `v1::create`).
pub(super) fn apply_v1(cg: &Cgroup, res: &Resources) -> Result<(), CgroupError> {
    if !res.wants_extra() {
        return Ok(());
    }
    if !res.unified.is_empty() {
        return Err(CgroupError::Invalid(
            "unified resources need cgroup v2 and this host's cgroups are v1; drop linux.resources.unified".into(),
        ));
    }
    if res.memory_reservation.is_some() || res.memory_swappiness.is_some() || res.disable_oom_killer
    {
        let dir = cg
            .v1_dir(MEMORY)
            .ok_or(CgroupError::NoController("memory"))?;
        if let Some(r) = res.memory_reservation.filter(|r| *r != 0) {
            fs::write(&dir.join("memory.soft_limit_in_bytes"), &r.to_string())?;
        }
        if res.disable_oom_killer {
            fs::write(&dir.join("memory.oom_control"), "1")?;
        }
        if let Some(s) = res.memory_swappiness {
            fs::write(&dir.join("memory.swappiness"), &s.to_string())?;
        }
    }
    if !res.hugetlb.is_empty() {
        let dir = cg
            .v1_dir(HUGETLB)
            .ok_or(CgroupError::NoController("hugetlb"))?;
        for (size, limit) in &res.hugetlb {
            let f = format!("hugetlb.{size}.limit_in_bytes");
            fs::write(&dir.join(f), &limit.to_string())?;
        }
    }
    if let Some(b) = &res.block_io {
        let dir = cg.v1_dir(BLKIO).ok_or(CgroupError::NoController("blkio"))?;
        blkio_v1(dir, b)?;
    }
    Ok(())
}

fn blkio_v1(dir: &Path, b: &BlockIo) -> Result<(), CgroupError> {
    // CFQ's files when they exist, else BFQ's (runc's choice).
    let (weight, weight_device) = if dir.join("blkio.weight").exists() {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    };
    if let Some(w) = b.weight.filter(|w| *w != 0) {
        fs::write(&dir.join(weight), &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight.filter(|w| *w != 0) {
        fs::write(&dir.join("blkio.leaf_weight"), &w.to_string())?;
    }
    for d in &b.weight_device {
        if let Some(w) = d.weight.filter(|w| *w != 0) {
            let line = format!("{}:{} {w}", d.major, d.minor);
            fs::write(&dir.join(weight_device), &line)?;
        }
        if let Some(w) = d.leaf_weight.filter(|w| *w != 0) {
            let line = format!("{}:{} {w}", d.major, d.minor);
            fs::write(&dir.join("blkio.leaf_weight_device"), &line)?;
        }
    }
    for (list, file) in [
        (&b.read_bps, "blkio.throttle.read_bps_device"),
        (&b.write_bps, "blkio.throttle.write_bps_device"),
        (&b.read_iops, "blkio.throttle.read_iops_device"),
        (&b.write_iops, "blkio.throttle.write_iops_device"),
    ] {
        for t in list {
            let line = format!("{}:{} {}", t.major, t.minor, t.rate);
            fs::write(&dir.join(file), &line)?;
        }
    }
    Ok(())
}

/// v2 controllers the extras of `res` need enabled in the parents.
pub(super) fn v2_controllers(res: &Resources) -> impl Iterator<Item = &str> {
    [
        res.block_io.is_some().then_some("io"),
        (!res.hugetlb.is_empty()).then_some("hugetlb"),
    ]
    .into_iter()
    .flatten()
    .chain(
        res.unified
            .iter()
            .filter_map(|(k, _)| k.split_once('.').map(|(c, _)| c)),
    )
}

/// v2: writes the extras into the group directory.
pub(super) fn apply_v2(dir: &Path, res: &Resources) -> Result<(), CgroupError> {
    if !res.wants_extra() {
        return Ok(());
    }
    if let Some(r) = res.memory_reservation.filter(|r| *r != 0) {
        fs::write(&dir.join("memory.low"), &r.to_string())?;
    }
    for (size, limit) in &res.hugetlb {
        fs::write(&dir.join(format!("hugetlb.{size}.max")), &limit.to_string())?;
    }
    if let Some(b) = &res.block_io {
        io_v2(dir, b)?;
    }
    for (key, value) in &res.unified {
        let p = dir.join(key);
        if !p.exists() {
            let c = key.split_once('.').map_or(key.as_str(), |(c, _)| c);
            return Err(CgroupError::Invalid(format!(
                "unified resource {key:?}: controller {c:?} is not available in this cgroup"
            )));
        }
        fs::write(&p, value)?;
    }
    Ok(())
}

/// blkio weight (10-1000) to io.weight (1-10000), runc's conversion.
pub(crate) fn blkio_to_io_weight(w: u16) -> u64 {
    1 + (u64::from(w.max(10)) - 10) * 9999 / 990
}

fn io_v2(dir: &Path, b: &BlockIo) -> Result<(), CgroupError> {
    // BFQ takes the weights as given (and per device); without it io.weight, converted.
    let bfq = dir.join("io.bfq.weight");
    let has_bfq = (b.weight.is_some() || !b.weight_device.is_empty()) && bfq.exists();
    if let Some(w) = b.weight.filter(|w| *w != 0) {
        if has_bfq {
            fs::write(&bfq, &w.to_string())?;
        } else {
            fs::write(&dir.join("io.weight"), &blkio_to_io_weight(w).to_string())?;
        }
    }
    if has_bfq {
        for d in &b.weight_device {
            if let Some(w) = d.weight.filter(|w| *w != 0) {
                fs::write(&bfq, &format!("{}:{} {w}", d.major, d.minor))?;
            }
        }
    }
    // One io.max line per device with every rate it has.
    let mut lines: Vec<((i64, i64), String)> = Vec::new();
    for (list, key) in [
        (&b.read_bps, "rbps"),
        (&b.write_bps, "wbps"),
        (&b.read_iops, "riops"),
        (&b.write_iops, "wiops"),
    ] {
        for t in list {
            let dev = (t.major, t.minor);
            let item = format!(" {key}={}", t.rate);
            match lines.iter_mut().find(|(d, _)| *d == dev) {
                Some((_, l)) => l.push_str(&item),
                None => lines.push((dev, format!("{}:{}{item}", t.major, t.minor))),
            }
        }
    }
    for (_, l) in lines {
        fs::write(&dir.join("io.max"), &l)?;
    }
    Ok(())
}
