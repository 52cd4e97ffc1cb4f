//! One command step: the layers so far as overlay lowers, a fresh upper directory, the
//! command run by the engine's [`Runner`] with its output passed on line by line (the
//! last 20 lines kept for the error of a failing step), then the upper directory turned
//! into a deterministic layer and adopted as the snapshot of its chain ID.

use std::collections::VecDeque;
use std::path::PathBuf;

use gcr_store::{chain_ids, NewLayer, Store};

use crate::error::{BuildError, Result};
use crate::{upper, Event, RunRequest, Runner, StepMount, StepSecret};

/// Removes a directory tree on drop (the build's scratch upper/work dirs).
pub(crate) struct TempTree(pub PathBuf);

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a command step runs.
pub(crate) struct StepRun {
    /// The step's number in the build (for its output and errors).
    pub index: usize,
    /// The command as the user wrote it.
    pub shown: String,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub network: crate::BuildNet,
    pub secrets: Vec<StepSecret>,
    pub mounts: Vec<StepMount>,
    /// Drop the mount points the runtime made for the step's mounts and secrets from its
    /// layer (`.gcr` builds); Dockerfile builds keep them, as docker build does.
    pub drop_stubs: bool,
}

/// A fresh id for a step's container (its cgroup's name too): unique per process even
/// when stages run their steps at the same time (a counter, not only the clock).
fn step_id(index: usize) -> String {
    use sha2::Digest as _;
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    hex::encode(sha2::Sha256::digest(
        format!("{n} {} {seq} {index}", std::process::id()).as_bytes(),
    ))
}

/// The snapshot directories of `layers` (chain IDs from `diff_ids`), top first.
pub(crate) fn lowers(
    store: &Store,
    layers: &[NewLayer],
    diff_ids: &[String],
) -> Result<Vec<PathBuf>> {
    let chains = chain_ids(diff_ids);
    let mut out = Vec::with_capacity(layers.len());
    for (l, chain) in layers.iter().zip(&chains) {
        out.push(store.layer_snapshot(&l.digest, &l.diff_id, chain)?);
    }
    out.reverse();
    Ok(out)
}

/// Runs one command over `layers` and returns the layer of what it changed.
pub(crate) fn run_layer(
    store: &Store,
    layers: &[NewLayer],
    diff_ids: &[String],
    created_unix: u64,
    runner: &dyn Runner,
    emit: &mut dyn FnMut(&Event),
    step: StepRun,
) -> Result<NewLayer> {
    let mut lowers = lowers(store, layers, diff_ids)?;
    let tmp = store.temp_dir();
    let dir = tempfile::Builder::new()
        .prefix("build-")
        .tempdir_in(&tmp)
        .map_err(BuildError::io("cannot create a temp dir in", &tmp))?
        .keep();
    let guard = TempTree(dir.clone());
    for sub in ["upper", "work", "rootfs", "empty"] {
        std::fs::create_dir(dir.join(sub))
            .map_err(BuildError::io("cannot create", dir.join(sub)))?;
    }
    if lowers.is_empty() {
        lowers.push(dir.join("empty"));
    }
    let index = step.index;
    let shown = step.shown;
    let secrets = step.drop_stubs && !step.secrets.is_empty();
    let stubs: Vec<String> = step
        .mounts
        .iter()
        .map(|m| match m {
            StepMount::Bind { target, .. }
            | StepMount::Tmpfs { target, .. }
            | StepMount::Layers { target, .. } => target.clone(),
        })
        .chain(step.secrets.iter().map(|s| s.target.clone()))
        .collect();
    let drop_stubs = step.drop_stubs;
    let req = RunRequest {
        id: step_id(index),
        argv: step.argv,
        env: step.env,
        cwd: step.cwd,
        lowers,
        upper: dir.join("upper"),
        work: dir.join("work"),
        target: dir.join("rootfs"),
        network: step.network,
        secrets: step.secrets,
        user: step.user,
        mounts: step.mounts,
    };
    let mut tail: VecDeque<String> = VecDeque::new();
    let code = runner
        .run(&req, &mut |line: &str| {
            if tail.len() == 20 {
                tail.pop_front();
            }
            tail.push_back(line.to_string());
            emit(&Event::Output {
                index,
                line: line.to_string(),
            });
        })
        .map_err(|reason| BuildError::Runner {
            index,
            command: shown.clone(),
            reason,
        })?;
    if code != 0 {
        let tail: Vec<String> = tail.into_iter().collect();
        return Err(BuildError::CommandFailed {
            index,
            command: shown,
            code,
            tail: if tail.is_empty() {
                "; it printed nothing".into()
            } else {
                format!("; last output:\n{}", tail.join("\n"))
            },
        });
    }
    if secrets {
        upper::drop_secrets_mountpoint(&req.upper);
    }
    // Mount points the runtime made for the step's mounts are not part of its result.
    // (Dockerfile builds keep directory mount points, as docker build does, but not the
    // empty files made to mount a file on.)
    for t in &stubs {
        if drop_stubs {
            upper::drop_mount_stub(&req.upper, t);
        } else {
            upper::drop_file_stub(&req.upper, t);
        }
    }
    let entries = upper::entries(&req.upper, created_unix)?;
    let layer = store.write_layer(&entries, None)?;
    let mut ids = diff_ids.to_vec();
    ids.push(layer.diff_id.clone());
    let chain = chain_ids(&ids).pop().unwrap_or_default();
    store.adopt_snapshot(&req.upper, &chain, &layer.diff_id, layer.size)?;
    drop(guard);
    Ok(layer)
}
