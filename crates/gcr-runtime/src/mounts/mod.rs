//! The container's filesystem view: overlay (or bind) root, the spec's mounts, /dev nodes
//! and links, pivot_root, masked and read-only paths, and `--read-only`.
//!
//! [`MountPlan::prepare`] turns the spec into C strings and flags in the parent;
//! [`MountPlan::apply`] runs in the child (already in its own mount namespace) and only
//! makes system calls. Mount destinations are resolved inside the new root (openat2 with
//! RESOLVE_IN_ROOT, and a component walk that creates what is missing, `walk.rs`), so a
//! symlink in the image can redirect a mount only to another place inside the root.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use libc::c_ulong;
use oci_spec::runtime::Spec;

mod apply;
mod secrets;
mod walk;

pub use secrets::SecretFile;

use crate::mountopts;
use crate::{Rootfs, RuntimeError};

enum RootStep {
    Overlay {
        chdir: Option<CString>,
        opts: CString,
        /// The same options without `volatile`, for kernels before 5.10 (EINVAL).
        fallback: Option<CString>,
        target: CString,
    },
    Bind(CString),
    /// Attach a detached mount (made ahead with the new mount API) at the target.
    Attach {
        fd: std::os::fd::RawFd,
        target: CString,
    },
}

struct MountStep {
    /// The destination as written in the spec, for error messages.
    dest: String,
    source: Option<CString>,
    rel: CString,
    /// Create a missing destination as a file (a file bind), else as a directory.
    file: bool,
    fstype: Option<CString>,
    flags: c_ulong,
    data: Option<CString>,
    bind: bool,
    propagation: c_ulong,
    /// Only remount the existing mount at the destination with `flags` (MS_BIND|MS_REMOUNT).
    remount_only: bool,
    /// A cgroup mount: made once the process is in its cgroup and cgroup namespace (a
    /// mount made before shows the host's hierarchy from its root).
    after_join: bool,
    /// A tmpfs on a destination that exists takes that directory's mode (runc 1.1; see
    /// [`MountPlan::keep_tmpfs_modes`]).
    keep_mode: bool,
    /// A sysfs mount in a new user namespace: when the kernel refuses it (the network
    /// namespace is not the user namespace's own), the host's /sys is bind-mounted
    /// instead, as runc does.
    sysfs_bind_fallback: bool,
}

struct Device {
    name: CString,
    mode: libc::mode_t,
    dev: libc::dev_t,
    /// On a `nodev` /dev: the host node bind-mounted in its place (a node made there
    /// could not be opened).
    host: Option<CString>,
}

/// The mount work of one container start, prepared before clone.
pub(crate) struct MountPlan {
    propagation: c_ulong,
    root: RootStep,
    steps: Vec<MountStep>,
    dev_tmpfs: bool,
    /// The /dev tmpfs is `nodev` (the engine's hardening, see [`MountPlan::hardened`]).
    dev_nodev: bool,
    devices: Vec<Device>,
    masked: Vec<CString>,
    readonly: Vec<CString>,
    root_readonly: bool,
    secrets: secrets::SecretsPlan,
}

/// Opens the directory `path` (absolute or relative, resolved inside the root `rootfd`),
/// creating what is missing there; child side, no allocation. Returns an `O_PATH`
/// descriptor or an errno.
pub(crate) fn create_in_root(
    rootfd: std::os::fd::RawFd,
    path: &std::ffi::CStr,
) -> Result<std::os::fd::RawFd, i32> {
    walk::open_or_create(rootfd, path, false)
}

fn cpath(p: &Path) -> Result<CString, RuntimeError> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| RuntimeError::InvalidSpec(format!("path {} contains a NUL byte", p.display())))
}

fn cstr(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

/// Normal components of an absolute container path ("/dev/pts" -> ["dev", "pts"]).
fn components(dest: &Path) -> Result<Vec<String>, RuntimeError> {
    let mut out = Vec::new();
    for c in dest.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
            _ => {
                return Err(RuntimeError::InvalidSpec(format!(
                    "mount destination {} must be an absolute path without \"..\"",
                    dest.display()
                )))
            }
        }
    }
    Ok(out)
}

