//! What a container is made of: the run flags as the user gave them, and the resolved
//! process (argv, env, cwd, user) computed once at create time from the image config.

use serde::{Deserialize, Serialize};

/// Restart policy, as Docker's `--restart`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case", tag = "name", content = "max")]
pub enum RestartPolicy {
    #[default]
    No,
    OnFailure(u32),
    Always,
    UnlessStopped,
}

impl RestartPolicy {
    /// `no`, the default (left out of a stored config).
    pub fn is_no(&self) -> bool {
        *self == RestartPolicy::No
    }

    /// Parses `no`, `on-failure[:N]`, `always`, `unless-stopped`.
    pub fn parse(s: &str) -> Option<RestartPolicy> {
        match s {
            "no" | "" => Some(RestartPolicy::No),
            "always" => Some(RestartPolicy::Always),
            "unless-stopped" => Some(RestartPolicy::UnlessStopped),
            "on-failure" => Some(RestartPolicy::OnFailure(0)),
            _ => {
                let n = s.strip_prefix("on-failure:")?;
                n.parse().ok().map(RestartPolicy::OnFailure)
            }
        }
    }

    /// Whether a container that exited with `code` after `restarts` restarts should start again.
    pub fn should_restart(&self, code: i32, restarts: u32, stopped_by_user: bool) -> bool {
        if stopped_by_user {
            return false;
        }
        match *self {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure(max) => code != 0 && (max == 0 || restarts < max),
        }
    }

    pub fn name(&self) -> String {
        match self {
            RestartPolicy::No => "no".into(),
            RestartPolicy::OnFailure(0) => "on-failure".into(),
            RestartPolicy::OnFailure(n) => format!("on-failure:{n}"),
            RestartPolicy::Always => "always".into(),
            RestartPolicy::UnlessStopped => "unless-stopped".into(),
        }
    }
}

/// Flags of `gcr run` / `gcr create`, as given.
/// Stored without the flags left at their defaults (a listing decodes every container's
/// config: most of them are defaults), read with them filled in.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunOptions {
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Arguments after the image name (replace the image's CMD).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    /// `--entrypoint`; `Some("")` clears the image's entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_files: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interactive: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub detach: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rm: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub init: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// `--cpu-shares` (relative weight; v2: converted to cpu.weight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<u64>,
    /// `--cpuset-cpus` (`0-2,4`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    /// `--cpuset-mems`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset_mems: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "RestartPolicy::is_no")]
    pub restart: RestartPolicy,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u32>,
    /// `-p [ip:]hostPort:containerPort[/proto]` as given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<String>,
    /// `-P`: publish every port the image exposes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub publish_all: bool,
    /// `-v name:/path[:ro]`, `-v /host:/path[:ro]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// `--expose PORT[-PORT][/PROTO]` as `PORT/PROTO` keys: exposed besides the image's
    /// (published by `-P`, shown in `Config.ExposedPorts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<String>,
    /// `--volumes-from CONTAINER[:ro|rw]`: that container's volumes and binds, at their
    /// paths (its mode, or the one given); kept with the container's name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes_from: Vec<String>,
    /// `--tmpfs /path[:options]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    /// `--health-cmd` (run with /bin/sh -c).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_cmd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_start_period: Option<String>,
    /// `--health-start-interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_start_interval: Option<String>,
    /// `--no-healthcheck`: ignore the image's healthcheck.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_healthcheck: bool,
    /// `--secret NAME[,target=…,uid=…,gid=…,mode=…]` as given (names only, never values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// `--mac-address`: the hardware address of the container's first interface (checked;
    /// default Docker's `02:42:<address>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// `--domainname`: the NIS domain name of the container's UTS namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    /// `--oom-score-adj` (-1000..1000): the container process's OOM killer preference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i32>,
    /// `--cgroup-parent`: the group the container's cgroup is made in (relative to each
    /// hierarchy's root, normalized by [`super::check_cgroup_parent`]) instead of `gcr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_parent: Option<String>,
    /// `--memory-reservation`, `--memory-swappiness`, `--oom-kill-disable` and the block
    /// I/O weights and throttles.
    #[serde(default, skip_serializing_if = "super::tuning::Tuning::is_empty")]
    pub tuning: super::tuning::Tuning,
    /// `--add-host NAME:IP` (checked), lines added to the container's /etc/hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_hosts: Vec<String>,
    /// `--link NAME[:ALIAS]` (Docker's legacy links), as `NAME:ALIAS` with the linked
    /// container's name: its address under both names in this container's /etc/hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// `--dns`, `--dns-search`, `--dns-option`: the container's /etc/resolv.conf.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_options: Vec<String>,
    /// `--shm-size` in bytes (default 64 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
    /// `--group-add GROUP` (a name from the image's /etc/group, or a number).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    /// `--ulimit NAME=SOFT[:HARD]` (checked by [`parse_ulimit`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<String>,
    /// `--mount type=…,source=…,target=…` as given (see [`crate::volumes::plan::parse_mount`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<String>,
    /// `--sysctl KEY=VALUE` (namespaced keys only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sysctls: Vec<String>,
    /// `--pid`, `--ipc`: `host` or `container:NAME|ID`; `--uts host` (see [`Sharing`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uts: Option<String>,
    /// `--userns`: `host` (containers are in the host's user namespace: gcr remaps none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns: Option<String>,
    /// `--device HOST[:CONTAINER][:rwm]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// `--cidfile PATH`: the container's id is written there when it is created (the CLI
    /// makes the file, empty, first: it must not exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidfile: Option<String>,
    /// `-a stdin|stdout|stderr` of a foreground run: only these streams are connected
    /// (empty: stdout and stderr, and stdin with `-i`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attach: Vec<String>,
    /// `--log-driver`: `json-file` (unset), `local` or `none` (see
    /// [`crate::logfile::LogDriver`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_driver: Option<String>,
    /// `--log-opt max-size=…`, `max-file=…` (see [`crate::logfile::LogRotation`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_opts: Vec<String>,
    /// `--network-alias`: more names the container answers to on its user network (as
    /// given, or set by `network connect --alias`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_aliases: Vec<String>,
    /// `--ip`: the IPv4 address to lease on its user network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// `--ip6`: the IPv6 address to lease on its (dual-stack) user network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<String>,
    /// The networks after the first (`network connect`, a second `--network`, more
    /// `EndpointsConfig`), in the order they were joined: interfaces `eth1`, `eth2`, ...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_networks: Vec<NetworkJoin>,
}

