//! Linux capabilities: names, Docker's default set, `--cap-add`/`--cap-drop`/`--privileged`
//! resolution into a bit mask, and applying that mask in the container's init process.
//!
//! A mask is a `u64` with bit `n` set for capability number `n`. [`apply`] and
//! [`keep_caps_for_setuid`] make only raw syscalls on stack data, so they are safe to call in
//! a forked child between `fork` and `execve`. Call [`last_cap`] once in the parent before
//! forking so the child reads a cached value (it falls back to probing with `prctl`, which
//! also does not allocate).
//!
//! Like Docker (since 20.10.14, CVE-2022-24769) the inheritable set is left empty and no
//! ambient capability is raised: a non-root container user keeps no capability across
//! `execve` unless a file capability grants it.

use std::sync::atomic::{AtomicU32, Ordering};

/// One capability, by kernel number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap(pub u32);

/// Errors from capability parsing and application.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    /// A name that is not a known capability.
    #[error("unknown capability {0:?}: use a name such as NET_ADMIN or CAP_NET_ADMIN (see capabilities(7))")]
    Unknown(String),
    /// A syscall failed while applying capabilities.
    #[error("cannot {op} capabilities: errno {errno} (the runtime must start as root with a full bounding set)")]
    Sys {
        /// The operation that failed.
        op: &'static str,
        /// The raw errno.
        errno: i32,
    },
}

/// Capability names indexed by number (without the `CAP_` prefix).
const NAMES: [&str; 41] = crate::seccomp::compile::CAP_NAMES;

/// Capability numbers used elsewhere in the runtime (e.g. by the seccomp profile).
pub const CAP_CHOWN: u32 = 0;
pub const CAP_DAC_OVERRIDE: u32 = 1;
pub const CAP_DAC_READ_SEARCH: u32 = 2;
pub const CAP_FOWNER: u32 = 3;
pub const CAP_FSETID: u32 = 4;
pub const CAP_KILL: u32 = 5;
pub const CAP_SETGID: u32 = 6;
pub const CAP_SETUID: u32 = 7;
pub const CAP_SETPCAP: u32 = 8;
pub const CAP_NET_BIND_SERVICE: u32 = 10;
pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_NET_RAW: u32 = 13;
pub const CAP_SYS_MODULE: u32 = 16;
pub const CAP_SYS_RAWIO: u32 = 17;
pub const CAP_SYS_CHROOT: u32 = 18;
pub const CAP_SYS_PTRACE: u32 = 19;
pub const CAP_SYS_PACCT: u32 = 20;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_SYS_BOOT: u32 = 22;
pub const CAP_SYS_NICE: u32 = 23;
pub const CAP_SYS_TIME: u32 = 25;
pub const CAP_SYS_TTY_CONFIG: u32 = 26;
pub const CAP_MKNOD: u32 = 27;
pub const CAP_AUDIT_WRITE: u32 = 29;
pub const CAP_SETFCAP: u32 = 31;
pub const CAP_SYSLOG: u32 = 34;
pub const CAP_PERFMON: u32 = 38;
pub const CAP_BPF: u32 = 39;

/// Docker's default capability set.
pub const DOCKER_DEFAULT: &[Cap] = &[
    Cap(CAP_CHOWN),
    Cap(CAP_DAC_OVERRIDE),
    Cap(CAP_FSETID),
    Cap(CAP_FOWNER),
    Cap(CAP_MKNOD),
    Cap(CAP_NET_RAW),
    Cap(CAP_SETGID),
    Cap(CAP_SETUID),
    Cap(CAP_SETFCAP),
    Cap(CAP_SETPCAP),
    Cap(CAP_NET_BIND_SERVICE),
    Cap(CAP_SYS_CHROOT),
    Cap(CAP_KILL),
    Cap(CAP_AUDIT_WRITE),
];

/// The mask of a list of capabilities.
pub const fn mask_of(caps: &[Cap]) -> u64 {
    let mut m = 0u64;
    let mut i = 0;
    while i < caps.len() {
        m |= 1u64 << caps[i].0;
        i += 1;
    }
    m
}

/// [`DOCKER_DEFAULT`] as a mask.
pub const DOCKER_DEFAULT_MASK: u64 = mask_of(DOCKER_DEFAULT);

