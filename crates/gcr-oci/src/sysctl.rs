//! `linux.sysctl`: written while the container's process is held before execve, from a
//! forked helper that joins the container's net, ipc and uts namespaces (a namespaced
//! sysctl file belongs to the namespace of the process that opens it) and writes under the
//! host's `/proc/sys`, so the container's read-only `/proc/sys` does not stand in the way.
//!
//! As runc, only namespaced keys are accepted, each only when the container has its own
//! namespace of that kind: `kernel.msg*`, `kernel.sem`, `kernel.shm*` and `fs.mqueue.*`
//! (ipc), `net.*` (net), `kernel.hostname` and `kernel.domainname` (uts).

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::OciError;

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

/// Checks every key of the config's sysctl map; returns the (path, value) pairs.
fn plan(spec: &Spec) -> Result<Vec<(CString, Vec<u8>)>, OciError> {
    let empty = HashMap::new();
    let map = spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().as_ref())
        .unwrap_or(&empty);
    let has = |t: LinuxNamespaceType| {
        spec.linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|ns| ns.iter().any(|n| n.typ() == t))
    };
    let mut out = Vec::new();
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for key in keys {
        let dotted = key.replace('/', ".");
        let bad = dotted.split('.').any(|p| p.is_empty() || p == "..") || dotted.contains('\0');
        let Some(ns) = kind(&dotted).filter(|_| !bad) else {
            return Err(OciError::Invalid(format!(
                "linux.sysctl {key:?} is not a namespaced sysctl gcr-runc can set; remove it"
            )));
        };
        if !has(ns) {
            return Err(OciError::Invalid(format!(
                "linux.sysctl {key:?} needs the container's own {} namespace; add it to linux.namespaces or remove the sysctl",
                match ns {
                    LinuxNamespaceType::Ipc => "ipc",
                    LinuxNamespaceType::Network => "network",
                    _ => "uts",
                }
            )));
        }
        let path = format!("/proc/sys/{}", dotted.replace('.', "/"));
        let path = CString::new(path)
            .map_err(|_| OciError::Invalid(format!("linux.sysctl {key:?} contains a NUL")))?;
        out.push((path, map[key].as_bytes().to_vec()));
    }
    Ok(out)
}

/// Writes the config's sysctls in the namespaces of `pid` (the held container process).
pub(crate) fn apply(spec: &Spec, pid: i32) -> Result<(), OciError> {
    let writes = plan(spec)?;
    if writes.is_empty() {
        return Ok(());
    }
    let mut ns: Vec<OwnedFd> = Vec::new();
    for name in ["net", "ipc", "uts"] {
        let p = format!("/proc/{pid}/ns/{name}");
        let f = std::fs::File::open(&p)
            .map_err(|e| OciError::io("cannot open the container's namespace", &p, e))?;
        ns.push(f.into());
    }
    let (r, w) = crate::launch::pipe()?;
    // SAFETY: the child only makes system calls on data prepared above and ends in _exit.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(OciError::io(
            "cannot fork the sysctl helper",
            "fork",
            std::io::Error::last_os_error(),
        ));
    }
    if child == 0 {
        // SAFETY: as above: setns, open, write, close and _exit only.
        unsafe {
            let fail = |i: usize| -> ! {
                let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                let msg = [(i as u32).to_ne_bytes(), (e as u32).to_ne_bytes()].concat();
                libc::write(w.as_raw_fd(), msg.as_ptr().cast(), msg.len());
                libc::_exit(1)
            };
            for f in &ns {
                if libc::setns(f.as_raw_fd(), 0) != 0 {
                    fail(usize::MAX >> 32);
                }
            }
            for (i, (path, value)) in writes.iter().enumerate() {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::write(fd, value.as_ptr().cast(), value.len()) < 0 {
                    fail(i);
                }
                libc::close(fd);
            }
            libc::_exit(0);
        }
    }
    drop(w);
    let mut buf = [0u8; 8];
    // SAFETY: reading into a stack buffer from our pipe; waitpid of our own child.
    let n = unsafe {
        let n = libc::read(r.as_raw_fd(), buf.as_mut_ptr().cast(), 8);
        libc::waitpid(child, std::ptr::null_mut(), 0);
        n
    };
    if n != 8 {
        return Ok(());
    }
    let i = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let errno = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let err = std::io::Error::from_raw_os_error(errno);
    match writes.get(i) {
        Some((p, _)) => Err(OciError::io(
            "cannot write linux.sysctl",
            p.to_string_lossy().into_owned(),
            err,
        )),
        None => Err(OciError::io(
            "cannot join the container's namespaces for linux.sysctl",
            format!("/proc/{pid}/ns"),
            err,
        )),
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
        let with_net = r#"[{"type":"network"},{"type":"mount"}]"#;
        let p = plan(&spec(r#"{"net.ipv4.ip_forward":"1"}"#, with_net)).unwrap();
        assert_eq!(p[0].0.to_str().unwrap(), "/proc/sys/net/ipv4/ip_forward");
        let e = plan(&spec(r#"{"kernel.shmmax":"1"}"#, with_net)).unwrap_err();
        assert!(e.to_string().contains("ipc namespace"), "{e}");
        let e = plan(&spec(r#"{"vm.swappiness":"1"}"#, with_net)).unwrap_err();
        assert!(e.to_string().contains("vm.swappiness"), "{e}");
        let e = plan(&spec(r#"{"net.ipv4..x":"1"}"#, with_net)).unwrap_err();
        assert!(e.to_string().contains("not a namespaced"), "{e}");
    }
}