fn overlay_step(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<RootStep, RuntimeError> {
    if lowers.is_empty() {
        return Err(RuntimeError::InvalidSpec(
            "the overlay root has no lower layer".into(),
        ));
    }
    let all: Vec<&Path> = lowers
        .iter()
        .map(|p| p.as_path())
        .chain([upper, work])
        .collect();
    for p in &all {
        let s = p.as_os_str().as_bytes();
        if s.contains(&b',') || s.contains(&b':') {
            return Err(RuntimeError::InvalidSpec(format!(
                "overlay layer path {} contains ',' or ':'; move the store to a plain path",
                p.display()
            )));
        }
    }
    let build = |f: &dyn Fn(&Path) -> String| {
        let lower: Vec<String> = lowers.iter().map(|p| f(p)).collect();
        format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            f(upper),
            f(work)
        )
    };
    let page = 4095;
    let full = build(&|p| p.display().to_string());
    if full.len() <= page {
        return Ok(RootStep::Overlay {
            chdir: None,
            opts: cstr(&full),
            fallback: None,
            target: cpath(target)?,
        });
    }
    // Too long for one page: use paths relative to the deepest common parent.
    let mut common = all[0].parent().map(Path::to_path_buf).unwrap_or_default();
    while !all.iter().all(|p| p.starts_with(&common)) {
        if !common.pop() {
            break;
        }
    }
    let rel = build(&|p| p.strip_prefix(&common).unwrap_or(p).display().to_string());
    if rel.len() > page {
        return Err(RuntimeError::InvalidSpec(format!(
            "the image has too many layers for one overlay mount ({} bytes of options); squash it",
            rel.len()
        )));
    }
    Ok(RootStep::Overlay {
        chdir: Some(cpath(&common)?),
        opts: cstr(&rel),
        fallback: None,
        target: cpath(target)?,
    })
}

fn host_is_cgroup2() -> bool {
    // SAFETY: statfs fills a zeroed stack struct.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c"/sys/fs/cgroup".as_ptr(), &mut st) == 0
            && st.f_type as u64 == libc::CGROUP2_SUPER_MAGIC as u64
    }
}

/// Whether the spec asks for a new cgroup namespace.
fn own_cgroupns(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::Cgroup && n.path().is_none()
            })
        })
}

/// Host cgroup hierarchies mounted directly under /sys/fs/cgroup: (dir name, fs type,
/// mount options such as "cpu" or "name=systemd").
pub(crate) fn host_hierarchies(mountinfo: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mp) = left.split(' ').nth(4) else {
            continue;
        };
        let Some(name) = mp.strip_prefix("/sys/fs/cgroup/") else {
            continue;
        };
        let mut r = right.split(' ');
        let (Some(fstype), Some(_), Some(opts)) = (r.next(), r.next(), r.next()) else {
            continue;
        };
        if name.is_empty() || name.contains('/') || (fstype != "cgroup" && fstype != "cgroup2") {
            continue;
        }
        let opts: Vec<&str> = opts
            .split(',')
            .filter(|o| *o != "rw" && *o != "ro")
            .collect();
        let opts = if fstype == "cgroup2" {
            String::new()
        } else {
            opts.join(",")
        };
        out.push((name.to_string(), fstype.to_string(), opts));
    }
    out
}

/// One read-only cgroup mount per host hierarchy under `dest`, then `dest` itself read-only.
fn cgroup_v1_steps(steps: &mut Vec<MountStep>, dest: &Path, comps: &[String], flags: c_ulong) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let sub_flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RDONLY;
    for (name, fstype, opts) in host_hierarchies(&mountinfo) {
        let rel = format!("{}/{name}", comps.join("/"));
        steps.push(MountStep {
            dest: format!("{}/{name}", dest.display()),
            source: Some(cstr(&fstype)),
            rel: cstr(&rel),
            file: false,
            fstype: Some(cstr(&fstype)),
            flags: sub_flags,
            data: (!opts.is_empty()).then(|| cstr(&opts)),
            bind: false,
            propagation: 0,
            remount_only: false,
            keep_mode: false,
            after_join: true,
            sysfs_bind_fallback: false,
        });
    }
    steps.push(MountStep {
        dest: dest.display().to_string(),
        source: None,
        rel: cstr(&comps.join("/")),
        file: false,
        fstype: None,
        flags: libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | (flags & !libc::MS_RDONLY),
        data: None,
        bind: false,
        propagation: 0,
        remount_only: true,
        keep_mode: false,
        after_join: true,
        sysfs_bind_fallback: false,
    });
}

