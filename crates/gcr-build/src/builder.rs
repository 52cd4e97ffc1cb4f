//! The build driver: parse the spec, resolve the base, then run every step in order (copy,
//! dependencies, commands), each looked up in the step cache first, and finally write the
//! config and manifest, register (and tag) the image and store its transcript. Nothing is
//! tagged unless every step succeeded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use gcr_core::spec::{Base, Spec};
use gcr_store::{chain_ids, NewImage, NewLayer, Store};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::config::{self, History};
use crate::context::{self, FileIndex};
use crate::error::{BuildError, Result};
use crate::ignore::Ignore;
use crate::step::{run_layer, StepRun};
use crate::{cache, copy, deps, scan, Event, Runner, StepSecret};

/// What to build and how.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The `.gcr` file; its directory is the build context.
    pub spec_file: PathBuf,
    /// Tags (`name:tag`) instead of the spec's `name:version`.
    pub tags: Vec<String>,
    pub no_cache: bool,
    /// `--source-date-epoch` (else env SOURCE_DATE_EPOCH is read by the caller).
    pub source_date_epoch: Option<i64>,
    /// Record tags (false for verification builds).
    pub tag: bool,
    /// `--allow-secret PATH`: context-relative files or directories whose secret-scan hits
    /// do not refuse the build.
    pub allow_secrets: Vec<String>,
    /// Skip the secret scan of copy sources (benchmarks only; not a user option).
    pub no_context_scan: bool,
    /// For each `build.secrets` id, a keyed digest of its value (the engine computes it
    /// under the store's secrets key): part of the command steps' cache keys, so a new
    /// value reruns them, while the digest reveals nothing about the value. The values
    /// themselves never reach this crate; the runner mounts them.
    pub secret_digests: BTreeMap<String, String>,
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct Built {
    pub id: String,
    pub manifest_digest: String,
    pub size: u64,
    pub tags: Vec<String>,
    pub steps: usize,
    pub cached: usize,
    /// Context files whose content had to be read (not found unchanged in the file index).
    pub files_read: usize,
    pub transcript: Value,
}

pub(crate) fn sha256_hex(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

pub(crate) fn canonical(v: &Value) -> Vec<u8> {
    gcr_core::canonical_json::to_canonical_bytes(v).unwrap_or_else(|_| v.to_string().into_bytes())
}

pub(crate) fn ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

/// Reads and parses a spec file.
pub fn load_spec(path: &Path) -> Result<Spec> {
    load_spec_bytes(path).map(|(spec, _)| spec)
}

/// Reads and parses a spec file; also returns the `sha256:` digest of its bytes.
fn load_spec_bytes(path: &Path) -> Result<(Spec, String)> {
    let bytes = std::fs::read(path)
        .map_err(|e| BuildError::Usage(format!("cannot read spec {}: {e}", path.display())))?;
    if bytes.len() > gcr_core::spec::MAX_SPEC_BYTES {
        return Err(BuildError::Spec(format!(
            "spec {} is larger than {} bytes",
            path.display(),
            gcr_core::spec::MAX_SPEC_BYTES
        )));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let spec = gcr_core::spec::parse_spec_bytes(&name, &bytes)
        .map_err(|e| BuildError::Spec(e.to_string()))?;
    Ok((spec, sha256_hex(&bytes)))
}

/// Normalizes `name:tag` to a full reference.
pub(crate) fn full_tag(t: &str) -> Result<String> {
    let r = gcr_core::Reference::parse(t)
        .map_err(|e| BuildError::Usage(format!("invalid tag '{t}': {e}")))?;
    if r.digest().is_some() {
        return Err(BuildError::Usage(format!(
            "invalid tag '{t}': a tag cannot contain a digest; use name:tag"
        )));
    }
    Ok(r.to_string())
}

struct State<'a> {
    store: &'a Store,
    layers: Vec<NewLayer>,
    diff_ids: Vec<String>,
    history: Vec<History>,
    steps: Vec<Value>,
    inputs: Vec<Value>,
    cached: usize,
    files_read: usize,
    no_cache: bool,
    created_unix: u64,
    created: String,
    emit: &'a mut dyn FnMut(&Event),
}

impl State<'_> {
    fn parent(&self) -> String {
        chain_ids(&self.diff_ids).pop().unwrap_or_default()
    }

    fn key(&self, step: Value, input: &str) -> String {
        sha256_hex(&canonical(&json!({
            "v": 1,
            "parent": self.parent(),
            "created": self.created,
            "step": step,
            "input": input,
        })))
    }

    fn lookup(&self, key: &str) -> Result<Option<NewLayer>> {
        if self.no_cache {
            return Ok(None);
        }
        cache::lookup(self.store, key)
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        kind: &'static str,
        desc: String,
        layer: NewLayer,
        cached: bool,
        t: Instant,
        files: Option<usize>,
        def: Value,
    ) {
        let index = self.steps.len() + 1;
        let d = ms(t);
        (self.emit)(&Event::Step {
            index,
            kind,
            description: desc.clone(),
            cached,
            duration_ms: d,
            layer: layer.digest.clone(),
            files,
        });
        self.steps.push(json!({
            "index": index, "kind": kind, "definition": def, "cache": if cached {"hit"} else {"miss"},
            "duration_ms": d, "layer": layer.digest, "diff_id": layer.diff_id, "size": layer.size,
        }));
        if cached {
            self.cached += 1;
        }
        self.history.push(History {
            created_by: desc,
            empty_layer: false,
        });
        self.diff_ids.push(layer.diff_id.clone());
        self.layers.push(layer);
    }
}

