//! What a container takes from outside its own namespaces, resolved at start: `--pid`,
//! `--ipc` and `--uts` (the host's namespace or another running container's), `--userns`
//! (the host's, the only one: gcr remaps none),
//! `--network container:X`, `--device` nodes and `--sysctl` keys, written into the runtime
//! spec that [`crate::ocispec::build`] made.

use std::collections::HashMap;
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;

use oci_spec::runtime::{
    LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, MountBuilder, Spec,
};

use super::config::{parse_device, parse_sysctl, RunOptions, Sharing};
use super::procfs;
use super::record::Record;
use crate::{Engine, EngineError};

/// Checks the sharing, device and sysctl flags at create time (the containers named must
/// exist; they need to run only when this one starts).
pub(crate) fn check(e: &Engine, opts: &RunOptions) -> Result<(), EngineError> {
    for (flag, v) in [
        ("--pid", &opts.pid),
        ("--ipc", &opts.ipc),
        ("--uts", &opts.uts),
    ] {
        if let Sharing::Container(c) =
            Sharing::parse(flag, v.as_deref()).map_err(EngineError::Usage)?
        {
            e.container(&c).map_err(|_| {
                EngineError::NotFound(format!(
                    "{flag} container:{c}: no such container; start the container to share first"
                ))
            })?;
        }
    }
    // dockerd without --userns-remap: containers are in the host's user namespace, and
    // `host` (or nothing) is the one mode it takes.
    if let Some(u) = opts
        .userns
        .as_deref()
        .filter(|u| !matches!(*u, "" | "host"))
    {
        return Err(EngineError::Usage(format!(
            "invalid --userns '{u}': gcr does not remap user namespaces (dockerd's --userns-remap); leave it out or give --userns host"
        )));
    }
    if opts.uts.as_deref() == Some("host") && opts.hostname.is_some() {
        return Err(EngineError::Usage(
            "--hostname and --uts host conflict: a container sharing the host's UTS namespace has the host's name".into(),
        ));
    }
    for s in &opts.sysctls {
        let (k, _) = parse_sysctl(s).map_err(EngineError::Usage)?;
        let (flag, host) = match gcr_runtime::sysctl_namespace(&k) {
            Some(LinuxNamespaceType::Network) => ("--network", opts.network.as_deref()),
            Some(LinuxNamespaceType::Ipc) => ("--ipc", opts.ipc.as_deref()),
            Some(_) => ("--uts", opts.uts.as_deref()),
            None => {
                return Err(EngineError::Usage(format!(
                    "invalid --sysctl {k}: not a namespaced key (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, kernel.domainname); it would change the host"
                )))
            }
        };
        if host == Some("host") {
            return Err(EngineError::Usage(format!(
                "--sysctl {k} cannot be set with {flag} host: it would change the host's namespace"
            )));
        }
    }
    for d in &opts.devices {
        let (host, _, _) = parse_device(d).map_err(EngineError::Usage)?;
        device_kind(&host)?;
    }
    Ok(())
}

/// Checks that the host path of a `--device` is a character or block device node.
fn device_kind(path: &str) -> Result<(), EngineError> {
    let md = std::fs::metadata(path).map_err(|e| {
        EngineError::NotFound(format!(
            "--device {path}: cannot use the host device ({e}); give an existing device node"
        ))
    })?;
    let ft = md.file_type();
    if ft.is_char_device() || ft.is_block_device() {
        return Ok(());
    }
    Err(EngineError::Usage(format!(
        "--device {path} is not a device node; give a character or block device such as /dev/fuse"
    )))
}

impl Engine {
    /// The namespace path of kind `ns` (`pid`, `ipc`, `net`, …) of the running container
    /// `key`, for `flag`'s error.
    fn container_ns(
        &self,
        flag: &str,
        key: &str,
        ns: &str,
    ) -> Result<(Record, PathBuf), EngineError> {
        let other = self.container(key).map_err(|_| {
            EngineError::NotFound(format!("{flag} container:{key}: no such container"))
        })?;
        match other.pid {
            Some(pid) if other.state.is_alive() && procfs::running(pid, other.extra.pid_start) => {
                Ok((other, PathBuf::from(format!("/proc/{pid}/ns/{ns}"))))
            }
            _ => Err(EngineError::Conflict(format!(
                "{flag} container:{key}: container {} is not running; start it first",
                other.name
            ))),
        }
    }