/// Parses `NET_ADMIN`, `CAP_NET_ADMIN`, `net_admin`... into a capability number.
/// `ALL` is not a capability; [`resolve`] handles it.
pub fn parse(name: &str) -> Result<u32, CapsError> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    NAMES
        .iter()
        .position(|n| *n == bare)
        .map(|i| i as u32)
        .ok_or_else(|| CapsError::Unknown(name.to_string()))
}

fn is_all(name: &str) -> bool {
    let upper = name.trim().to_ascii_uppercase();
    upper == "ALL" || upper == "CAP_ALL"
}

/// All capabilities the running kernel knows, as a mask.
pub fn all_mask() -> u64 {
    let last = last_cap().min(63);
    if last == 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    }
}

fn mask_names(list: &[String]) -> Result<u64, CapsError> {
    let mut m = 0u64;
    for name in list.iter().filter(|n| !is_all(n)) {
        m |= 1u64 << parse(name)?;
    }
    Ok(m)
}

/// Docker's capability semantics: `--privileged` gives every capability (add/drop ignored);
/// `--cap-add ALL` gives every capability except those dropped; `--cap-drop ALL` keeps only
/// the added ones; otherwise the default set minus drops plus adds. Unknown names are errors
/// even when ignored.
pub fn resolve(add: &[String], drop: &[String], privileged: bool) -> Result<u64, CapsError> {
    let add_mask = mask_names(add)?;
    let drop_mask = mask_names(drop)?;
    let all = all_mask();
    if privileged {
        return Ok(all);
    }
    let mask = if add.iter().any(|n| is_all(n)) {
        all & !drop_mask
    } else if drop.iter().any(|n| is_all(n)) {
        add_mask
    } else {
        (DOCKER_DEFAULT_MASK & !drop_mask) | add_mask
    };
    Ok(mask & all)
}

/// `CAP_`-prefixed names of the bits in `mask`, in number order (for inspect).
pub fn names(mask: u64) -> Vec<String> {
    (0..64u32)
        .filter(|i| mask & (1u64 << i) != 0)
        .map(|i| match NAMES.get(i as usize) {
            Some(n) => format!("CAP_{n}"),
            None => format!("CAP_{i}"),
        })
        .collect()
}

static LAST_CAP: AtomicU32 = AtomicU32::new(u32::MAX);

/// The highest capability number of the running kernel (`/proc/sys/kernel/cap_last_cap`),
/// read once and cached. Does not allocate, so it may run after `fork`.
pub fn last_cap() -> u32 {
    let cached = LAST_CAP.load(Ordering::Relaxed);
    if cached != u32::MAX {
        return cached;
    }
    let v = read_last_cap_file().unwrap_or_else(probe_last_cap);
    LAST_CAP.store(v, Ordering::Relaxed);
    v
}

fn read_last_cap_file() -> Option<u32> {
    let mut buf = [0u8; 16];
    // SAFETY: the path is a NUL-terminated literal; the fd is closed below.
    let fd = unsafe {
        libc::open(
            c"/proc/sys/kernel/cap_last_cap".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: reading into a stack buffer of the given length from an fd we own.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: fd is ours and closed once.
    unsafe { libc::close(fd) };
    if n <= 0 {
        return None;
    }
    let mut v: u32 = 0;
    let mut any = false;
    for &b in &buf[..n as usize] {
        if b.is_ascii_digit() {
            v = v.checked_mul(10)?.checked_add(u32::from(b - b'0'))?;
            any = true;
        } else {
            break;
        }
    }
    (any && v < 64).then_some(v)
}

fn probe_last_cap() -> u32 {
    let mut last = 0;
    for c in 0..64u32 {
        // SAFETY: PR_CAPBSET_READ only reads the calling thread's bounding set.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_READ, c as libc::c_ulong, 0, 0, 0) };
        if r < 0 {
            break;
        }
        last = c;
    }
    last
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn capget() -> Result<[CapData; 2], CapsError> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and a two-element data array of the v3 layout, both on the stack.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) };
    if r != 0 {
        return Err(CapsError::Sys {
            op: "read",
            errno: errno(),
        });
    }
    Ok(data)
}

