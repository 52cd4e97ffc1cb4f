//! `linux.sysctl`: checked before clone and written by the container's process itself once
//! it is in its namespaces and before pivot_root, through the host's `/proc/sys` (a
//! namespaced sysctl file belongs to the namespace of the process that opens it; the
//! container's own `/proc/sys` is read-only).
//!
//! As runc, only namespaced keys are accepted, each only when the container has its own
//! namespace of that kind: `kernel.msg*`, `kernel.sem`, `kernel.shm*` and `fs.mqueue.*`
//! (ipc), `net.*` (net), `kernel.hostname` and `kernel.domainname` (uts).

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::RawFd;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::Stage;
use crate::sys::{child_fail, errno};
use crate::{Network, RuntimeError};

/// The namespace kind a sysctl key (dotted or slashed) belongs to; None when it is not
/// namespaced (and so cannot be set for a container).
pub fn sysctl_namespace(key: &str) -> Option<LinuxNamespaceType> {
    kind(&key.replace('/', "."))
}

fn kind(key: &str) -> Option<LinuxNamespaceType> {
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
    ];
    if ipc.contains(&key) || key.starts_with("kernel.shm") || key.starts_with("fs.mqueue.") {
        Some(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        Some(LinuxNamespaceType::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(LinuxNamespaceType::Uts)
    } else {
        None
    }
}

/// The checked writes of one start.
pub(crate) struct SysctlPlan {
    /// (path under /proc/sys, value, key as given).
    writes: Vec<(CString, Vec<u8>, String)>,
}

impl SysctlPlan {
    /// Checks every key of the spec's sysctl map (`network`: the start's network choice,
    /// which stands for a `network` namespace entry).
    pub(crate) fn prepare(spec: &Spec, network: &Network) -> Result<SysctlPlan, RuntimeError> {
        let empty = HashMap::new();
        let map = spec
            .linux()
            .as_ref()
            .and_then(|l| l.sysctl().as_ref())
            .unwrap_or(&empty);
        let has = |t: LinuxNamespaceType| {
            if t == LinuxNamespaceType::Network && !matches!(network, Network::Host) {
                return true;
            }
            spec.linux()
                .as_ref()
                .and_then(|l| l.namespaces().as_ref())
                .is_some_and(|ns| ns.iter().any(|n| n.typ() == t))
        };
        let mut writes = Vec::new();
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        for key in keys {
            let dotted = key.replace('/', ".");
            let bad = dotted.split('.').any(|p| p.is_empty() || p == "..") || dotted.contains('\0');
            let Some(ns) = kind(&dotted).filter(|_| !bad) else {
                return Err(RuntimeError::InvalidSpec(format!(
                    "sysctl {key:?} is not namespaced (only net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, kernel.hostname and kernel.domainname can be set for a container); remove it"
                )));
            };
            if !has(ns) {
                let name = match ns {
                    LinuxNamespaceType::Ipc => "ipc",
                    LinuxNamespaceType::Network => "network",
                    _ => "uts",
                };
                return Err(RuntimeError::InvalidSpec(format!(
                    "sysctl {key:?} needs the container's own {name} namespace (it shares the host's or another container's); remove the sysctl or the sharing"
                )));
            }
            let path = format!("/proc/sys/{}", dotted.replace('.', "/"));
            let path = CString::new(path)
                .map_err(|_| RuntimeError::InvalidSpec(format!("sysctl {key:?} contains a NUL")))?;
            writes.push((path, map[key].as_bytes().to_vec(), key.clone()));
        }
        Ok(SysctlPlan { writes })
    }

    /// Child side, in the container's namespaces with the host's /proc still in place.
    pub(crate) fn apply(&self, errfd: RawFd) {
        for (i, (path, value, _)) in self.writes.iter().enumerate() {
            // SAFETY: open/write/close on a prepared NUL-terminated path and a live buffer.
            unsafe {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::write(fd, value.as_ptr().cast(), value.len()) < 0 {
                    child_fail(errfd, Stage::Sysctl as u32 | ((i as u32 + 1) << 8), errno());
                }
                libc::close(fd);
            }
        }
    }

    /// The key a failure report of [`Stage::Sysctl`] names.
    pub(crate) fn describe(&self, code: u32) -> Option<String> {
        if code & 0xff != Stage::Sysctl as u32 {
            return None;
        }
        let i = (code >> 8).checked_sub(1)? as usize;
        self.writes
            .get(i)
            .map(|(_, v, k)| format!(" {k}={:?}", String::from_utf8_lossy(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_keys_are_checked() {
        let spec = |sysctl: &str, ns: &str| -> Spec {
            serde_json::from_str(&format!(
                r#"{{"ociVersion":"1.0.2","linux":{{"sysctl":{sysctl},"namespaces":{ns}}}}}"#
            ))
            .unwrap()
        };
        let host = Network::Host;
        let with_net = r#"[{"type":"network"},{"type":"mount"}]"#;
        let p =
            SysctlPlan::prepare(&spec(r#"{"net.ipv4.ip_forward":"1"}"#, with_net), &host).unwrap();
        assert_eq!(
            p.writes[0].0.to_str().unwrap(),
            "/proc/sys/net/ipv4/ip_forward"
        );
        assert_eq!(
            p.describe(Stage::Sysctl as u32 | 1 << 8).unwrap(),
            " net.ipv4.ip_forward=\"1\""
        );
        let e = SysctlPlan::prepare(&spec(r#"{"kernel.shmmax":"1"}"#, with_net), &host)
            .err()
            .unwrap();
        assert!(e.to_string().contains("ipc namespace"), "{e}");
        let e = SysctlPlan::prepare(&spec(r#"{"vm.swappiness":"1"}"#, with_net), &host)
            .err()
            .unwrap();
        assert!(e.to_string().contains("vm.swappiness"), "{e}");
        let e = SysctlPlan::prepare(&spec(r#"{"net.ipv4..x":"1"}"#, with_net), &host)
            .err()
            .unwrap();
        assert!(e.to_string().contains("not namespaced"), "{e}");
        // A network namespace of the start's own (not in the spec's list) counts.
        let p = SysctlPlan::prepare(
            &spec(r#"{"net.ipv4.ping_group_range":"0 0"}"#, "[]"),
            &Network::NewLoopback,
        )
        .unwrap();
        assert_eq!(p.writes.len(), 1);
        let e = SysctlPlan::prepare(&spec(r#"{"net.ipv4.ping_group_range":"0 0"}"#, "[]"), &host)
            .err()
            .unwrap();
        assert!(e.to_string().contains("network namespace"), "{e}");
    }
}
