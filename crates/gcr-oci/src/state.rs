//! Container state on disk: `<root>/<id>/state.json` (written to a temp file, then renamed)
//! and `<root>/<id>/exec.fifo` while the container is created but not started.
//!
//! The status is derived, never stored: `stopped` when the process is gone (or a zombie, or
//! its pid now belongs to another process: the start time in `/proc/PID/stat` is recorded),
//! `created` while the fifo exists, `paused` while the cgroup is frozen, else `running`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::OciError;

/// The runtime-spec version this personality reports.
pub const OCI_VERSION: &str = "1.0.2";

/// What one container's directory records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub pid: i32,
    /// Field 22 of `/proc/PID/stat` when the container started (pid reuse check).
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339.
    pub created: String,
    /// The cgroup path relative to the cgroupfs roots.
    pub cgroup: PathBuf,
    /// v1 `devices` group made for `linux.resources.devices`, if any.
    #[serde(default)]
    pub devices_cgroup: Option<PathBuf>,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The config's hooks (`start` runs poststart, `delete` poststop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<oci_spec::runtime::Hooks>,
}

/// A container's status (runtime spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// `id` as runc accepts it (and a safe directory name).
pub fn check_id(id: &str) -> Result<(), OciError> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(OciError::BadId(id.to_string()))
    }
}

/// The directory of container `id` under `root`.
pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

/// Where `create` notes the container's cgroup path before making it.
pub(crate) fn cgroup_intent(root: &Path, id: &str) -> PathBuf {
    dir(root, id).join("cgroup")
}

/// The fifo on which `start` learns that the process exec'd or why a startContainer hook
/// failed (made only for a container with startContainer or poststart hooks).
pub(crate) fn exec_report(root: &Path, id: &str) -> PathBuf {
    dir(root, id).join("exec.report")
}

/// The fifo a created container's process waits on.
pub fn fifo(root: &Path, id: &str) -> PathBuf {
    dir(root, id).join("exec.fifo")
}

impl State {
    /// Reads the state of `id`.
    pub fn load(root: &Path, id: &str) -> Result<State, OciError> {
        check_id(id)?;
        let p = dir(root, id).join("state.json");
        let text = match std::fs::read(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(OciError::NotFound(id.to_string()))
            }
            Err(e) => return Err(OciError::io("cannot read the state", p, e)),
        };
        serde_json::from_slice(&text).map_err(|e| {
            OciError::Invalid(format!(
                "the state file {} is damaged ({e}); remove its directory",
                p.display()
            ))
        })
    }

    /// Writes the state atomically.
    pub fn save(&self, root: &Path) -> Result<(), OciError> {
        let d = dir(root, &self.id);
        let tmp = d.join(".state.json.tmp");
        let text = serde_json::to_vec(self)
            .map_err(|e| OciError::Invalid(format!("cannot encode the state: {e}")))?;
        std::fs::write(&tmp, text).map_err(|e| OciError::io("cannot write", &tmp, e))?;
        let p = d.join("state.json");
        std::fs::rename(&tmp, &p).map_err(|e| OciError::io("cannot write", p, e))
    }

    /// The current status (see the module comment).
    pub fn status(&self, root: &Path) -> Status {
        if !self.alive() {
            return Status::Stopped;
        }
        if fifo(root, &self.id).exists() {
            return Status::Created;
        }
        if crate::cgroup::open(&self.cgroup).is_ok_and(|c| c.is_frozen()) {
            return Status::Paused;
        }
        Status::Running
    }

    /// Whether the container's first process still exists (and is not a zombie).
    pub fn alive(&self) -> bool {
        self.pid > 0
            && proc_stat(self.pid)
                .is_some_and(|(state, start)| state != 'Z' && start == self.start_time)
    }

    /// The runtime-spec state document (`runc state`).
    pub fn document(&self, status: Status) -> serde_json::Value {
        let mut v = serde_json::json!({
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "pid": if status == Status::Stopped { 0 } else { self.pid },
            "status": status.as_str(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": "",
        });
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::json!(self.annotations);
        }
        v
    }
}

/// (state letter, start time) from `/proc/PID/stat`.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command is in parentheses and may contain spaces: fields after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut f = rest.split(' ');
    let state = f.next()?.chars().next()?;
    // Field 3 is the state; the start time is field 22.
    let start = f.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Every container id under `root`, sorted.
pub fn list(root: &Path) -> Result<Vec<String>, OciError> {
    let rd = match std::fs::read_dir(root) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(OciError::io("cannot list", root, e)),
    };
    let mut ids: Vec<String> = rd
        .flatten()
        .filter(|e| e.path().join("state.json").exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    Ok(ids)
}