fn capset(eff: u64, perm: u64, inh: u64) -> Result<(), CapsError> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: eff as u32,
            permitted: perm as u32,
            inheritable: inh as u32,
        },
        CapData {
            effective: (eff >> 32) as u32,
            permitted: (perm >> 32) as u32,
            inheritable: (inh >> 32) as u32,
        },
    ];
    // SAFETY: header and a two-element data array of the v3 layout, both on the stack.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) };
    if r != 0 {
        return Err(CapsError::Sys {
            op: "set",
            errno: errno(),
        });
    }
    Ok(())
}

/// Sets the calling thread's capabilities to `mask`: drops every bounding-set bit outside
/// `mask`, clears the ambient set, and sets effective = permitted = `mask`, inheritable empty.
/// Call after `setresuid` (with [`keep_caps_for_setuid`] before it). No allocation.
pub fn apply(mask: u64) -> Result<(), CapsError> {
    let last = last_cap();
    // Regain the effective set from the permitted one (setuid to non-root clears it), so
    // CAP_SETPCAP is usable for the bounding-set drops.
    let cur = capget()?;
    let permitted = u64::from(cur[0].permitted) | (u64::from(cur[1].permitted) << 32);
    capset(permitted, permitted, 0)?;
    for c in 0..=last.min(63) {
        if mask & (1u64 << c) != 0 {
            continue;
        }
        // Drop without reading first (one syscall per capability on the start path); a
        // failure only matters when the capability is really still in the bounding set.
        // SAFETY: PR_CAPBSET_DROP/READ take a capability number and touch no memory.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0) };
        if r != 0 {
            let err = errno();
            // SAFETY: as above.
            let present =
                unsafe { libc::prctl(libc::PR_CAPBSET_READ, c as libc::c_ulong, 0, 0, 0) };
            if present == 1 {
                return Err(CapsError::Sys {
                    op: "drop bounding-set",
                    errno: err,
                });
            }
        }
    }
    // SAFETY: clears the ambient set; touches no memory. EINVAL on pre-4.3 kernels is fine.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if r != 0 && errno() != libc::EINVAL {
        return Err(CapsError::Sys {
            op: "clear ambient",
            errno: errno(),
        });
    }
    let keep = mask & permitted;
    capset(keep, keep, 0)
}

/// The five capability sets of an OCI process, as masks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// Sets the calling thread's five capability sets as given (runc's semantics, for
/// `gcr-runc`): drops every bounding-set bit outside `s.bounding`, sets effective,
/// permitted and inheritable, then raises each ambient capability it can. Call after
/// `setresuid` (with [`keep_caps_for_setuid`] before it). No allocation.
pub fn apply_sets(s: &CapSets) -> Result<(), CapsError> {
    apply(s.bounding)?;
    // apply() left effective = permitted = bounding ∩ what we had; narrow to the sets.
    capset(s.effective, s.permitted, s.inheritable)?;
    for c in 0..=last_cap().min(63) {
        if s.ambient & (1u64 << c) == 0 {
            continue;
        }
        // A capability missing from permitted or inheritable cannot be raised: skipped,
        // as runc does (its own `runc spec` lists ambient caps with no inheritable set).
        // SAFETY: PR_CAP_AMBIENT_RAISE takes a capability number and touches no memory.
        unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                c as libc::c_ulong,
                0,
                0,
            )
        };
    }
    Ok(())
}

