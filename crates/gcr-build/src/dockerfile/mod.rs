//! Dockerfile builds: the parsed Dockerfile (gcr-core) run stage by stage into the store
//! with Docker's semantics and gcr's determinism. Only the stages the target needs are
//! built, independent ones at the same time; every layer step (RUN, COPY, ADD, WORKDIR that makes its directory) is looked up
//! in the step cache under a key of its parent chain, its expanded definition (with the
//! environment and ARGs a RUN sees) and the digest of its inputs, so an unrelated file or
//! build arg does not rebuild it. Layers are sorted tars with mtimes clamped to the
//! build's time (SOURCE_DATE_EPOCH, else the epoch); the image's `created` is
//! SOURCE_DATE_EPOCH, else its base image's (scratch: the epoch), so it shows the age of
//! what it was built from; the config carries no host data.

mod args;
mod commit;
mod dcopy;
mod drun;
mod live;
mod run;
mod stage;
mod view;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use gcr_core::dockerfile::{self, Dockerfile};
use serde_json::{json, Value};

use crate::context::FileIndex;
use crate::error::{BuildError, Result};
use crate::ignore::Ignore;
use crate::{Built, Event, Runner};

pub use commit::{commit, parse_change, CommitSpec};
pub use run::Stages;
use stage::StageState;

pub use crate::BuildNet;

/// A Dockerfile build as the CLI asks for it.
#[derive(Debug, Clone, Default)]
pub struct DockerfileOptions {
    /// The Dockerfile (shown in errors and the transcript).
    pub dockerfile: PathBuf,
    /// Its text when it does not come from `dockerfile` (`-f -`).
    pub text: Option<Vec<u8>>,
    pub context: PathBuf,
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub network: BuildNet,
    pub labels: BTreeMap<String, String>,
    /// `--platform`: checked against the base images (no emulation).
    pub platform: Option<String>,
    pub no_cache: bool,
    pub source_date_epoch: Option<i64>,
    /// Record tags (false for verification builds).
    pub tag: bool,
    pub allow_secrets: Vec<String>,
    pub no_context_scan: bool,
    /// Keyed digests of the `--secret` values by id (see `BuildOptions`).
    pub secret_digests: BTreeMap<String, String>,
}

/// Whether `path` names a Dockerfile rather than a `.gcr` spec.
pub fn is_dockerfile(path: &std::path::Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    !name.ends_with(".gcr")
}

/// Reads and parses the Dockerfile of `opts`.
pub fn load(opts: &DockerfileOptions) -> Result<(Dockerfile, String)> {
    let bytes = match &opts.text {
        Some(t) => t.clone(),
        None => std::fs::read(&opts.dockerfile).map_err(|e| {
            BuildError::Usage(format!(
                "cannot read Dockerfile {}: {e}; check the -f path",
                opts.dockerfile.display()
            ))
        })?,
    };
    let name = display_name(opts);
    let text = String::from_utf8(bytes.clone())
        .map_err(|_| BuildError::Spec(format!("{name}: the Dockerfile is not valid UTF-8 text")))?;
    let df = dockerfile::parse(&name, &text).map_err(|e| BuildError::Spec(e.to_string()))?;
    Ok((df, crate::builder::sha256_hex(&bytes)))
}

fn display_name(opts: &DockerfileOptions) -> String {
    if opts.text.is_some() {
        return "Dockerfile (stdin)".into();
    }
    opts.dockerfile
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "Dockerfile".into())
}

/// The base images (not stages, not scratch) the target's stages start from, expanded:
/// for the policy gate before anything runs.
pub fn base_images(opts: &DockerfileOptions) -> Result<Vec<String>> {
    let (df, _) = load(opts)?;
    let global = args::global_scope(
        &df.meta_args,
        &opts.build_args,
        opts.platform.as_deref(),
        df.escape,
    )
    .map_err(|(loc, m)| stage::at(&display_name(opts), loc, m))?;
    let mut out = Vec::new();
    for (i, s) in df.stages.iter().enumerate() {
        let b = dockerfile::words::expand(&s.base, df.escape, &global)
            .map_err(|e| stage::at(&display_name(opts), s.loc, e))?;
        let is_stage = df.stages[..i]
            .iter()
            .any(|p| p.name.as_deref() == Some(&b.to_ascii_lowercase()));
        if !is_stage && !b.eq_ignore_ascii_case("scratch") {
            out.push(b);
        }
    }
    Ok(out)
}