/// Builds the image described by `opts.spec_file` into `store`, running commands with
/// `runner` and reporting progress to `emit`.
pub fn build(
    store: &Store,
    runner: &dyn Runner,
    opts: &BuildOptions,
    emit: &mut dyn FnMut(&Event),
) -> Result<Built> {
    let t0 = Instant::now();
    let (spec, spec_file_digest) = load_spec_bytes(&opts.spec_file)?;
    let ctx = opts
        .spec_file
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."))
        .canonicalize()
        .map_err(BuildError::io(
            "cannot open the build context",
            &opts.spec_file,
        ))?;
    let tags: Vec<String> = if opts.tags.is_empty() {
        vec![full_tag(&format!("{}:{}", spec.name, spec.version))?]
    } else {
        opts.tags
            .iter()
            .map(|t| full_tag(t))
            .collect::<Result<_>>()?
    };
    let created_ts = spec.metadata.created_or(opts.source_date_epoch);
    let created = created_ts.to_rfc3339();
    let created_unix = created_ts.unix.max(0) as u64;
    emit(&Event::Start {
        name: gcr_store_familiar(&tags[0]),
        spec: opts.spec_file.display().to_string(),
        copies: spec.build.copy.len(),
        dependencies: spec.build.dependencies.len(),
        commands: spec.build.commands.len(),
    });

    // Base image.
    let (base_id, base_manifest, base_cfg, base_layers) = match &spec.base {
        Base::Scratch => (None, None, json!({}), Vec::new()),
        b => {
            let name = b.to_string();
            let r = store.resolve_image(&name).map_err(|e| {
                if e.is_not_found() {
                    BuildError::UnknownBase(name.clone())
                } else {
                    e.into()
                }
            })?;
            let cfg: Value = serde_json::from_slice(&store.image_config(&r.id)?)
                .map_err(|e| BuildError::Usage(format!("base image config is invalid: {e}")))?;
            let layers: Vec<NewLayer> = store
                .image_layers(&r.id)?
                .into_iter()
                .map(NewLayer::from)
                .collect();
            (Some(r.id), Some(r.manifest_digest), cfg, layers)
        }
    };
    emit(&Event::Base {
        base: spec.base.to_string(),
        id: base_id.clone(),
    });
    let mut st = State {
        store,
        diff_ids: base_layers.iter().map(|l| l.diff_id.clone()).collect(),
        layers: base_layers,
        history: Vec::new(),
        steps: Vec::new(),
        inputs: Vec::new(),
        cached: 0,
        files_read: 0,
        no_cache: opts.no_cache,
        created_unix,
        created: created.clone(),
        emit,
    };

    copy_steps(&mut st, &spec, &ctx, opts)?;
    dep_steps(&mut st, &spec, &ctx)?;
    command_steps(&mut st, &spec, runner, &base_cfg, &opts.secret_digests)?;

    // Config and manifest.
    let cfg = config::image_config(&spec, &base_cfg, &st.diff_ids, &st.history, &created);
    let (id, man_digest, size) = register(store, &cfg, &st.layers, &tags, opts.tag, "build")?;
    let transcript = json!({
        "gcr_version": env!("CARGO_PKG_VERSION"),
        "spec": opts.spec_file.display().to_string(),
        "spec_path": opts.spec_file.file_name().map(|n| n.to_string_lossy().into_owned()),
        "spec_file_digest": spec_file_digest,
        "spec_digest": sha256_hex(&canonical(&serde_json::to_value(&spec).unwrap_or(Value::Null))),
        "base": {"name": spec.base.to_string(), "id": base_id, "manifest_digest": base_manifest},
        "created": created,
        "hermetic": spec.build.network == gcr_core::spec::BuildNetwork::None,
        "inputs": st.inputs,
        "steps": st.steps,
        "image": {"id": id, "manifest_digest": man_digest, "tags": tags},
        "cache": {"hits": st.cached, "steps": st.steps.len(), "no_cache": opts.no_cache, "files_read": st.files_read},
        "duration_ms": ms(t0),
    });
    cache::save_transcript(store, &id, &transcript)?;
    (st.emit)(&Event::Done {
        id: id.clone(),
        manifest: man_digest.clone(),
        size,
        tags: tags.clone(),
        steps: st.steps.len(),
        cached: st.cached,
        duration_ms: ms(t0),
    });
    Ok(Built {
        id,
        manifest_digest: man_digest,
        size,
        tags,
        steps: st.steps.len(),
        cached: st.cached,
        files_read: st.files_read,
        transcript,
    })
}