/// A further network of a container, with its endpoint options.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NetworkJoin {
    /// The network's name.
    pub name: String,
    /// Names the container answers to on this network besides its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The IPv4 address to lease on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The IPv6 address to lease on it (a dual-stack network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<String>,
}

impl RunOptions {
    /// Whether the container's output is kept for `logs` (its driver is not `none`).
    pub fn keeps_log(&self) -> bool {
        crate::logfile::LogDriver::parse(self.log_driver.as_deref())
            != Ok(crate::logfile::LogDriver::None)
    }

    /// Its log driver and rotation (see [`crate::logfile::LogDriver::settings`]).
    pub fn log_settings(
        &self,
    ) -> Result<
        (
            crate::logfile::LogDriver,
            Option<crate::logfile::LogRotation>,
        ),
        String,
    > {
        crate::logfile::LogDriver::settings(self.log_driver.as_deref(), &self.log_opts)
    }

    /// Whether a foreground run connects `stream` (stdin, stdout or stderr).
    pub fn attaches(&self, stream: &str) -> bool {
        if self.attach.is_empty() {
            return stream != "stdin" || self.interactive;
        }
        self.attach.iter().any(|a| a.eq_ignore_ascii_case(stream))
            && (stream != "stdin" || self.interactive)
    }
}

/// How a container holds one kind of namespace (`--pid`, `--ipc`, `--uts`, `--network`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sharing {
    /// Its own (the default).
    Private,
    /// The host's.
    Host,
    /// Another container's (name or id as given).
    Container(String),
}

