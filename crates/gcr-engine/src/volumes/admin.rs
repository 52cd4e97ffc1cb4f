//! `gcr volume create|ls|rm|inspect|prune`, and the in-use rule: a volume named by any
//! container's plan (running or stopped) cannot be removed.

use std::collections::BTreeMap;

use serde::Serialize;

use super::db;
use super::plan::Plan;
use crate::container::record;
use crate::{names, Engine, EngineError};

/// A volume as listed and inspected.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeInfo {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    pub created: i64,
    pub anonymous: bool,
    pub labels: BTreeMap<String, String>,
    /// Names of the containers using it.
    pub containers: Vec<String>,
}

fn now() -> i64 {
    record::now_ns() / 1_000_000_000
}

impl Engine {
    fn volume_info(&self, v: &db::VolRow) -> VolumeInfo {
        VolumeInfo {
            name: v.name.clone(),
            driver: "local".into(),
            mountpoint: self
                .volume_dir(&v.name)
                .join("_data")
                .to_string_lossy()
                .into_owned(),
            created: v.created,
            anonymous: v.anonymous,
            labels: v.labels.clone(),
            containers: self.volume_users(&v.name, None),
        }
    }

    /// Creates volume `name` (row and directory) unless it exists.
    pub(crate) fn volume_ensure(&self, name: &str, anonymous: bool) -> Result<(), EngineError> {
        self.volume_ensure_labeled(name, anonymous, &BTreeMap::new())
    }

    /// [`Engine::volume_ensure`] giving a new volume `labels` (an existing one keeps its own).
    fn volume_ensure_labeled(
        &self,
        name: &str,
        anonymous: bool,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        let conn = self.store()?.conn();
        let data = self.volume_dir(name).join("_data");
        if !data.is_dir() {
            std::fs::create_dir_all(&data)
                .map_err(|e| EngineError::Io(format!("creating volume {name}"), e))?;
        }
        if db::insert(conn, name, now(), anonymous)? && !labels.is_empty() {
            db::set_labels(conn, name, labels)?;
        }
        Ok(())
    }

    /// Names of containers (other than `except`) whose plan uses volume `name`.
    pub(crate) fn volume_users(&self, name: &str, except: Option<&str>) -> Vec<String> {
        let Ok(all) = self.store().and_then(|s| record::list(s.conn())) else {
            return Vec::new();
        };
        all.into_iter()
            .filter(|r| Some(r.id.as_str()) != except && !r.config.resolved.volume_data.is_null())
            .filter(|r| {
                Plan::from_value(&r.config.resolved.volume_data)
                    .volume_names()
                    .any(|(n, _)| n == name)
            })
            .map(|r| r.name)
            .collect()
    }

    /// Deletes a volume's row and data.
    pub(crate) fn volume_delete(&self, name: &str) -> Result<(), EngineError> {
        let dir = self.volume_dir(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| EngineError::Io(format!("removing volume {name}"), e))?;
        }
        db::delete(self.store()?.conn(), name)
    }

    /// `gcr volume create [NAME]`; an existing volume is returned as is.
    pub fn volume_create(&self, name: Option<&str>) -> Result<VolumeInfo, EngineError> {
        self.volume_create_labeled(name, &BTreeMap::new())
    }

    /// `gcr volume create [--label K=V]... [NAME]`: an existing volume is returned as is
    /// (with its own labels, as Docker does).
    pub fn volume_create_labeled(
        &self,
        name: Option<&str>,
        labels: &BTreeMap<String, String>,
    ) -> Result<VolumeInfo, EngineError> {
        let name = match name {
            Some(n) if names::valid_name(n) => n.to_string(),
            Some(n) => {
                return Err(EngineError::Usage(format!(
                    "invalid volume name '{n}': only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )))
            }
            None => names::random_id(),
        };
        self.volume_ensure_labeled(&name, false, labels)?;
        self.volume_inspect(&name)
    }

    pub fn volume_list(&self) -> Result<Vec<VolumeInfo>, EngineError> {
        Ok(db::list(self.store()?.conn())?
            .iter()
            .map(|v| self.volume_info(v))
            .collect())
    }

    pub fn volume_inspect(&self, name: &str) -> Result<VolumeInfo, EngineError> {
        let v = db::find(self.store()?.conn(), name)?.ok_or_else(|| {
            EngineError::NotFound(format!("no such volume: {name}; see 'gcr volume ls'"))
        })?;
        Ok(self.volume_info(&v))
    }

    /// `gcr volume rm NAME`: refused while a container uses it.
    pub fn volume_remove(&self, name: &str) -> Result<(), EngineError> {
        let v = self.volume_inspect(name)?;
        if !v.containers.is_empty() {
            return Err(EngineError::Conflict(format!(
                "volume {name} is in use by container(s) {}; remove them first",
                v.containers.join(", ")
            )));
        }
        self.volume_delete(name)
    }

    /// `gcr volume prune [--all]`: removes unused anonymous volumes (all unused with `all`);
    /// returns the names removed.
    pub fn volume_prune(&self, all: bool) -> Result<Vec<String>, EngineError> {
        self.volume_prune_with(all, &crate::prune::PruneFilter::default())
    }

    /// `gcr volume prune [-a] --filter label=…|label!=…`: those of them `f` admits.
    pub fn volume_prune_with(
        &self,
        all: bool,
        f: &crate::prune::PruneFilter,
    ) -> Result<Vec<String>, EngineError> {
        let mut gone = Vec::new();
        for v in self.volume_list()? {
            if v.containers.is_empty()
                && (all || v.anonymous)
                && f.admits(Some(v.created), &v.labels)
            {
                self.volume_delete(&v.name)?;
                gone.push(v.name);
            }
        }
        Ok(gone)
    }
}