/// Writes an image's config and manifest (canonical JSON) and registers it, tagged when
/// `tag`, its event and ledger entry named `action` (`build`, `commit`); returns its id,
/// manifest digest and size.
pub(crate) fn register(
    store: &Store,
    cfg: &Value,
    layers: &[NewLayer],
    tags: &[String],
    tag: bool,
    action: &str,
) -> Result<(String, String, u64)> {
    let cfg_bytes = canonical(cfg);
    let cfg_digest = sha256_hex(&cfg_bytes);
    if !store.has_blob(&cfg_digest) {
        store.put_blob(&cfg_bytes, Some(&cfg_digest))?;
    }
    let man = canonical(&config::manifest(
        &cfg_digest,
        cfg_bytes.len() as u64,
        layers,
    ));
    let man_digest = sha256_hex(&man);
    if !store.has_blob(&man_digest) {
        store.put_blob(&man, Some(&man_digest))?;
    }
    let size = cfg_bytes.len() as u64 + layers.iter().map(|l| l.size).sum::<u64>();
    // A rebuild that gave the same image, already tagged so: nothing to write.
    let same = |r: std::result::Result<gcr_store::ResolvedImage, gcr_store::StoreError>| {
        r.is_ok_and(|r| r.id == cfg_digest && r.manifest_digest == man_digest)
    };
    if same(store.resolve_image(&cfg_digest))
        && (!tag || tags.iter().all(|t| same(store.resolve_image(t))))
    {
        // What killed builds left in tmp/ goes all the same (registering does it
        // otherwise): a retry after a kill leaves the store clean.
        store.remove_stale_temp();
        return Ok((cfg_digest, man_digest, size));
    }
    let img = NewImage {
        manifest_digest: man_digest.clone(),
        manifest_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        config: cfg_bytes.clone(),
        layers: layers.to_vec(),
        tags: if tag { tags.to_vec() } else { Vec::new() },
    };
    let id = store.register_images(&[img], action)?.remove(0);
    Ok((id, man_digest, size))
}

fn gcr_store_familiar(full: &str) -> String {
    gcr_core::Reference::parse(full)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| full.to_string())
}

