//! `gcr commit`: the container's settings from its run flags (`-e`, the command,
//! `--entrypoint`, `-w`, `-u`, `-l`) and the `--change` instructions go onto its image's
//! config, its writable layer on top (see `gcr_build::dockerfile::commit`); a running
//! container is frozen meanwhile unless `--pause=false`.

use gcr_build::dockerfile::{commit, parse_change, CommitSpec};
use gcr_core::dockerfile::{CmdLine, Kind};

use super::record::{now_secs, Record};
use crate::build::build_err;
use crate::{Engine, EngineError, State};

/// `gcr commit` as asked.
pub struct CommitRequest {
    pub container: String,
    pub reference: Option<String>,
    pub changes: Vec<String>,
    pub message: Option<String>,
    pub author: Option<String>,
    pub pause: bool,
}

/// The container's own settings, as config instructions.
fn own_settings(r: &Record) -> Vec<Kind> {
    let o = &r.config.opts;
    let mut out = Vec::new();
    let env: Vec<(String, String)> = o
        .env
        .iter()
        .filter_map(|e| match e.split_once('=') {
            Some((k, v)) => Some((k.to_string(), v.to_string())),
            // `-e NAME`: the value the container got.
            None => r
                .config
                .resolved
                .env
                .iter()
                .find_map(|x| x.strip_prefix(&format!("{e}=")))
                .map(|v| (e.clone(), v.to_string())),
        })
        .collect();
    if !env.is_empty() {
        out.push(Kind::Env(env));
    }
    if let Some(e) = &o.entrypoint {
        out.push(Kind::Entrypoint(CmdLine::Exec(vec![e.clone()])));
    }
    if !o.cmd.is_empty() {
        out.push(Kind::Cmd(CmdLine::Exec(o.cmd.clone())));
    }
    if let Some(w) = &o.workdir {
        out.push(Kind::Workdir(w.clone()));
    }
    if let Some(u) = &o.user {
        out.push(Kind::User(u.clone()));
    }
    let labels: Vec<(String, String)> = o
        .labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect();
    if !labels.is_empty() {
        out.push(Kind::Label(labels));
    }
    out
}

impl Engine {
    /// `gcr import FILE [REF] [-c CHANGE…] [-m MESSAGE]`: the tarball as a one-layer image,
    /// its config changed by `changes` (Dockerfile instructions) when there are any.
    pub fn import(
        &self,
        input: impl std::io::Read,
        reference: Option<&str>,
        changes: &[String],
        message: Option<&str>,
    ) -> Result<String, EngineError> {
        if changes.is_empty() && message.is_none() {
            return Ok(self.store()?.import_rootfs(input, reference, None)?);
        }
        // Bad changes are refused before anything is imported.
        let kinds = changes
            .iter()
            .map(|c| parse_change(c).map_err(build_err))
            .collect::<Result<Vec<_>, _>>()?;
        let plain = self.store()?.import_rootfs(input, None, None)?;
        let made = commit(
            self.store()?,
            CommitSpec {
                image: &plain,
                upper: None,
                changes: kinds,
                message: message.map(str::to_string),
                author: None,
                // The import's time (its newest file's): a change makes no image younger.
                created: None,
                tags: reference.iter().map(|r| r.to_string()).collect(),
            },
        );
        // The plain import was a step: it goes unless it is the result or has a name.
        if made.as_ref().is_ok_and(|(id, _)| *id != plain) {
            let untagged = self.store()?.image_tags(&plain).is_ok_and(|t| t.is_empty());
            if untagged {
                let _ = self.store()?.remove_image(&plain, false);
            }
        }
        let (id, _) = made.map_err(build_err)?;
        self.forget_image_cache();
        Ok(id)
    }

    /// `gcr commit`: returns the new image's id.
    pub fn commit(&self, req: &CommitRequest) -> Result<String, EngineError> {
        let r = self.container(&req.container)?;
        // Bad changes are refused before anything is written.
        let mut changes = own_settings(&r);
        for c in &req.changes {
            changes.push(parse_change(c).map_err(build_err)?);
        }
        let upper = self.container_dir(&r.id).join("upper");
        let empty;
        let upper = if upper.is_dir() {
            upper
        } else {
            // Never started: nothing changed yet.
            empty = tempfile::tempdir_in(self.store()?.temp_dir())
                .map_err(|e| EngineError::Io("making an empty layer".into(), e))?;
            empty.path().to_path_buf()
        };
        let frozen = req.pause
            && r.state == State::Running
            && self.cgroup(&r.id).is_ok_and(|c| c.freeze().is_ok());
        let made = commit(
            self.store()?,
            CommitSpec {
                image: &r.image_id,
                upper: Some(&upper),
                changes,
                message: req.message.clone(),
                author: req.author.clone(),
                created: Some(now_secs()),
                tags: req.reference.iter().cloned().collect(),
            },
        );
        if frozen {
            let _ = self.thaw(&r);
        }
        let (id, _) = made.map_err(build_err)?;
        self.forget_image_cache();
        Ok(id)
    }
}
