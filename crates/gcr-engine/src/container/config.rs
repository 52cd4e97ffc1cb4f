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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunOptions {
    pub image: String,
    pub name: Option<String>,
    /// Arguments after the image name (replace the image's CMD).
    pub cmd: Vec<String>,
    /// `--entrypoint`; `Some("")` clears the image's entrypoint.
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub env_files: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
    pub rm: bool,
    pub init: bool,
    pub memory: Option<u64>,
    pub memory_swap: Option<i64>,
    pub cpus: Option<f64>,
    pub pids_limit: Option<i64>,
    pub read_only: bool,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    pub network: Option<String>,
    pub restart: RestartPolicy,
    pub labels: Vec<String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u32>,
    /// `-p [ip:]hostPort:containerPort[/proto]` as given.
    #[serde(default)]
    pub publish: Vec<String>,
    /// `-P`: publish every port the image exposes.
    #[serde(default)]
    pub publish_all: bool,
    /// `-v name:/path[:ro]`, `-v /host:/path[:ro]`.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// `--tmpfs /path[:options]`.
    #[serde(default)]
    pub tmpfs: Vec<String>,
    /// `--health-cmd` (run with /bin/sh -c).
    #[serde(default)]
    pub health_cmd: Option<String>,
    #[serde(default)]
    pub health_interval: Option<String>,
    #[serde(default)]
    pub health_timeout: Option<String>,
    #[serde(default)]
    pub health_retries: Option<u32>,
    #[serde(default)]
    pub health_start_period: Option<String>,
    /// `--no-healthcheck`: ignore the image's healthcheck.
    #[serde(default)]
    pub no_healthcheck: bool,
    /// `--secret NAME[,target=…,uid=…,gid=…,mode=…]` as given (names only, never values).
    #[serde(default)]
    pub secrets: Vec<String>,
}

/// A healthcheck as resolved from the image and the flags (durations in milliseconds).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HealthConfig {
    pub test: Vec<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub retries: u32,
    pub start_period_ms: u64,
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
    pub additional_gids: Vec<u32>,
    pub hostname: String,
    pub caps_mask: u64,
    pub no_new_privileges: bool,
    pub seccomp: bool,
    pub stop_signal: i32,
    pub stop_timeout: u32,
    pub network: String,
    pub labels: Vec<(String, String)>,
    /// Overlay lower directories, top layer first.
    pub lowers: Vec<String>,
    /// Network-specific facts (address, ports, ...) kept by the network module.
    #[serde(default)]
    pub network_data: serde_json::Value,
    /// Volume-specific facts kept by the volumes module.
    #[serde(default)]
    pub volume_data: serde_json::Value,
    /// The healthcheck, if any.
    #[serde(default)]
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