fn copy_steps(st: &mut State<'_>, spec: &Spec, ctx: &Path, opts: &BuildOptions) -> Result<()> {
    if spec.build.copy.is_empty() {
        return Ok(());
    }
    let allow = scan::Allow::new(ctx, &opts.allow_secrets)?;
    let ignore = match std::fs::read_to_string(ctx.join(".gcrignore")) {
        Ok(s) => Ignore::parse(&s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ignore::default(),
        Err(e) => return Err(BuildError::io("cannot read", ctx.join(".gcrignore"))(e)),
    };
    let mut index = FileIndex::load(st.store.conn(), ctx, !opts.no_context_scan)?;
    // Every source is walked (and its files read and scanned) before any layer is written:
    // a refused build leaves nothing behind.
    let mut walked = Vec::with_capacity(spec.build.copy.len());
    for step in &spec.build.copy {
        let t = Instant::now();
        let src = context::resolve_src(ctx, &step.src)?;
        let rel = src
            .strip_prefix(ctx)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        walked.push((t, context::walk(&src, &rel, &ignore, &mut index)?));
    }
    index.finish_scan()?;
    refuse_secrets(ctx, &index.hits, &allow)?;
    (st.emit)(&Event::Section {
        kind: "copy",
        count: spec.build.copy.len(),
    });
    for (step, (t, found)) in spec.build.copy.iter().zip(walked) {
        let tree = context::tree_digest(&found);
        let files = copy::file_count(&found);
        let def = serde_json::to_value(step).unwrap_or(Value::Null);
        st.inputs
            .push(json!({"kind": "copy", "src": step.src, "files": files, "digest": tree}));
        let key = st.key(json!({"copy": def}), &tree);
        let (layer, cached) = match st.lookup(&key)? {
            Some(l) => (l, true),
            None => {
                let entries = copy::entries(step, &found, st.created_unix);
                let l = st.store.write_layer(&entries, None)?;
                (l, false)
            }
        };
        if let Some(pin) = &step.hash {
            if pin.to_string() != layer.digest {
                return Err(BuildError::HashMismatch {
                    what: format!("copy of '{}' to '{}'", step.src, step.dest),
                    expected: pin.to_string(),
                    actual: layer.digest,
                });
            }
        }
        if !cached {
            cache::insert(st.store, &key, &layer)?;
        }
        let src_shown = if step.src.is_empty() { "." } else { &step.src };
        st.push(
            "copy",
            format!("copy {src_shown} {}", step.dest),
            layer,
            cached,
            t,
            Some(files),
            def,
        );
    }
    st.files_read += index.hashed;
    index.save(st.store)
}

/// Refuses the build when a scanned file has hits and is not under an allowed path.
pub(crate) fn refuse_secrets(
    ctx: &Path,
    hits: &[(PathBuf, Vec<scan::Hit>)],
    allow: &scan::Allow,
) -> Result<()> {
    let mut refused: Vec<(String, scan::Hit)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (abs, file_hits) in hits {
        let rel = abs
            .strip_prefix(ctx)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| abs.display().to_string());
        if allow.allows(&rel) || !seen.insert(rel.clone()) {
            continue;
        }
        refused.extend(file_hits.iter().map(|h| (rel.clone(), h.clone())));
    }
    if refused.is_empty() {
        return Ok(());
    }
    refused.sort_by(|a, b| (&a.0, a.1.line).cmp(&(&b.0, b.1.line)));
    Err(scan::refusal(&refused))
}