impl MountPlan {
    /// The spec destination of the mount step named by a child report code, if any.
    pub(crate) fn describe(&self, code: u32) -> Option<String> {
        let i = (code >> 8) as usize;
        (i > 0)
            .then(|| {
                self.steps
                    .get(i - 1)
                    .map(|s| format!(" {} (check its source and options)", s.dest))
            })
            .flatten()
    }

    /// Descriptors the child needs (a detached root mount).
    pub(crate) fn keep_fds(&self) -> Option<std::os::fd::RawFd> {
        match &self.root {
            RootStep::Attach { fd, .. } => Some(*fd),
            _ => None,
        }
    }

    /// `userns`: the container makes its own user namespace, where device nodes cannot be
    /// made (the host's are bind-mounted, as runc) and sysfs may need a bind of /sys.
    pub(crate) fn prepare(
        spec: &Spec,
        rootfs: &Rootfs,
        secret_files: Vec<SecretFile>,
        userns: bool,
    ) -> Result<MountPlan, RuntimeError> {
        let secrets = secrets::SecretsPlan::prepare(secret_files)?;
        let root = match rootfs {
            Rootfs::Overlay {
                lowers,
                upper,
                work,
                target,
                volatile,
            } => {
                let mut step = overlay_step(lowers, upper, work, target)?;
                if let RootStep::Overlay { opts, fallback, .. } = &mut step {
                    if *volatile && opts.as_bytes().len() + 9 <= 4095 {
                        let mut v = opts.as_bytes().to_vec();
                        v.extend_from_slice(b",volatile");
                        *fallback =
                            Some(std::mem::replace(opts, CString::new(v).unwrap_or_default()));
                    }
                }
                step
            }
            Rootfs::Path(p) => RootStep::Bind(cpath(p)?),
            Rootfs::Attach { mount, target } => RootStep::Attach {
                fd: std::os::fd::AsRawFd::as_raw_fd(mount),
                target: cpath(target)?,
            },
        };
        let linux = spec.linux().as_ref();
        let propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
            Some("private") | Some("rprivate") => libc::MS_PRIVATE | libc::MS_REC,
            Some("shared") | Some("rshared") => libc::MS_SHARED | libc::MS_REC,
            _ => libc::MS_SLAVE | libc::MS_REC,
        };
        let mut steps = Vec::new();
        let mut dev_tmpfs = false;
        let mut dev_nodev = false;
        let mut cgroup2: Option<bool> = None;
        for m in spec.mounts().as_deref().unwrap_or(&[]) {
            let comps = components(m.destination())?;
            if comps.is_empty() {
                return Err(RuntimeError::InvalidSpec(
                    "a mount cannot cover the container root /".into(),
                ));
            }
            let opts = mountopts::parse(m.options().as_deref().unwrap_or(&[]));
            let mut typ = m.typ().clone().unwrap_or_default();
            let bind = opts.bind || typ == "bind";
            let mut data = opts.data.clone();
            let mut flags = opts.flags;
            let mut v1_tree = false;
            let cgroup = typ == "cgroup" || typ == "cgroup2";
            if typ == "cgroup" {
                // cgroup2 shows the container's own cgroup namespace. On v1/hybrid hosts a
                // tmpfs holds one read-only mount per host hierarchy (seen from the
                // container's cgroup namespace), then turns read-only; without a cgroup
                // namespace the tmpfs stays empty.
                if *cgroup2.get_or_insert_with(host_is_cgroup2) {
                    typ = "cgroup2".into();
                } else {
                    typ = "tmpfs".into();
                    data = "mode=755".into();
                    v1_tree = own_cgroupns(spec);
                    if !v1_tree {
                        flags |= libc::MS_RDONLY;
                    }
                }
            }
            if comps == ["dev"] && typ == "tmpfs" {
                dev_tmpfs = true;
                dev_nodev = flags & libc::MS_NODEV != 0;
            }
            let source = m.source().as_ref().map(|s| cpath(s)).transpose()?;
            let file = bind
                && m.source()
                    .as_ref()
                    .is_some_and(|s| s.metadata().is_ok_and(|md| !md.is_dir()));
            steps.push(MountStep {
                dest: m.destination().display().to_string(),
                source,
                rel: cstr(&comps.join("/")),
                file,
                fstype: if bind { None } else { Some(cstr(&typ)) },
                flags: if bind {
                    libc::MS_BIND | (flags & libc::MS_REC)
                } else if v1_tree {
                    flags & !libc::MS_RDONLY // filled first, made read-only by the last step
                } else {
                    flags
                },
                data: if bind || data.is_empty() {
                    None
                } else {
                    Some(cstr(&data))
                },
                bind,
                propagation: opts.propagation,
                remount_only: false,
                after_join: cgroup,
                keep_mode: false,
                sysfs_bind_fallback: userns && typ == "sysfs",
            });
            if bind {
                // The remount carries the ro/nosuid/... flags of a bind mount.
                if let Some(s) = steps.last_mut() {
                    s.flags |= flags & !(libc::MS_BIND | libc::MS_REC);
                }
            }
            if v1_tree {
                cgroup_v1_steps(&mut steps, m.destination(), &comps, flags);
            }
        }
        let mut devices = Vec::new();
        let bind_nodes = dev_nodev || userns;
        if dev_tmpfs {
            for (name, major, minor) in [
                ("null", 1, 3),
                ("zero", 1, 5),
                ("full", 1, 7),
                ("random", 1, 8),
                ("urandom", 1, 9),
                ("tty", 5, 0),
            ] {
                devices.push(Device {
                    name: cstr(name),
                    mode: libc::S_IFCHR | 0o666,
                    dev: libc::makedev(major, minor),
                    host: bind_nodes.then(|| cstr(&format!("/dev/{name}"))),
                });
            }
            for d in linux.and_then(|l| l.devices().as_deref()).unwrap_or(&[]) {
                let comps = components(d.path())?;
                let name = match comps.as_slice() {
                    [dev, name] if dev == "dev" => name.clone(),
                    _ => {
                        return Err(RuntimeError::InvalidSpec(format!(
                            "device {} must be directly under /dev",
                            d.path().display()
                        )))
                    }
                };
                let kind = match d.typ() {
                    oci_spec::runtime::LinuxDeviceType::B => libc::S_IFBLK,
                    oci_spec::runtime::LinuxDeviceType::P => libc::S_IFIFO,
                    _ => libc::S_IFCHR,
                };
                devices.retain(|x: &Device| x.name.as_bytes() != name.as_bytes());
                devices.push(Device {
                    name: cstr(&name),
                    mode: kind | d.file_mode().unwrap_or(0o666),
                    dev: libc::makedev(d.major() as u32, d.minor() as u32),
                    host: bind_nodes.then(|| cpath(d.path())).transpose()?,
                });
            }
        }
        let list = |v: Option<&Vec<String>>| {
            v.map(|v| v.iter().map(|p| cstr(p)).collect())
                .unwrap_or_default()
        };
        Ok(MountPlan {
            propagation,
            root,
            steps,
            dev_tmpfs,
            dev_nodev,
            devices,
            masked: list(linux.and_then(|l| l.masked_paths().as_ref())),
            readonly: list(linux.and_then(|l| l.readonly_paths().as_ref())),
            root_readonly: spec
                .root()
                .as_ref()
                .and_then(|r| r.readonly())
                .unwrap_or(false),
            secrets,
        })
    }
}

impl MountPlan {
    /// runc's tmpfs rule (gcr-runc): a tmpfs mounted on a directory that already exists
    /// in the root gets that directory's mode, whatever its `mode=` option says.
    pub(crate) fn keep_tmpfs_modes(&mut self) {
        for s in &mut self.steps {
            s.keep_mode = !s.after_join
                && !s.bind
                && s.fstype
                    .as_deref()
                    .is_some_and(|t| t.to_bytes() == b"tmpfs");
        }
    }
}

#[cfg(test)]
mod tests;