impl Sharing {
    /// Parses `flag`'s value: `host`, `container:X`, or `private`/empty (and `shareable`
    /// for --ipc, Docker's default mode for a donor, which is private here too).
    pub fn parse(flag: &str, v: Option<&str>) -> Result<Sharing, String> {
        match v {
            None | Some("") | Some("private") => Ok(Sharing::Private),
            Some("shareable") if flag == "--ipc" => Ok(Sharing::Private),
            Some("host") => Ok(Sharing::Host),
            Some(c) if flag != "--uts" && c.starts_with("container:") && c.len() > 10 => {
                Ok(Sharing::Container(c["container:".len()..].to_string()))
            }
            Some(other) => Err(format!(
                "invalid {flag} '{other}': use {}",
                if flag == "--uts" {
                    "host (or leave it out for the container's own)"
                } else {
                    "host or container:NAME (or leave it out for the container's own)"
                }
            )),
        }
    }
}

/// Parses `--sysctl KEY=VALUE`.
/// Checks a `--cpuset-cpus` (`cpus`) or `--cpuset-mems` list: its syntax, and that this
/// host has those CPUs or memory nodes online. The error is one sentence naming `label`.
pub fn check_cpuset(label: &str, value: &str, cpus: bool) -> Result<(), String> {
    use gcr_runtime::cgroups::{CgroupError, CpusetKind};
    let kind = if cpus {
        CpusetKind::Cpus
    } else {
        CpusetKind::Mems
    };
    gcr_runtime::cgroups::check_cpuset(label, value, kind).map_err(|e| match e {
        CgroupError::Invalid(m) => m,
        e => e.to_string(),
    })
}

pub fn parse_sysctl(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!(
            "invalid --sysctl '{s}': use KEY=VALUE, e.g. net.ipv4.ip_forward=1"
        )),
    }
}

/// One `--device HOST[:CONTAINER][:PERMS]`: (host path, container path, permissions).
pub fn parse_device(s: &str) -> Result<(String, String, String), String> {
    let bad = |why: &str| format!("invalid --device '{s}': {why}");
    let parts: Vec<&str> = s.split(':').collect();
    let perms_ok = |p: &str| !p.is_empty() && p.chars().all(|c| "rwm".contains(c));
    let (host, ctr, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if perms_ok(p) => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => return Err(bad("use HOST[:CONTAINER][:rwm]")),
    };
    if !host.starts_with('/') || !ctr.starts_with("/dev/") || ctr.split('/').any(|c| c == "..") {
        return Err(bad(
            "give the host device's absolute path and a container path under /dev",
        ));
    }
    if !perms_ok(perms) {
        return Err(bad("permissions are a combination of r, w and m"));
    }
    Ok((host.to_string(), ctr.to_string(), perms.to_string()))
}

/// Docker's `--ulimit` names and the OCI rlimit types they set.
const ULIMITS: &[(&str, &str)] = &[
    ("as", "RLIMIT_AS"),
    ("core", "RLIMIT_CORE"),
    ("cpu", "RLIMIT_CPU"),
    ("data", "RLIMIT_DATA"),
    ("fsize", "RLIMIT_FSIZE"),
    ("locks", "RLIMIT_LOCKS"),
    ("memlock", "RLIMIT_MEMLOCK"),
    ("msgqueue", "RLIMIT_MSGQUEUE"),
    ("nice", "RLIMIT_NICE"),
    ("nofile", "RLIMIT_NOFILE"),
    ("nproc", "RLIMIT_NPROC"),
    ("rss", "RLIMIT_RSS"),
    ("rtprio", "RLIMIT_RTPRIO"),
    ("rttime", "RLIMIT_RTTIME"),
    ("sigpending", "RLIMIT_SIGPENDING"),
    ("stack", "RLIMIT_STACK"),
];

/// `NAME=SOFT[:HARD]` → (OCI type name, soft, hard); `-1` is unlimited.
pub fn parse_ulimit(s: &str) -> Result<(&'static str, u64, u64), String> {
    let bad = |why: &str| format!("invalid --ulimit '{s}': {why}");
    let (name, vals) = s
        .split_once('=')
        .ok_or_else(|| bad("use NAME=SOFT[:HARD], e.g. nofile=1024:2048"))?;
    let typ = ULIMITS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = ULIMITS.iter().map(|(n, _)| *n).collect();
            bad(&format!(
                "unknown limit '{name}'; use one of {}",
                names.join(", ")
            ))
        })?;
    let num = |v: &str| -> Result<u64, String> {
        if v == "-1" {
            return Ok(u64::MAX);
        }
        v.parse::<u64>()
            .map_err(|_| bad(&format!("'{v}' is not a number")))
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(vals)?, num(vals)?),
    };
    if soft > hard {
        return Err(bad("the soft limit is above the hard limit"));
    }
    Ok((typ, soft, hard))
}

