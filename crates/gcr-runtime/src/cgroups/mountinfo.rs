//! Parsing `/proc/self/mountinfo` into the cgroup layout gcr uses: either one cgroup2 mount
//! (pure v2) or the v1 hierarchies of the controllers gcr needs (memory, cpu, cpuacct, pids,
//! freezer, cpuset; blkio and hugetlb for OCI configs that set them), which on hybrid hosts sit next to an unused cgroup2 mount.

use std::path::PathBuf;

use super::CgroupError;

/// Controller bits of a v1 hierarchy that gcr uses.
pub(crate) const MEMORY: u8 = 1;
pub(crate) const CPU: u8 = 2;
pub(crate) const CPUACCT: u8 = 4;
pub(crate) const PIDS: u8 = 8;
pub(crate) const FREEZER: u8 = 16;
pub(crate) const CPUSET: u8 = 32;
/// Used only when an OCI config asks for block I/O or hugetlb limits.
pub(crate) const BLKIO: u8 = 64;
pub(crate) const HUGETLB: u8 = 128;

/// One v1 hierarchy: its mount point and which of our controllers it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    pub(crate) mount: PathBuf,
    pub(crate) ctrls: u8,
}

/// The detected layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    V2 { root: PathBuf },
    V1 { hierarchies: Vec<Hierarchy> },
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(s: &str) -> PathBuf {
    if !s.contains('\\') {
        return PathBuf::from(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Reads the layout from mountinfo text. v1 controllers win over a cgroup2 mount (hybrid);
/// when several mounts show the same hierarchy, the first one whose root is `/` is used.
pub(crate) fn parse(text: &str) -> Result<Layout, CgroupError> {
    let mut v2: Option<(PathBuf, bool)> = None;
    let mut v1: Vec<(Hierarchy, bool)> = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post_f = post.split(' ');
        let fstype = post_f.next().unwrap_or("");
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let _source = post_f.next();
        let superopts = post_f.next().unwrap_or("");
        let pre_f: Vec<&str> = pre.split(' ').collect();
        if pre_f.len() < 5 {
            continue;
        }
        let at_root = pre_f[3] == "/";
        let mount = unescape(pre_f[4]);
        if fstype == "cgroup2" {
            if v2.as_ref().is_none_or(|(_, r)| !*r && at_root) {
                v2 = Some((mount, at_root));
            }
            continue;
        }
        let mut ctrls = 0u8;
        for opt in superopts.split(',') {
            ctrls |= match opt {
                "memory" => MEMORY,
                "cpu" => CPU,
                "cpuacct" => CPUACCT,
                "pids" => PIDS,
                "freezer" => FREEZER,
                "cpuset" => CPUSET,
                "blkio" => BLKIO,
                "hugetlb" => HUGETLB,
                _ => 0,
            };
        }
        if ctrls == 0 {
            continue;
        }
        match v1.iter_mut().find(|(h, _)| h.ctrls & ctrls != 0) {
            Some((h, r)) => {
                if !*r && at_root {
                    *h = Hierarchy { mount, ctrls };
                    *r = true;
                }
            }
            None => v1.push((Hierarchy { mount, ctrls }, at_root)),
        }
    }
    if !v1.is_empty() {
        return Ok(Layout::V1 {
            hierarchies: v1.into_iter().map(|(h, _)| h).collect(),
        });
    }
    match v2 {
        Some((root, _)) => Ok(Layout::V2 { root }),
        None => Err(CgroupError::NotMounted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn cgroups_mountinfo_hybrid() {
        let Layout::V1 { hierarchies } = parse(HYBRID).unwrap() else {
            panic!("not v1")
        };
        let get = |c| {
            hierarchies
                .iter()
                .find(|h| h.ctrls & c != 0)
                .unwrap()
                .mount
                .clone()
        };
        assert_eq!(hierarchies.len(), 6);
        assert_eq!(get(CPUSET), PathBuf::from("/sys/fs/cgroup/cpuset"));
        assert_eq!(get(MEMORY), PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(get(CPU), PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(get(CPUACCT), PathBuf::from("/sys/fs/cgroup/cpuacct"));
        assert_eq!(get(FREEZER), PathBuf::from("/sys/fs/cgroup/freezer"));
    }

    #[test]
    fn cgroups_mountinfo_comounted_and_v2() {
        let text = "\
25 20 0:22 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
26 20 0:23 /docker/x /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
27 20 0:23 / /mnt/mem\\040cg rw - cgroup cgroup rw,memory
";
        let Layout::V1 { hierarchies } = parse(text).unwrap() else {
            panic!("not v1")
        };
        assert_eq!(hierarchies.len(), 2);
        assert_eq!(hierarchies[0].ctrls, CPU | CPUACCT);
        assert_eq!(hierarchies[1].mount, PathBuf::from("/mnt/mem cg"));
        let v2 = "30 20 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            parse(v2).unwrap(),
            Layout::V2 {
                root: "/sys/fs/cgroup".into()
            }
        );
        assert!(matches!(
            parse("1 2 0:1 / / rw - ext4 /dev/sda rw\n"),
            Err(CgroupError::NotMounted)
        ));
    }
}