fn dep_steps(st: &mut State<'_>, spec: &Spec, ctx: &Path) -> Result<()> {
    if spec.build.dependencies.is_empty() {
        return Ok(());
    }
    (st.emit)(&Event::Section {
        kind: "dependency",
        count: spec.build.dependencies.len(),
    });
    for d in &spec.build.dependencies {
        let t = Instant::now();
        let def = serde_json::to_value(d).unwrap_or(Value::Null);
        st.inputs.push(json!({"kind": "dependency", "name": d.name, "version": d.version, "source": d.source.to_string(), "digest": d.hash.to_string()}));
        let key = st.key(json!({"dependency": def}), &d.hash.to_string());
        let (layer, cached) = match st.lookup(&key)? {
            Some(l) => (l, true),
            None => {
                let tmp = st.store.temp_dir();
                let mut spool = tempfile::tempfile_in(&tmp)
                    .map_err(BuildError::io("cannot create a temp file in", &tmp))?;
                let len = deps::fetch(ctx, d, &mut spool)?;
                let mut out = tempfile::tempfile_in(&tmp)
                    .map_err(BuildError::io("cannot create a temp file in", &tmp))?;
                let entries = deps::entries(d, &mut spool, len, &mut out, st.created_unix)?;
                let l = if d.extract {
                    st.store.write_layer(&entries, Some(&mut out))?
                } else {
                    st.store.write_layer(&entries, Some(&mut spool))?
                };
                cache::insert(st.store, &key, &l)?;
                (l, false)
            }
        };
        st.push(
            "dependency",
            format!("dependency {} {} {}", d.name, d.version, d.source),
            layer,
            cached,
            t,
            None,
            def,
        );
    }
    Ok(())
}

fn command_steps(
    st: &mut State<'_>,
    spec: &Spec,
    runner: &dyn Runner,
    base_cfg: &Value,
    secret_digests: &BTreeMap<String, String>,
) -> Result<()> {
    if spec.build.commands.is_empty() {
        return Ok(());
    }
    (st.emit)(&Event::Section {
        kind: "command",
        count: spec.build.commands.len(),
    });
    let mut env = config::merged_env(base_cfg, &spec.build.env);
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    let host = spec.build.network == gcr_core::spec::BuildNetwork::Host;
    let secret_ids: Vec<String> = spec.build.secrets.iter().map(|s| s.id.clone()).collect();
    let mut secret_input = String::new();
    for id in &secret_ids {
        let d = secret_digests.get(id).ok_or_else(|| {
            BuildError::Usage(format!(
                "build secret '{id}' has no value; give it with `gcr build --secret id={id},src=FILE` (or env=VAR), or name a stored secret with `source:` in build.secrets"
            ))
        })?;
        secret_input.push_str(&format!("{id}={d};"));
    }
    for (i, c) in spec.build.commands.iter().enumerate() {
        let t = Instant::now();
        let argv = c.to_argv();
        let shown = match c {
            gcr_core::spec::Command::Shell(s) => s.clone(),
            gcr_core::spec::Command::Exec(v) => serde_json::to_string(v).unwrap_or_default(),
        };
        let mut def = json!({"command": c, "env": env, "network": if host {"host"} else {"none"}});
        if !secret_ids.is_empty() {
            // Ids only: the definition is in the transcript.
            def["secrets"] = json!(secret_ids);
        }
        let key = st.key(json!({"run": def}), &secret_input);
        if let Some(l) = st.lookup(&key)? {
            st.push("command", format!("run {shown}"), l, true, t, None, def);
            continue;
        }
        let layer = run_one(
            st,
            runner,
            i + 1,
            &shown,
            argv,
            env.clone(),
            host,
            &secret_ids,
        )?;
        cache::insert(st.store, &key, &layer)?;
        st.push(
            "command",
            format!("run {shown}"),
            layer,
            false,
            t,
            None,
            def,
        );
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run_one(
    st: &mut State<'_>,
    runner: &dyn Runner,
    index: usize,
    shown: &str,
    argv: Vec<String>,
    env: Vec<String>,
    host: bool,
    secrets: &[String],
) -> Result<NewLayer> {
    let step = StepRun {
        index,
        shown: shown.to_string(),
        argv,
        env,
        cwd: "/".into(),
        user: String::new(),
        network: if host {
            crate::BuildNet::Host
        } else {
            crate::BuildNet::None
        },
        secrets: secrets
            .iter()
            .map(|id| StepSecret::default_for(id))
            .collect(),
        mounts: Vec::new(),
        drop_stubs: true,
    };
    run_layer(
        st.store,
        &st.layers,
        &st.diff_ids,
        st.created_unix,
        runner,
        &mut *st.emit,
        step,
    )
}
