//! Reading a bundle: `config.json` parsed into an oci-spec `Spec`, the root directory
//! resolved inside the bundle, relative bind-mount sources made absolute against it, the
//! network namespace choice, and every field gcr does not implement refused by name.

use std::path::{Component, Path, PathBuf};

use gcr_runtime::Network;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::OciError;

/// A bundle ready to launch.
pub struct Bundle {
    /// The bundle directory, absolute.
    pub dir: PathBuf,
    /// The root filesystem, absolute, inside `dir`.
    pub rootfs: PathBuf,
    pub spec: Spec,
}

/// Reads and checks the bundle in `dir`.
pub fn load(dir: &Path) -> Result<Bundle, OciError> {
    let dir =
        std::path::absolute(dir).map_err(|e| OciError::io("cannot resolve the bundle", dir, e))?;
    let path = dir.join("config.json");
    let text = std::fs::read(&path).map_err(|source| OciError::NoConfig {
        path: path.clone(),
        source,
    })?;
    let mut spec: Spec = serde_json::from_slice(&text).map_err(|e| OciError::BadConfig {
        path: path.clone(),
        msg: e.to_string(),
    })?;
    check_unsupported(&spec)?;
    crate::userns::check(&spec)?;
    let root = spec.root().as_ref().ok_or_else(|| {
        OciError::Invalid("config.json has no root; add {\"root\":{\"path\":\"rootfs\"}}".into())
    })?;
    let rootfs = resolve_root(&dir, root.path())?;
    if spec.process().is_none() {
        return Err(OciError::Invalid(
            "config.json has no process; add one with args".into(),
        ));
    }
    let has_mount_ns = namespaces(&spec)
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Mount && n.path().is_none());
    if !has_mount_ns {
        return Err(OciError::Invalid(
            "linux.namespaces must include a new mount namespace ({\"type\":\"mount\"}) for gcr-runc".into(),
        ));
    }
    if let Some(mounts) = spec.mounts().clone() {
        let fixed = mounts
            .into_iter()
            .map(|mut m| {
                let bind = m.typ().as_deref() == Some("bind")
                    || m.options()
                        .as_ref()
                        .is_some_and(|o| o.iter().any(|o| o == "bind" || o == "rbind"));
                if bind {
                    if let Some(src) = m.source().clone().filter(|s| s.is_relative()) {
                        m.set_source(Some(dir.join(src)));
                    }
                }
                m
            })
            .collect();
        spec.set_mounts(Some(fixed));
    }
    Ok(Bundle { dir, rootfs, spec })
}

fn namespaces(spec: &Spec) -> &[oci_spec::runtime::LinuxNamespace] {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or(&[])
}

/// `root.path` as an absolute directory inside the bundle.
fn resolve_root(dir: &Path, p: &Path) -> Result<PathBuf, OciError> {
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(OciError::Invalid(format!(
            "root.path {} contains \"..\"; give a directory inside the bundle",
            p.display()
        )));
    }
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    };
    let real = abs
        .canonicalize()
        .map_err(|e| OciError::io("cannot open root.path", &abs, e))?;
    let real_dir = dir
        .canonicalize()
        .map_err(|e| OciError::io("cannot open the bundle", dir, e))?;
    if !real.starts_with(&real_dir) || real == real_dir {
        return Err(OciError::Invalid(format!(
            "root.path {} is outside the bundle {}; put the root filesystem inside it",
            p.display(),
            dir.display()
        )));
    }
    if !real.is_dir() {
        return Err(OciError::Invalid(format!(
            "root.path {} is not a directory",
            p.display()
        )));
    }
    Ok(real)
}

/// The network namespace choice of the config.
pub fn network(spec: &Spec) -> Network {
    match namespaces(spec)
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::Network)
    {
        None => Network::Host,
        Some(n) => match n.path() {
            Some(p) => Network::Join(p.clone()),
            None => Network::NewLoopback,
        },
    }
}

/// Refuses, by name, the fields gcr-runc does not implement.
fn check_unsupported(spec: &Spec) -> Result<(), OciError> {
    let v = spec.version();
    if !v.starts_with("1.") {
        return Err(OciError::Invalid(format!(
            "ociVersion {v:?} is not a 1.x runtime spec version"
        )));
    }
    crate::hooks::check(spec.hooks().as_ref())?;
    if let Some(p) = spec.process() {
        // "unconfined" asks for no profile (CRI-O writes it when there is none): nothing
        // to apply. Any other profile gcr cannot load, so it is refused.
        if p.apparmor_profile()
            .as_ref()
            .is_some_and(|s| !s.is_empty() && s != "unconfined")
        {
            return Err(OciError::unsupported("process.apparmorProfile"));
        }
        if p.selinux_label().as_ref().is_some_and(|s| !s.is_empty()) {
            return Err(OciError::unsupported("process.selinuxLabel"));
        }
        if p.io_priority().is_some() {
            return Err(OciError::unsupported("process.ioPriority"));
        }
        if p.scheduler().is_some() {
            return Err(OciError::unsupported("process.scheduler"));
        }
        if p.exec_cpu_affinity().is_some() {
            return Err(OciError::unsupported("process.execCPUAffinity"));
        }
    }
    let Some(l) = spec.linux() else {
        return Err(OciError::Invalid(
            "config.json has no linux section; add one with namespaces".into(),
        ));
    };
    let checks = [
        (l.intel_rdt().is_some(), "linux.intelRdt"),
        (
            l.mount_label().as_ref().is_some_and(|s| !s.is_empty()),
            "linux.mountLabel",
        ),
    ];
    if let Some((_, f)) = checks.iter().find(|(set, _)| *set) {
        return Err(OciError::unsupported(f));
    }
    crate::linux_extra::check(spec, l, namespaces(spec))?;
    Ok(())
}