/// `PR_SET_KEEPCAPS`: keep the permitted set across the coming `setresuid` so [`apply`] can
/// still set it. No allocation.
pub fn keep_caps_for_setuid() -> Result<(), CapsError> {
    // SAFETY: PR_SET_KEEPCAPS takes an integer flag and touches no memory.
    let r = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1 as libc::c_ulong, 0, 0, 0) };
    if r != 0 {
        return Err(CapsError::Sys {
            op: "keep (PR_SET_KEEPCAPS)",
            errno: errno(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::testutil::{is_root_or_skip, run_in_child};

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn caps_parse_names() {
        assert_eq!(parse("NET_ADMIN").unwrap(), 12);
        assert_eq!(parse("cap_net_admin").unwrap(), 12);
        assert_eq!(parse("Cap_Sys_Admin").unwrap(), 21);
        assert_eq!(parse("CHECKPOINT_RESTORE").unwrap(), 40);
        assert!(matches!(parse("NET_WIZARD"), Err(CapsError::Unknown(_))));
        assert!(parse("ALL").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn caps_default_mask() {
        assert_eq!(DOCKER_DEFAULT.len(), 14);
        assert_eq!(DOCKER_DEFAULT_MASK, 0xa80425fb);
        let n = names(DOCKER_DEFAULT_MASK);
        assert_eq!(n.len(), 14);
        assert_eq!(n[0], "CAP_CHOWN");
        assert!(n.contains(&"CAP_AUDIT_WRITE".to_string()));
    }

    #[test]
    fn caps_resolve_docker_semantics() {
        let d = DOCKER_DEFAULT_MASK;
        assert_eq!(resolve(&[], &[], false).unwrap(), d);
        let m = resolve(&s(&["NET_ADMIN"]), &s(&["chown", "CAP_KILL"]), false).unwrap();
        assert_eq!(m, (d | 1 << 12) & !(1 << 0) & !(1 << 5));
        assert_eq!(resolve(&s(&["ALL"]), &[], false).unwrap(), all_mask());
        assert_eq!(
            resolve(&s(&["all"]), &s(&["SYS_ADMIN"]), false).unwrap(),
            all_mask() & !(1 << 21)
        );
        assert_eq!(resolve(&s(&["CHOWN"]), &s(&["ALL"]), false).unwrap(), 1);
        assert_eq!(resolve(&[], &s(&["ALL"]), false).unwrap(), 0);
        // Added and dropped: the add wins, as in Docker.
        assert_eq!(resolve(&s(&["KILL"]), &s(&["KILL"]), false).unwrap(), d);
        assert_eq!(resolve(&[], &s(&["ALL"]), true).unwrap(), all_mask());
        assert!(resolve(&s(&["BOGUS"]), &[], false).is_err());
        assert!(resolve(&[], &s(&["BOGUS"]), true).is_err());
    }

    #[test]
    fn caps_last_cap_sane() {
        let l = last_cap();
        assert!((36..64).contains(&l), "last cap {l}");
        assert_eq!(probe_last_cap(), l);
        assert_eq!(all_mask().count_ones(), l + 1);
    }

    fn status_field(status: &str, key: &str) -> u64 {
        let line = status.lines().find(|l| l.starts_with(key)).expect(key);
        u64::from_str_radix(line[key.len()..].trim(), 16).unwrap()
    }

    #[test]
    fn caps_apply_in_child_as_root() {
        if !is_root_or_skip() {
            return;
        }
        last_cap();
        let (code, out) = run_in_child(|w| {
            if apply(DOCKER_DEFAULT_MASK).is_err() {
                return 3;
            }
            crate::cgroups::testutil::copy_file_to_fd(c"/proc/self/status", w)
        });
        assert_eq!(code, 0, "child failed");
        let st = String::from_utf8(out).unwrap();
        assert_eq!(status_field(&st, "CapBnd:"), DOCKER_DEFAULT_MASK);
        assert_eq!(status_field(&st, "CapEff:"), DOCKER_DEFAULT_MASK);
        assert_eq!(status_field(&st, "CapPrm:"), DOCKER_DEFAULT_MASK);
        assert_eq!(status_field(&st, "CapInh:"), 0);
        assert_eq!(status_field(&st, "CapAmb:"), 0);
    }

    #[test]
    fn caps_apply_after_setuid_keeps_mask() {
        if !is_root_or_skip() {
            return;
        }
        last_cap();
        let mask = (1u64 << CAP_NET_BIND_SERVICE) | (1u64 << CAP_KILL);
        let (code, out) = run_in_child(|w| {
            if keep_caps_for_setuid().is_err() {
                return 3;
            }
            // SAFETY: plain setresgid/setresuid in the forked child.
            let ok = unsafe {
                libc::setresgid(1000, 1000, 1000) == 0 && libc::setresuid(1000, 1000, 1000) == 0
            };
            if !ok {
                return 4;
            }
            if apply(mask).is_err() {
                return 5;
            }
            crate::cgroups::testutil::copy_file_to_fd(c"/proc/self/status", w)
        });
        assert_eq!(code, 0, "child failed");
        let st = String::from_utf8(out).unwrap();
        assert_eq!(status_field(&st, "CapBnd:"), mask);
        assert_eq!(status_field(&st, "CapEff:"), mask);
    }
}