/// A healthcheck as resolved from the image and the flags (durations in milliseconds).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HealthConfig {
    pub test: Vec<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub retries: u32,
    pub start_period_ms: u64,
    /// `--health-start-interval`: between checks during the start period (0: the interval).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval_ms: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl HealthConfig {
    /// How long after a check (or the start, `since_start` ago) the next one runs: the
    /// start interval within the start period, else the interval.
    pub fn next_in_ms(&self, since_start_ms: u64) -> u64 {
        if self.start_interval_ms > 0 && since_start_ms < self.start_period_ms {
            self.start_interval_ms
        } else {
            self.interval_ms
        }
    }
}

/// The process and settings resolved at create time; stored with the container so that
/// `start` never needs to look at the image config again.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Resolved {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_gids: Vec<u32>,
    pub hostname: String,
    pub caps_mask: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_new_privileges: bool,
    pub seccomp: bool,
    pub stop_signal: i32,
    pub stop_timeout: u32,
    pub network: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<(String, String)>,
    /// Overlay lower directories, top layer first.
    pub lowers: Vec<String>,
    /// Network-specific facts (address, ports, ...) kept by the network module.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub network_data: serde_json::Value,
    /// Volume-specific facts kept by the volumes module.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub volume_data: serde_json::Value,
    /// The healthcheck, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthConfig>,
}

impl Resolved {
    /// The seccomp mode the runtime applies to the container's processes.
    pub fn seccomp_mode(&self) -> gcr_runtime::SeccompMode {
        if self.seccomp {
            gcr_runtime::SeccompMode::DockerDefault
        } else {
            gcr_runtime::SeccompMode::Unconfined
        }
    }
}

/// Everything stored in the `config` column of a container row.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub opts: RunOptions,
    pub resolved: Resolved,
    /// The policy gate's allow (rule and policy digest), when a policy was in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_options_leave_out_defaults_and_read_back_whole() {
        let o = RunOptions {
            image: "bb:1".into(),
            name: Some("c1".into()),
            cmd: vec!["true".into()],
            tty: true,
            restart: RestartPolicy::Always,
            ..RunOptions::default()
        };
        let text = serde_json::to_string(&o).unwrap();
        assert_eq!(
            text,
            r#"{"image":"bb:1","name":"c1","cmd":["true"],"tty":true,"restart":{"name":"always"}}"#
        );
        let back: RunOptions = serde_json::from_str(&text).unwrap();
        assert_eq!(back.name.as_deref(), Some("c1"));
        assert!(back.tty && !back.interactive && back.publish.is_empty());
        assert_eq!(back.restart, RestartPolicy::Always);
        // A config stored with every field (earlier versions) reads the same.
        let full = r#"{"image":"bb:1","name":null,"cmd":[],"entrypoint":null,"env":[],"tty":false,
            "restart":{"name":"no"},"labels":[],"publish":[],"no_healthcheck":false}"#;
        let old: RunOptions = serde_json::from_str(full).unwrap();
        assert_eq!(old.restart, RestartPolicy::No);
        assert_eq!(serde_json::to_string(&old).unwrap(), r#"{"image":"bb:1"}"#);
    }

    #[test]
    fn restart_policies_parse_and_decide() {
        assert_eq!(
            RestartPolicy::parse("on-failure:3"),
            Some(RestartPolicy::OnFailure(3))
        );
        assert_eq!(RestartPolicy::parse("sometimes"), None);
        let p = RestartPolicy::OnFailure(2);
        assert!(p.should_restart(1, 0, false));
        assert!(p.should_restart(1, 1, false));
        assert!(!p.should_restart(1, 2, false));
        assert!(!p.should_restart(0, 0, false));
        assert!(!RestartPolicy::Always.should_restart(1, 0, true));
        assert!(RestartPolicy::Always.should_restart(0, 50, false));
    }
}