    /// Writes the container's namespace sharing, devices and sysctls into `spec`.
    pub(crate) fn apply_sharing(&self, r: &Record, spec: &mut Spec) -> Result<(), EngineError> {
        let o = &r.config.opts;
        let sharing = [
            ("--pid", &o.pid, LinuxNamespaceType::Pid, "pid"),
            ("--ipc", &o.ipc, LinuxNamespaceType::Ipc, "ipc"),
            ("--uts", &o.uts, LinuxNamespaceType::Uts, "uts"),
        ];
        let nothing =
            sharing.iter().all(|s| s.1.is_none()) && o.devices.is_empty() && o.sysctls.is_empty();
        if nothing {
            return Ok(());
        }
        let mut linux = spec.linux().clone().unwrap_or_default();
        let mut namespaces: Vec<LinuxNamespace> = linux.namespaces().clone().unwrap_or_default();
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        for (flag, v, typ, ns) in sharing {
            let how = Sharing::parse(flag, v.as_deref()).map_err(EngineError::Usage)?;
            let path = match how {
                Sharing::Private => continue,
                Sharing::Host => None,
                Sharing::Container(c) => Some(self.container_ns(flag, &c, ns)?),
            };
            namespaces.retain(|n| n.typ() != typ);
            if typ == LinuxNamespaceType::Ipc && path.is_none() {
                // /dev/shm belongs with the host's IPC namespace. (Another container's
                // tmpfs lives in its mount namespace and cannot be bound from here: with
                // container:X the container keeps its own /dev/shm.)
                mounts.retain(|m| m.destination() != &PathBuf::from("/dev/shm"));
                mounts.push(
                    MountBuilder::default()
                        .destination("/dev/shm")
                        .typ("bind")
                        .source("/dev/shm")
                        .options(vec!["rbind".into(), "rprivate".into()])
                        .build()
                        .map_err(|e| EngineError::Internal(format!("mount /dev/shm: {e}")))?,
                );
            }
            if let Some((_, p)) = path {
                namespaces.push(
                    LinuxNamespaceBuilder::default()
                        .typ(typ)
                        .path(p)
                        .build()
                        .map_err(|e| EngineError::Internal(format!("namespace {ns}: {e}")))?,
                );
            }
        }
        // A device is the host's node bind-mounted in /dev (the container's /dev is nodev,
        // see `ocispec`); without `w` in its permissions, read-only.
        for d in &o.devices {
            let (host, ctr, perms) = parse_device(d).map_err(EngineError::Usage)?;
            device_kind(&host)?;
            let mut options = vec!["bind".to_string(), "rprivate".to_string()];
            if !perms.contains('w') {
                options.push("ro".into());
            }
            mounts.retain(|m| m.destination() != &PathBuf::from(&ctr));
            mounts.push(
                MountBuilder::default()
                    .destination(ctr)
                    .typ("bind")
                    .source(host)
                    .options(options)
                    .build()
                    .map_err(|e| EngineError::Internal(format!("device {d}: {e}")))?,
            );
        }
        let mut sysctl: HashMap<String, String> = linux.sysctl().clone().unwrap_or_default();
        for s in &o.sysctls {
            let (k, v) = parse_sysctl(s).map_err(EngineError::Usage)?;
            sysctl.insert(k, v);
        }
        linux.set_namespaces(Some(namespaces));
        linux.set_sysctl(Some(sysctl));
        spec.set_linux(Some(linux));
        spec.set_mounts(Some(mounts));
        Ok(())
    }

    /// `--network container:X` at start: X's network namespace and its hosts, resolv.conf
    /// and hostname files (Docker shares them too).
    pub(crate) fn join_network_of(
        &self,
        key: &str,
    ) -> Result<(PathBuf, Vec<oci_spec::runtime::Mount>), EngineError> {
        let (other, ns) = self.container_ns("--network", key, "net")?;
        let dir = self.container_run_dir(&other.id);
        let mut mounts = Vec::new();
        for f in ["hosts", "hostname", "resolv.conf"] {
            let src = dir.join(f);
            if src.exists() {
                mounts.push(
                    MountBuilder::default()
                        .destination(format!("/etc/{f}"))
                        .typ("bind")
                        .source(src)
                        .options(vec!["rbind".into(), "rprivate".into()])
                        .build()
                        .map_err(|e| EngineError::Internal(format!("mount /etc/{f}: {e}")))?,
                );
            }
        }
        Ok((ns, mounts))
    }
}
