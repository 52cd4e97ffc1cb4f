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

/// The file in a container's directory that names its `--cgroup-parent` (absent: `gcr`).
const CGROUP_PARENT_FILE: &str = "cgroup-parent";

/// The cgroup of container `id` relative to the hierarchies' roots: `gcr/<id>`, or
/// `PARENT/<id>` for one made with `--cgroup-parent`, which its directory `dir` (or the
/// trash's copy of it) names: whatever finds a container by id finds its group.
pub(crate) fn cgroup_rel(dir: &std::path::Path, id: &str) -> std::path::PathBuf {
    let parent = std::fs::read_to_string(dir.join(CGROUP_PARENT_FILE)).ok();
    match parent.as_deref().and_then(|p| check_cgroup_parent(p).ok()) {
        Some(p) => std::path::Path::new(&p).join(id),
        None => std::path::Path::new("gcr").join(id),
    }
}

/// Notes container `id`'s `--cgroup-parent` in its directory `dir` (before its group is
/// made) and returns the group, as [`cgroup_rel`] will find it.
pub(crate) fn note_cgroup_parent(
    dir: &std::path::Path,
    id: &str,
    parent: &str,
) -> Result<std::path::PathBuf, EngineError> {
    let p = check_cgroup_parent(parent).map_err(EngineError::Usage)?;
    std::fs::write(dir.join(CGROUP_PARENT_FILE), &p)
        .map_err(|e| EngineError::Io(format!("writing {}", dir.display()), e))?;
    Ok(std::path::Path::new(&p).join(id))
}

/// A `--cgroup-parent` normalized (`/a/b/` and `a/b` are `a/b`, relative to each
/// hierarchy's root), or why it is refused.
pub fn check_cgroup_parent(p: &str) -> Result<String, String> {
    let parts: Vec<&str> = p.trim_matches('/').split('/').collect();
    let ok = p.len() <= 512
        && parts.iter().all(|c| {
            !c.is_empty()
                && *c != "."
                && *c != ".."
                && c.len() <= 128
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
        });
    if ok {
        Ok(parts.join("/"))
    } else {
        Err(format!(
            "invalid --cgroup-parent '{p}': give a cgroup path such as /mygroup or my/group (letters, digits, '_', '.' and '-')"
        ))
    }
}

impl Engine {
    /// The cgroup of container `id`, opened by name (nothing is created).
    pub(crate) fn cgroup(&self, id: &str) -> Result<gcr_runtime::cgroups::Cgroup, EngineError> {
        let rel = cgroup_rel(&self.container_dir(id), id);
        gcr_runtime::cgroups::CgroupManager::detect()
            .map(|m| m.open_at(&rel))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_parents_are_normalized_paths_below_the_roots() {
        assert_eq!(check_cgroup_parent("/a/b/").unwrap(), "a/b");
        assert_eq!(check_cgroup_parent("my.slice").unwrap(), "my.slice");
        for bad in ["", "/", "../x", "a//b", "a/./b", "x y", "a/\u{0}"] {
            assert!(check_cgroup_parent(bad).is_err(), "{bad:?}");
        }
        let d = tempfile::tempdir().unwrap();
        assert_eq!(cgroup_rel(d.path(), "abc"), std::path::Path::new("gcr/abc"));
        let rel = note_cgroup_parent(d.path(), "abc", "/p/q/").unwrap();
        assert_eq!(rel, std::path::Path::new("p/q/abc"));
        assert_eq!(cgroup_rel(d.path(), "abc"), rel);
    }
}
