//! Containers: their stored configuration and rows, the lifecycle operations, the
//! supervisor of detached containers, and read-only views (`ps`, `inspect`, `top`, `stats`).

pub mod admin;
pub mod attach;
pub mod attached;
pub mod commit;
pub mod config;
pub mod copy;
mod detach;
pub mod diff;
pub mod dna;
mod event_rows;
pub mod exec;
mod export;
mod fgtee;
pub mod filter;
mod foreground;
mod grant_events;
pub mod guard;
pub mod health;
mod imagecache;
mod mountpoints;
pub mod ops;
pub mod orphans;
pub(crate) mod premount;
pub mod procfs;
pub mod record;
pub(crate) mod rows;
pub mod run;
mod share;
pub mod supervise;
pub mod top;
pub mod tuning;
pub mod view;

use crate::{Engine, EngineError};
use config::RunOptions;

impl Engine {
    /// The cgroup of container `id`, opened by name (nothing is created).
    pub(crate) fn cgroup(&self, id: &str) -> Result<gcr_runtime::cgroups::Cgroup, EngineError> {
        gcr_runtime::cgroups::CgroupManager::detect()
            .map(|m| m.open(id))
            .map_err(|e| EngineError::Internal(e.to_string()))
    }

    /// The optional limits this host's cgroups can apply.
    pub fn cgroup_support(&self) -> Result<gcr_runtime::cgroups::Support, EngineError> {
        gcr_runtime::cgroups::CgroupManager::detect()
            .map(|m| m.support())
            .map_err(|e| EngineError::Internal(e.to_string()))
    }

    /// Discards the tuning options of `opts` this host cannot apply, as Docker does, and
    /// returns Docker's warnings for them (the CLI prints them, the API returns them);
    /// values out of range are refused first.
    pub fn fit_to_host(&self, opts: &mut RunOptions) -> Result<Vec<String>, EngineError> {
        if opts.tuning.is_empty() {
            return Ok(Vec::new());
        }
        // Bad values are refused before anything is discarded.
        opts.tuning.check(opts.memory).map_err(EngineError::Usage)?;
        let s = self.cgroup_support()?;
        Ok(opts.tuning.fit_to_host(s, opts.memory))
    }
}
