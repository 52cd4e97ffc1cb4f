//! Volumes as the engine sees them: the mounts a container gets for `-v`, `--tmpfs` and the
//! image's declared volumes, and their release when the container goes. Store volumes live
//! in `<root>/volumes/<name>/_data` and are listed in the `volumes` table (created on first
//! use); a volume is in use while any container (running or not) names it in its plan.

pub mod admin;
mod copyup;
mod db;
pub mod plan;

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Mount, MountBuilder};

use crate::container::record::Record;
use crate::{Engine, EngineError};
use plan::{Plan, Planned};

fn mount(dest: &str, typ: &str, src: &Path, options: Vec<String>) -> Result<Mount, EngineError> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(src)
        .options(options)
        .build()
        .map_err(|e| EngineError::Internal(format!("mount {dest}: {e}")))
}

/// Bind options; `nodev` unless the container is privileged (a device node in a volume or
/// a host directory is as inert as one the container makes, see `ocispec`).
fn bind_opts(ro: bool, privileged: bool) -> Vec<String> {
    bind_opts_with(ro, None, privileged)
}

fn bind_opts_with(ro: bool, propagation: Option<&str>, privileged: bool) -> Vec<String> {
    let mut o = vec![
        "rbind".to_string(),
        propagation.unwrap_or("rprivate").to_string(),
    ];
    if !privileged {
        o.push("nodev".into());
    }
    if ro {
        o.push("ro".into());
    }
    o
}

impl Engine {
    /// `<root>/volumes/<name>`.
    pub(crate) fn volume_dir(&self, name: &str) -> PathBuf {
        self.root().join("volumes").join(name)
    }

    /// Creates the store volumes and missing bind sources of a checked plan (see
    /// [`plan::plan`]) and returns the plan to store in `volume_data`.
    pub(crate) fn volumes_realize(&self, p: &Plan) -> Result<serde_json::Value, EngineError> {
        if p.mounts.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        for m in &p.mounts {
            match m {
                Planned::Volume {
                    name, anonymous, ..
                } => self.volume_ensure(name, *anonymous)?,
                Planned::Bind { source, .. } => {
                    if !Path::new(source).exists() {
                        std::fs::create_dir_all(source).map_err(|e| {
                            EngineError::Io(format!("creating bind source {source}"), e)
                        })?;
                    }
                }
                Planned::Tmpfs { .. } => {}
            }
        }
        Ok(serde_json::to_value(p)?)
    }

    /// Adds the volumes and binds of each `--volumes-from CONTAINER[:ro|rw]` to plan `p`
    /// (Docker's: at the same paths, in that container's mode unless one is given; a path
    /// the new container mounts itself stays its own; tmpfs mounts are not shared). A
    /// shared anonymous volume is not the new container's own: `rm -v` of it leaves the
    /// volume. Returns the flags with the containers' names.
    pub(crate) fn volumes_from(
        &self,
        from: &[String],
        p: &mut Plan,
    ) -> Result<Vec<String>, EngineError> {
        let mut out = Vec::new();
        for f in from {
            let (key, mode) = match f.rsplit_once(':') {
                Some((k, m @ ("ro" | "rw"))) => (k, Some(m == "ro")),
                Some(_) => {
                    return Err(EngineError::Usage(format!(
                        "invalid --volumes-from '{f}': use CONTAINER, CONTAINER:ro or CONTAINER:rw"
                    )))
                }
                None => (f.as_str(), None),
            };
            let x = self.container(key).map_err(|_| {
                EngineError::NotFound(format!(
                    "--volumes-from {f}: no such container {key}; give an existing container's name or id"
                ))
            })?;
            let theirs = Plan::from_value(&x.config.resolved.volume_data);
            for mut m in theirs.mounts {
                if p.mounts.iter().any(|o| o.dest() == m.dest()) {
                    continue;
                }
                match &mut m {
                    Planned::Volume { ro, anonymous, .. } => {
                        *ro = mode.unwrap_or(*ro);
                        *anonymous = false;
                    }
                    Planned::Bind { ro, .. } => *ro = mode.unwrap_or(*ro),
                    Planned::Tmpfs { .. } => continue,
                }
                p.mounts.push(m);
            }
            let kept = match mode {
                Some(true) => format!("{}:ro", x.name),
                Some(false) => format!("{}:rw", x.name),
                None => x.name.clone(),
            };
            out.push(kept);
        }
        Ok(out)
    }

