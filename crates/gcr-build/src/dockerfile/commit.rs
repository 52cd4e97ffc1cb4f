//! `gcr commit` (and `gcr import --change`): a new image from a container's writable layer
//! on top of its image (or the image's layers alone), with
//! the container's own settings and `--change` instructions applied to the config, as
//! `docker commit` makes it. The layer keeps its files' mtimes (a commit records a live
//! filesystem, not a reproducible build); `--change` takes the Dockerfile instructions that
//! only change the config, parsed and applied by the Dockerfile frontend's own code.

use std::path::Path;

use gcr_core::dockerfile::{parse_instruction, Kind};
use gcr_store::{NewLayer, Store};
use serde_json::{json, Value};

use super::stage::StageState;
use crate::error::{BuildError, Result};

/// What a commit makes.
pub struct CommitSpec<'a> {
    /// The container's image (id or name).
    pub image: &'a str,
    /// The container's upper directory (None: no new layer, `import --change`).
    pub upper: Option<&'a Path>,
    /// The container's settings first (from its run flags), then `--change`s.
    pub changes: Vec<Kind>,
    /// `docker commit`'s history line (`-m`) and author (`-a`).
    pub message: Option<String>,
    pub author: Option<String>,
    /// Unix seconds of the commit (the image's `created`); None keeps the base image's
    /// (`import --change`: the import's own time).
    pub created: Option<i64>,
    pub tags: Vec<String>,
}

/// The instructions `--change` takes.
const CHANGES: &str =
    "CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, SHELL, STOPSIGNAL, USER, VOLUME, WORKDIR";

/// Parses one `--change` (`CMD ["x"]`, `ENV A=1`, ...).
pub fn parse_change(text: &str) -> Result<Kind> {
    let t = text.trim();
    let (word, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
    let upper = word.to_ascii_uppercase();
    let bad = |why: String| BuildError::Usage(format!("invalid --change '{text}': {why}"));
    let kind = parse_instruction(&upper, rest.trim(), '\\', Vec::new()).map_err(bad)?;
    match kind {
        Kind::Run(_) | Kind::Copy(_) | Kind::Arg(_) | Kind::Maintainer(_) => Err(bad(format!(
            "{upper} does not change the config; use one of {CHANGES}"
        ))),
        k => Ok(k),
    }
}

/// Makes the image; returns its id and manifest digest.
pub fn commit(store: &Store, c: CommitSpec<'_>) -> Result<(String, String)> {
    let img = store.resolve_image(c.image)?;
    let cfg: Value = serde_json::from_slice(&store.image_config(&img.id)?).map_err(|e| {
        BuildError::Usage(format!("the config of image {} is invalid: {e}", c.image))
    })?;
    let layers: Vec<NewLayer> = store
        .image_layers(&img.id)?
        .into_iter()
        .map(NewLayer::from)
        .collect();
    let created = match c.created {
        Some(t) => gcr_core::time::format_rfc3339(t),
        None => cfg["created"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| gcr_core::time::format_rfc3339(0)),
    };
    let mut st = StageState::new(&cfg, layers, '\\', created);
    for k in &c.changes {
        let applied = match k {
            Kind::Workdir(w) => {
                let w = st.expand(w).map_err(BuildError::Usage)?;
                st.set_str("WorkingDir", w);
                true
            }
            other => st.config_instr(other).map_err(BuildError::Usage)?,
        };
        if !applied {
            return Err(BuildError::Usage(format!(
                "a commit change can only be one of {CHANGES}"
            )));
        }
    }
    if let Some(upper) = c.upper {
        let entries = crate::upper::entries_as_is(upper)?;
        let layer = store.write_layer(&entries, None)?;
        st.push_layer(layer, "gcr commit");
    }
    if let Some(a) = &c.author {
        st.author = Some(a.clone());
    }
    let mut out = st.image_config();
    if let Some(h) = out["history"]
        .as_array_mut()
        .and_then(|h| h.last_mut())
        .filter(|_| c.upper.is_some() || c.message.is_some())
    {
        h["comment"] = json!(c.message.clone().unwrap_or_default());
        if let Some(a) = &c.author {
            h["author"] = json!(a);
        }
    }
    let tags: Vec<String> = c
        .tags
        .iter()
        .map(|t| crate::builder::full_tag(t))
        .collect::<Result<_>>()?;
    let (id, manifest, _) =
        crate::builder::register(store, &out, &st.layers, &tags, true, "commit")?;
    Ok((id, manifest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_config_instructions_only() {
        assert!(matches!(parse_change("CMD [\"sh\"]"), Ok(Kind::Cmd(_))));
        assert!(matches!(parse_change("env A=1 B=2"), Ok(Kind::Env(_))));
        assert!(matches!(parse_change("WORKDIR /srv"), Ok(Kind::Workdir(_))));
        let e = parse_change("RUN rm -rf /")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("RUN does not change the config"), "{e}");
        let e = parse_change("FROBNICATE x")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("invalid --change"), "{e}");
    }
}
