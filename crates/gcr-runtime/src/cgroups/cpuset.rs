//! cpusets (`--cpuset-cpus`, `--cpuset-mems`, OCI `linux.resources.cpu.cpus` and `.mems`):
//! the kernel's list syntax, the check against what the host has online, and v1's rule that
//! a new cpuset group has no CPUs and no memory nodes (so no task may join it) until it is
//! given some — each new level gets its parent's, as runc does.

use std::path::Path;

use super::{fs, CgroupError};

/// Which list: CPUs or memory nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpusetKind {
    Cpus,
    Mems,
}

impl CpusetKind {
    fn what(self) -> &'static str {
        match self {
            CpusetKind::Cpus => "CPU",
            CpusetKind::Mems => "memory node",
        }
    }

    fn online_file(self) -> &'static str {
        match self {
            CpusetKind::Cpus => "/sys/devices/system/cpu/online",
            CpusetKind::Mems => "/sys/devices/system/node/online",
        }
    }
}

/// Parses the kernel's list syntax (`0-2,4`) into sorted, distinct numbers; `None` when it
/// is not one (empty, a reversed range, a sign, anything but digits, `-` and `,`).
pub fn parse_list(s: &str) -> Option<Vec<u32>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let num = |t: &str| {
        (!t.is_empty() && t.len() <= 6 && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse::<u32>().ok())
            .flatten()
    };
    let mut out = Vec::new();
    for part in s.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b) = (num(a)?, num(b)?);
        if a > b || out.len() + (b - a) as usize > 65_536 {
            return None;
        }
        out.extend(a..=b);
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// Checks a list given as `label` (a flag or a config field) against what this host has
/// online (a host without NUMA information has memory node 0 only).
pub fn check(label: &str, value: &str, kind: CpusetKind) -> Result<(), CgroupError> {
    let online = std::fs::read_to_string(kind.online_file()).unwrap_or_else(|_| "0".into());
    check_against(label, value, kind, online.trim())
}

fn check_against(
    label: &str,
    value: &str,
    kind: CpusetKind,
    online: &str,
) -> Result<(), CgroupError> {
    let Some(want) = parse_list(value) else {
        return Err(CgroupError::Invalid(format!(
            "invalid value '{value}' for {label}: give a list of {}s such as 0-2,4",
            kind.what()
        )));
    };
    let have = parse_list(online).unwrap_or_default();
    if let Some(x) = want.iter().find(|c| !have.contains(c)) {
        return Err(CgroupError::Invalid(format!(
            "invalid value '{value}' for {label}: {} {x} is not available (this host has {online} online)",
            kind.what()
        )));
    }
    Ok(())
}

/// v1: gives every level from the hierarchy's `mount` down to `dir` that has no CPUs or
/// memory nodes its parent's — `dir` itself the requested lists where there are some.
pub(super) fn v1_inherit(
    mount: &Path,
    dir: &Path,
    cpus: Option<&str>,
    mems: Option<&str>,
) -> Result<(), CgroupError> {
    let mut levels: Vec<&Path> = dir.ancestors().take_while(|a| *a != mount).collect();
    levels.reverse();
    for l in levels {
        for (f, want) in [("cpuset.cpus", cpus), ("cpuset.mems", mems)] {
            match want.filter(|_| l == dir) {
                Some(w) => fs::write(&l.join(f), w.trim())?,
                None if fs::read(&l.join(f))?.trim().is_empty() => {
                    let up = fs::read(&l.parent().unwrap_or(mount).join(f))?;
                    fs::write(&l.join(f), up.trim())?;
                }
                None => {}
            }
        }
    }
    Ok(())
}

/// Writes the requested lists into a group's `cpuset.cpus` and `cpuset.mems`.
pub(super) fn write(dir: &Path, cpus: Option<&str>, mems: Option<&str>) -> Result<(), CgroupError> {
    if let Some(c) = cpus {
        fs::write(&dir.join("cpuset.cpus"), c.trim())?;
    }
    if let Some(m) = mems {
        fs::write(&dir.join("cpuset.mems"), m.trim())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_as_the_kernel_writes_them() {
        assert_eq!(parse_list("0"), Some(vec![0]));
        assert_eq!(parse_list("0-2,4"), Some(vec![0, 1, 2, 4]));
        assert_eq!(parse_list("3,1-2,1\n"), Some(vec![1, 2, 3]));
        for bad in [
            "",
            " ",
            "a",
            "1-",
            "-1",
            "2-1",
            "+1",
            "1,,2",
            "0-9999999",
            "1 2",
        ] {
            assert_eq!(parse_list(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn unavailable_cpus_and_nodes_are_named() {
        assert!(check_against("--cpuset-cpus", "0-1", CpusetKind::Cpus, "0-1").is_ok());
        let e = check_against("--cpuset-cpus", "0-3", CpusetKind::Cpus, "0-1")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("CPU 2 is not available") && e.contains("0-1 online"),
            "{e}"
        );
        let e = check_against("--cpuset-mems", "1", CpusetKind::Mems, "0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("memory node 1"), "{e}");
        let e = check_against("--cpuset-cpus", "x", CpusetKind::Cpus, "0-1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid value 'x' for --cpuset-cpus"), "{e}");
    }
}
