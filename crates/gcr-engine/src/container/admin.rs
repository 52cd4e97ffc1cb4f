//! Docker's container housekeeping verbs: `rename` (the row and its event in one unit, and
//! the names its user network resolves), `update` (limits and restart policy, applied to
//! a running container's cgroup and stored, past the policy gate) and `container prune`
//! (every container that is not running, with what its files took).

use super::config::RestartPolicy;
use super::record::{self, Record};
use crate::names::valid_name;
use crate::{Engine, EngineError, State};

/// What `container prune` removed.
#[derive(Debug, Default)]
pub struct Pruned {
    pub ids: Vec<String>,
    /// Bytes of the removed containers' own files (their writable layers).
    pub bytes: u64,
}

/// What `gcr update` changes (None: unchanged).
#[derive(Debug, Default, Clone)]
pub struct UpdateRequest {
    pub memory: Option<u64>,
    pub memory_swap: Option<i64>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    /// `--memory-reservation`, bytes.
    pub memory_reservation: Option<u64>,
    /// `--blkio-weight`, 10-1000.
    pub blkio_weight: Option<u16>,
    pub restart: Option<RestartPolicy>,
}

impl Engine {
    /// `gcr update`: new limits hold at once for a running container and at every start.
    pub fn update(&self, key: &str, u: &UpdateRequest) -> Result<Record, EngineError> {
        let r = self.container(key)?;
        let mut next = r.clone();
        let o = &mut next.config.opts;
        o.memory = u.memory.or(o.memory);
        o.memory_swap = u.memory_swap.or(o.memory_swap);
        o.cpus = u.cpus.or(o.cpus);
        o.cpu_shares = u.cpu_shares.or(o.cpu_shares);
        o.cpuset_cpus = u.cpuset_cpus.clone().or(o.cpuset_cpus.take());
        o.cpuset_mems = u.cpuset_mems.clone().or(o.cpuset_mems.take());
        o.pids_limit = u.pids_limit.or(o.pids_limit);
        o.restart = u.restart.unwrap_or(o.restart);
        o.tuning.memory_reservation = u.memory_reservation.or(o.tuning.memory_reservation);
        o.tuning.blkio_weight = u.blkio_weight.or(o.tuning.blkio_weight);
        o.tuning
            .check_values(o.memory)
            .map_err(EngineError::Usage)?;
        // What the host cannot apply is refused here (a create discards it with a warning).
        let asked = super::tuning::Tuning {
            memory_reservation: u.memory_reservation,
            blkio_weight: u.blkio_weight,
            ..Default::default()
        };
        if !asked.is_empty() {
            if let Some((flag, _)) = asked.unsupported(self.cgroup_support()?).first() {
                return Err(EngineError::Usage(format!(
                    "cannot update container {}: this host's cgroups cannot apply {flag}; drop it",
                    r.name
                )));
            }
        }
        // The run policy's ceilings hold for updates as for starts.
        self.gate_start(&next)?;
        if r.state.is_alive() {
            let mut res = gcr_runtime::cgroups::Resources {
                memory: next.config.opts.memory,
                memory_swap: next.config.opts.memory_swap,
                cpus: next.config.opts.cpus,
                cpu_shares: next.config.opts.cpu_shares,
                pids: next.config.opts.pids_limit,
                // Only what this update sets (the rest is in place already).
                cpuset_cpus: u.cpuset_cpus.clone(),
                cpuset_mems: u.cpuset_mems.clone(),
                cpuset_group: false,
                ..Default::default()
            };
            // Only what this update sets, as for the cpusets.
            asked.apply(&mut res).map_err(EngineError::Usage)?;
            self.cgroup(&r.id)?.update(&res).map_err(|e| {
                EngineError::Usage(format!("cannot update container {}: {e}", r.name))
            })?;
        }
        record::set_config(self.store()?.conn(), &r, &next.config, "update")?;
        self.container(&r.id)
    }

    /// `gcr rename CONTAINER NEW_NAME`.
    pub fn rename(&self, key: &str, new: &str) -> Result<Record, EngineError> {
        let new = new.strip_prefix('/').unwrap_or(new);
        if !valid_name(new) {
            return Err(EngineError::Usage(format!(
                "invalid container name '{new}': use at least two characters from [a-zA-Z0-9_.-], starting with a letter or digit"
            )));
        }
        let r = self.container(key)?;
        if r.name == new {
            return Err(EngineError::Conflict(format!(
                "container {} is already named {new}",
                r.id
            )));
        }
        record::rename(self.store()?.conn(), &r, new)?;
        self.net_renamed(&r.id);
        self.container(&r.id)
    }

    /// `gcr container prune`: removes every container that is not running, paused or
    /// being started.
    pub fn container_prune(&self) -> Result<Pruned, EngineError> {
        self.container_prune_with(&crate::prune::PruneFilter::default())
    }

    /// `gcr container prune --filter until=…|label=…|label!=…`: those of them `f` admits
    /// (by their creation time and labels).
    pub fn container_prune_with(
        &self,
        f: &crate::prune::PruneFilter,
    ) -> Result<Pruned, EngineError> {
        let mut out = Pruned::default();
        for r in record::list(self.store()?.conn())? {
            let r = match self.reconcile(r) {
                Ok(r) => r,
                Err(EngineError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            if !matches!(r.state, State::Exited | State::Created)
                || r.extra.being_started()
                || !f.admits(
                    Some(r.created_at),
                    r.config.resolved.labels.iter().map(|(k, v)| (k, v)),
                )
            {
                continue;
            }
            let size = gcr_store::tree_size(&self.container_dir(&r.id));
            match self.remove(&r.id, false) {
                Ok(_) => {
                    out.ids.push(r.id);
                    out.bytes += size;
                }
                // Started or removed by someone else meanwhile: not ours to prune.
                Err(EngineError::NotFound(_) | EngineError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}