/// Builds the Dockerfile of `opts` into `store`.
pub fn build(
    store: &gcr_store::Store,
    runner: &dyn Runner,
    opts: &DockerfileOptions,
    emit: &mut dyn FnMut(&Event),
) -> Result<Built> {
    let t0 = Instant::now();
    let (df, file_digest) = load(opts)?;
    let file = display_name(opts);
    let ctx = opts.context.canonicalize().map_err(|e| {
        BuildError::Usage(format!(
            "build context {} cannot be opened ({e}); give an existing directory",
            opts.context.display()
        ))
    })?;
    if !ctx.is_dir() {
        return Err(BuildError::Usage(format!(
            "build context {} is not a directory",
            ctx.display()
        )));
    }
    let tags: Vec<String> = opts
        .tags
        .iter()
        .map(|t| crate::builder::full_tag(t))
        .collect::<Result<_>>()?;
    let created_ts = gcr_core::time::Timestamp {
        unix: opts.source_date_epoch.unwrap_or(0),
        nanos: 0,
    };
    let created = created_ts.to_rfc3339();
    let ignore = read_ignore(&ctx, opts)?;
    let index = FileIndex::load(store.conn(), &ctx, !opts.no_context_scan)?;
    let mut stages = Stages {
        store,
        runner,
        opts,
        df: &df,
        file: file.clone(),
        ctx: ctx.clone(),
        created: created.clone(),
        created_unix: created_ts.unix.max(0) as u64,
        global: Vec::new(),
        ignore,
        index,
        emit,
        steps: Vec::new(),
        inputs: Vec::new(),
        cached: 0,
        hermetic: true,
        built: Vec::new(),
        live: Default::default(),
    };
    let target = stages.run()?;
    let Stages {
        steps,
        inputs,
        cached,
        hermetic,
        mut index,
        emit,
        ..
    } = stages;
    index.save(store)?;
    let mut st: StageState = target;
    if !opts.labels.is_empty() {
        st.add_labels(opts.labels.clone().into_iter().collect());
    }
    let cfg = st.image_config();
    let (id, man_digest, size) =
        crate::builder::register(store, &cfg, &st.layers, &tags, opts.tag, "build")?;
    let transcript = json!({
        "gcr_version": env!("CARGO_PKG_VERSION"),
        "frontend": "dockerfile",
        "spec": opts.dockerfile.display().to_string(),
        "spec_path": file,
        "spec_file_digest": file_digest,
        "target": opts.target,
        "build_args": opts.build_args,
        "created": st.created,
        "hermetic": hermetic,
        "inputs": inputs,
        "steps": steps,
        "image": {"id": id, "manifest_digest": man_digest, "tags": tags},
        "cache": {"hits": cached, "steps": steps.len(), "no_cache": opts.no_cache, "files_read": index.hashed},
        "duration_ms": crate::builder::ms(t0),
    });
    // A fully cached rebuild of an image built here keeps the record of the build that
    // made it (no write on the cached path).
    let rebuilt = cached == steps.len()
        && crate::cache::transcript(store, &id)?
            .is_some_and(|t| t.get("frontend").and_then(Value::as_str) == Some("dockerfile"));
    if !rebuilt {
        crate::cache::save_transcript(store, &id, &transcript)?;
    }
    emit(&Event::Done {
        id: id.clone(),
        manifest: man_digest.clone(),
        size,
        tags: tags.clone(),
        steps: steps.len(),
        cached,
        duration_ms: crate::builder::ms(t0),
    });
    Ok(Built {
        id,
        manifest_digest: man_digest,
        size,
        tags,
        steps: steps.len(),
        cached,
        files_read: index.hashed,
        transcript,
    })
}

/// `.dockerignore` (or `<Dockerfile name>.dockerignore`, or `.containerignore` for a
/// Containerfile) of the context.
fn read_ignore(ctx: &std::path::Path, opts: &DockerfileOptions) -> Result<Ignore> {
    let mut names = Vec::new();
    if let Some(n) = opts.dockerfile.file_name() {
        names.push(format!("{}.dockerignore", n.to_string_lossy()));
    }
    names.push(".dockerignore".into());
    names.push(".containerignore".into());
    for n in names {
        let p = ctx.join(&n);
        match std::fs::read_to_string(&p) {
            Ok(s) => return Ok(Ignore::parse(&s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(BuildError::io("cannot read", &p)(e)),
        }
    }
    Ok(Ignore::default())
}

/// The transcript's record of one step.
fn step_record(
    index: usize,
    kind: &str,
    def: &Value,
    cached: bool,
    ms: f64,
    layer: &gcr_store::NewLayer,
) -> Value {
    json!({
        "index": index, "kind": kind, "definition": def, "cache": if cached {"hit"} else {"miss"},
        "duration_ms": ms, "layer": layer.digest, "diff_id": layer.diff_id, "size": layer.size,
    })
}