    /// Mounts for the container's volumes, parents before children.
    pub(crate) fn volume_mounts(&self, r: &Record) -> Result<Vec<Mount>, EngineError> {
        if r.config.resolved.volume_data.is_null() {
            return Ok(Vec::new());
        }
        let p = Plan::from_value(&r.config.resolved.volume_data);
        let privileged = r.config.opts.privileged;
        let mut out = Vec::with_capacity(p.mounts.len());
        for m in &p.mounts {
            out.push(match m {
                Planned::Volume { name, dest, ro, .. } => {
                    let data = self.volume_dir(name).join("_data");
                    if !data.is_dir() {
                        std::fs::create_dir_all(&data).map_err(|e| {
                            EngineError::Io(format!("recreating volume {name}"), e)
                        })?;
                    }
                    copyup::fill_if_empty(&data, &r.config.resolved.lowers, dest).map_err(|e| {
                        EngineError::Io(format!("copying image content at {dest} into volume {name}"), e)
                    })?;
                    mount(dest, "bind", &data, bind_opts(*ro, privileged))?
                }
                Planned::Bind {
                    source,
                    dest,
                    ro,
                    propagation,
                } => {
                    if !Path::new(source).exists() {
                        return Err(EngineError::NotFound(format!(
                            "bind source {source} of container {} does not exist; create it or remove the container",
                            r.name
                        )));
                    }
                    mount(
                        dest,
                        "bind",
                        Path::new(source),
                        bind_opts_with(*ro, propagation.as_deref(), privileged),
                    )?
                }
                Planned::Tmpfs { dest, options } => {
                    mount(dest, "tmpfs", Path::new("tmpfs"), options.clone())?
                }
            });
        }
        out.sort_by_key(|m| m.destination().components().count());
        Ok(out)
    }

    /// Releases a removed container's volumes: anonymous ones are deleted when asked (`--rm`)
    /// and no other container uses them; named volumes always stay.
    pub(crate) fn volumes_release(&self, r: &Record, remove_anonymous: bool) {
        if !remove_anonymous || r.config.resolved.volume_data.is_null() {
            return;
        }
        let p = Plan::from_value(&r.config.resolved.volume_data);
        for (name, anon) in p.volume_names() {
            if anon && self.volume_users(name, Some(&r.id)).is_empty() {
                let _ = self.volume_delete(name);
            }
        }
    }
}

impl Engine {
    /// Docker's `Mounts` of `inspect`: type, name (volumes), source, destination, RW.
    pub fn mounts_view(&self, r: &Record) -> serde_json::Value {
        let p = Plan::from_value(&r.config.resolved.volume_data);
        let list: Vec<serde_json::Value> = p
            .mounts
            .iter()
            .map(|m| match m {
                Planned::Volume { name, dest, ro, .. } => serde_json::json!({
                    "Type": "volume",
                    "Name": name,
                    "Source": self.volume_dir(name).join("_data"),
                    "Destination": dest,
                    "Driver": "local",
                    "RW": !ro,
                }),
                Planned::Bind {
                    source,
                    dest,
                    ro,
                    propagation,
                } => serde_json::json!({
                    "Type": "bind",
                    "Source": source,
                    "Destination": dest,
                    "RW": !ro,
                    "Propagation": propagation.as_deref().unwrap_or("rprivate"),
                }),
                Planned::Tmpfs { dest, options } => serde_json::json!({
                    "Type": "tmpfs",
                    "Destination": dest,
                    "Options": options,
                    "RW": true,
                }),
            })
            .collect();
        serde_json::Value::Array(list)
    }
}
