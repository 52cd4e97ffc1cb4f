//! Turns a container's resolved settings into an OCI runtime-spec `Spec` with Docker's
//! defaults: its mounts, masked and read-only paths, namespaces and capabilities.

use std::collections::HashSet;
use std::path::PathBuf;

use oci_spec::runtime::{
    Capabilities, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxNamespaceBuilder,
    LinuxNamespaceType, Mount, MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder,
};

use crate::container::config::{ContainerConfig, Resolved};
use crate::EngineError;

/// Docker's masked paths (hidden from the container).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn mount(dest: &str, typ: &str, src: &str, opts: &[&str]) -> Result<Mount, EngineError> {
    MountBuilder::default()
        .destination(PathBuf::from(dest))
        .typ(typ)
        .source(PathBuf::from(src))
        .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(spec_err)
}

fn spec_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(format!("building the OCI runtime config failed: {e}"))
}

/// Docker's default mounts; `/sys` is read-write only for privileged containers.
fn default_mounts(privileged: bool, shm_size: Option<u64>) -> Result<Vec<Mount>, EngineError> {
    let sys_opts: &[&str] = if privileged {
        &["nosuid", "noexec", "nodev"]
    } else {
        &["nosuid", "noexec", "nodev", "ro"]
    };
    Ok(vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        // nodev (unless privileged): the standard nodes are the host's, bind-mounted by
        // the runtime, and a node the container makes (CAP_MKNOD is Docker's default)
        // cannot be opened, here or on the root, which is nodev with it. That is what
        // Docker's device cgroup guarantees, on cgroup v1 and v2 alike without one.
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            if privileged {
                &["nosuid", "strictatime", "mode=755", "size=65536k"]
            } else {
                &["nosuid", "nodev", "strictatime", "mode=755", "size=65536k"]
            },
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount("/sys", "sysfs", "sysfs", sys_opts)?,
        // The container's own cgroup (its cgroup namespace's root), read-only as Docker
        // mounts it, so that JVM, Go and Node runtimes find their limits (v1, hybrid, v2).
        mount("/sys/fs/cgroup", "cgroup", "cgroup", sys_opts)?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &[
                "nosuid",
                "noexec",
                "nodev",
                "mode=1777",
                &format!("size={}k", shm_size.unwrap_or(64 << 20).div_ceil(1024)),
            ],
        )?,
    ])
}

/// `--ulimit`s as OCI rlimits.
pub(crate) fn rlimits(
    ulimits: &[String],
) -> Result<Vec<oci_spec::runtime::PosixRlimit>, EngineError> {
    ulimits
        .iter()
        .map(|u| {
            let (typ, soft, hard) =
                crate::container::config::parse_ulimit(u).map_err(EngineError::Usage)?;
            let typ: oci_spec::runtime::PosixRlimitType =
                serde_json::from_value(serde_json::Value::String(typ.into()))
                    .map_err(|e| EngineError::Internal(format!("rlimit {typ}: {e}")))?;
            oci_spec::runtime::PosixRlimitBuilder::default()
                .typ(typ)
                .soft(soft)
                .hard(hard)
                .build()
                .map_err(|e| EngineError::Internal(format!("rlimit {u}: {e}")))
        })
        .collect()
}

/// Capability names (`CAP_…`) for a mask, as oci-spec values.
pub(crate) fn cap_set(mask: u64) -> Capabilities {
    let mut set = HashSet::new();
    for name in gcr_runtime::caps::names(mask) {
        if let Ok(c) = serde_json::from_value::<Capability>(serde_json::Value::String(name)) {
            set.insert(c);
        }
    }
    set
}

/// Builds the runtime spec for a container.
pub fn build(cfg: &ContainerConfig, extra_mounts: Vec<Mount>) -> Result<Spec, EngineError> {
    let r: &Resolved = &cfg.resolved;
    let privileged = cfg.opts.privileged;
    let caps = cap_set(r.caps_mask);
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()
        .map_err(spec_err)?;
    let user = UserBuilder::default()
        .uid(r.uid)
        .gid(r.gid)
        .additional_gids(r.additional_gids.clone())
        .build()
        .map_err(spec_err)?;
    let mut process = ProcessBuilder::default()
        .terminal(cfg.opts.tty)
        .user(user)
        .args(r.args.clone())
        .env(r.env.clone())
        .cwd(PathBuf::from(&r.cwd))
        .capabilities(capabilities)
        .no_new_privileges(r.no_new_privileges)
        .rlimits(rlimits(&cfg.opts.ulimits)?)
        .build()
        .map_err(spec_err)?;
    process.set_oom_score_adj(cfg.opts.oom_score_adj);
    let mut namespaces = Vec::with_capacity(6);
    for typ in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Cgroup,
    ] {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(typ)
                .build()
                .map_err(spec_err)?,
        );
    }
    if r.network != "host" {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Network)
                .build()
                .map_err(spec_err)?,
        );
    }
    let (masked, readonly): (Vec<String>, Vec<String>) = if privileged {
        (vec![], vec![])
    } else {
        (
            MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
            READONLY_PATHS.iter().map(|s| s.to_string()).collect(),
        )
    };
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .masked_paths(masked)
        .readonly_paths(readonly)
        .build()
        .map_err(spec_err)?;
    let mut mounts = default_mounts(privileged, cfg.opts.shm_size)?;
    mounts.extend(extra_mounts);
    let root = RootBuilder::default()
        .path(PathBuf::from("rootfs"))
        .readonly(cfg.opts.read_only)
        .build()
        .map_err(spec_err)?;
    let mut spec = SpecBuilder::default()
        .version("1.0.2")
        .process(process)
        .root(root)
        .hostname(r.hostname.clone())
        .mounts(mounts)
        .linux(linux)
        .build()
        .map_err(spec_err)?;
    spec.set_domainname(cfg.opts.domainname.clone());
    Ok(spec)
}
