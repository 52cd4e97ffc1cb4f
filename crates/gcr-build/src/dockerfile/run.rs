//! The stage runner: picks the stages the target needs, starts each from scratch, an
//! earlier stage or a stored image (its ONBUILD triggers first), and dispatches every
//! instruction, looking layer steps up in the step cache first.

use std::path::PathBuf;
use std::time::Instant;

use gcr_core::dockerfile::{self, Dockerfile, Instruction, Kind};
use gcr_store::{NewLayer, Store};
use serde_json::{json, Value};

use super::stage::{at, StageState};
use super::view::{clean, Stat, View};
use super::{args, dcopy, drun, BuildNet, DockerfileOptions};
use crate::context::FileIndex;
use crate::error::{BuildError, Result};
use crate::ignore::Ignore;
use crate::step::{run_layer, StepRun, TempTree};
use crate::{cache, Event, Runner};

/// A build in progress.
pub struct Stages<'a> {
    pub store: &'a Store,
    pub runner: &'a dyn Runner,
    pub opts: &'a DockerfileOptions,
    pub df: &'a Dockerfile,
    pub file: String,
    pub ctx: PathBuf,
    pub created: String,
    pub created_unix: u64,
    pub global: Vec<(String, String)>,
    pub ignore: Ignore,
    pub index: FileIndex,
    pub emit: &'a mut dyn FnMut(&Event),
    pub steps: Vec<Value>,
    pub inputs: Vec<Value>,
    pub cached: usize,
    pub hermetic: bool,
    /// Finished stages by index.
    pub built: Vec<Option<StageState>>,
    /// The running step, for [`Event::Progress`].
    pub(super) live: super::live::Live,
}

/// What a stage built in parallel hands back.
struct Worker {
    stage: usize,
    st: StageState,
    events: Vec<Event>,
    steps: Vec<Value>,
    inputs: Vec<Value>,
    cached: usize,
    hermetic: bool,
}

fn key(parent: &str, created: &str, def: &Value, input: &str) -> String {
    crate::builder::sha256_hex(&crate::builder::canonical(&json!({
        "v": 1, "frontend": "dockerfile", "parent": parent, "created": created, "step": def, "input": input,
    })))
}

impl Stages<'_> {
    fn err(&self, loc: dockerfile::Loc, m: impl std::fmt::Display) -> BuildError {
        at(&self.file, loc, m)
    }

    /// The stage a name or index refers to (only stages before `before`).
    fn stage_ref(&self, name: &str, before: usize) -> Option<usize> {
        let lname = name.to_ascii_lowercase();
        if let Ok(n) = name.parse::<usize>() {
            return (n < before).then_some(n);
        }
        self.df.stages[..before]
            .iter()
            .position(|s| s.name.as_deref() == Some(lname.as_str()))
    }

    /// Runs the build; returns the target stage's final state.
    pub fn run(&mut self) -> Result<StageState> {
        self.global = args::global_scope(
            &self.df.meta_args,
            &self.opts.build_args,
            self.opts.platform.as_deref(),
            self.df.escape,
        )
        .map_err(|(loc, m)| self.err(loc, m))?;
        let target = match &self.opts.target {
            None => self.df.stages.len() - 1,
            Some(t) => self
                .df
                .stages
                .iter()
                .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
                .ok_or_else(|| {
                    let names: Vec<&str> = self
                        .df
                        .stages
                        .iter()
                        .filter_map(|s| s.name.as_deref())
                        .collect();
                    BuildError::Usage(format!(
                        "target stage '{t}' is not in {}; its stages are: {}",
                        self.file,
                        if names.is_empty() {
                            "(none named)".into()
                        } else {
                            names.join(", ")
                        }
                    ))
                })?,
        };
        let (needed, deps) = self.needed(target)?;
        let count = |f: fn(&Kind) -> bool| -> usize {
            needed
                .iter()
                .map(|&i| {
                    self.df.stages[i]
                        .instructions
                        .iter()
                        .filter(|x| f(&x.kind))
                        .count()
                })
                .sum()
        };
        (self.emit)(&Event::Start {
            name: self
                .opts
                .tags
                .first()
                .cloned()
                .unwrap_or_else(|| "(untagged)".into()),
            spec: self.opts.dockerfile.display().to_string(),
            copies: count(|k| matches!(k, Kind::Copy(_))),
            dependencies: 0,
            commands: count(|k| matches!(k, Kind::Run(_))),
        });
        self.built = (0..self.df.stages.len()).map(|_| None).collect();
        // Waves: every stage whose dependencies are built runs now; several at once run
        // in parallel (each with its own store connection), their results merged in
        // stage order so the transcript does not depend on which finished first.
        let mut left = needed;
        while !left.is_empty() {
            let (ready, rest): (Vec<usize>, Vec<usize>) = left
                .iter()
                .partition(|&&i| deps[i].iter().all(|&d| self.built[d].is_some()));
            if ready.is_empty() {
                return Err(BuildError::Usage(
                    "the stages depend on each other in a cycle".into(),
                ));
            }
            if ready.len() == 1 {
                let st = self.stage(ready[0])?;
                self.built[ready[0]] = Some(st);
            } else {
                self.parallel(&ready, &deps)?;
            }
            left = rest;
        }
        self.built[target]
            .take()
            .ok_or_else(|| BuildError::Usage("the target stage was not built".into()))
    }

    /// Builds independent stages at the same time, each in a thread with its own store
    /// connection and file index; their output is shown stage by stage as they finish
    /// in stage order.
    fn parallel(&mut self, ready: &[usize], deps: &[Vec<usize>]) -> Result<()> {
        let root = self.store.root().to_path_buf();
        let root = &root;
        let (tx, rx) = std::sync::mpsc::channel::<Event>();
        let results: Vec<Result<Worker>> = std::thread::scope(|sc| {
            let handles: Vec<_> = ready
                .iter()
                .map(|&i| {
                    let built: Vec<Option<StageState>> = (0..self.built.len())
                        .map(|j| {
                            if deps[i].contains(&j) {
                                self.built[j].clone()
                            } else {
                                None
                            }
                        })
                        .collect();
                    let (runner, opts, df, file, ctx, created, created_unix, global, ignore) = (
                        self.runner,
                        self.opts,
                        self.df,
                        self.file.clone(),
                        self.ctx.clone(),
                        self.created.clone(),
                        self.created_unix,
                        self.global.clone(),
                        self.ignore.clone(),
                    );
                    let hermetic = self.hermetic;
                    let tx = tx.clone();
                    sc.spawn(move || -> Result<Worker> {
                        let store = Store::open(root)?;
                        let index = FileIndex::load(store.conn(), &ctx, !opts.no_context_scan)?;
                        let mut events = Vec::new();
                        // Live progress goes out now; the rest in stage order at the end.
                        let mut emit = |e: &Event| match e {
                            Event::Progress { .. } => drop(tx.send(e.clone())),
                            _ => events.push(e.clone()),
                        };
                        let mut w = Stages {
                            store: &store,
                            runner,
                            opts,
                            df,
                            file,
                            ctx,
                            created,
                            created_unix,
                            global,
                            ignore,
                            index,
                            emit: &mut emit,
                            steps: Vec::new(),
                            inputs: Vec::new(),
                            cached: 0,
                            hermetic,
                            built,
                            live: Default::default(),
                        };
                        let st = w.stage(i)?;
                        let Stages {
                            mut index,
                            steps,
                            inputs,
                            cached,
                            hermetic,
                            ..
                        } = w;
                        index.save(&store)?;
                        Ok(Worker {
                            stage: i,
                            st,
                            events,
                            steps,
                            inputs,
                            cached,
                            hermetic,
                        })
                    })
                })
                .collect();
            drop(tx);
            // Each worker's sender goes when it ends: this loop ends with the last one.
            for e in rx {
                (self.emit)(&e);
            }
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(BuildError::Usage("a stage's thread failed".into()))
                    })
                })
                .collect()
        });
        let mut first_err = None;
        for r in results {
            match r {
                Ok(w) => self.merge(w),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Takes a parallel stage's results: its events and steps renumbered after ours.
    fn merge(&mut self, w: Worker) {
        let offset = self.steps.len();
        for mut e in w.events {
            match &mut e {
                Event::Step { index, .. } | Event::Output { index, .. } => *index += offset,
                _ => {}
            }
            (self.emit)(&e);
        }
        for mut s in w.steps {
            if let Some(n) = s.get("index").and_then(Value::as_u64) {
                s["index"] = json!(n as usize + offset);
            }
            self.steps.push(s);
        }
        self.inputs.extend(w.inputs);
        self.cached += w.cached;
        self.hermetic &= w.hermetic;
        self.built[w.stage] = Some(w.st);
    }

    /// The earlier stages stage `i` needs (its base, `COPY --from`, `RUN --mount from=`).
    fn deps_of(&self, i: usize) -> Result<Vec<usize>> {
        let s = &self.df.stages[i];
        let base = dockerfile::words::expand(&s.base, self.df.escape, &self.global)
            .map_err(|e| self.err(s.loc, e))?;
        let mut refs = vec![base];
        for ins in &s.instructions {
            match &ins.kind {
                Kind::Copy(c) => refs.extend(c.from.clone()),
                Kind::Run(r) => {
                    for m in &r.mounts {
                        for p in m.split(',') {
                            if let Some(f) = p.strip_prefix("from=") {
                                refs.push(f.to_string());
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        let mut out: Vec<usize> = refs
            .into_iter()
            .filter_map(|r| {
                let r = dockerfile::words::expand(&r, self.df.escape, &self.global).unwrap_or(r);
                self.stage_ref(&r, i)
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// The stages `target` depends on (itself included), in order.
    /// Also returns each needed stage's dependencies (empty for the others).
    fn needed(&self, target: usize) -> Result<(Vec<usize>, Vec<Vec<usize>>)> {
        let mut deps: Vec<Option<Vec<usize>>> = vec![None; self.df.stages.len()];
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if deps[i].is_some() {
                continue;
            }
            let d = self.deps_of(i)?;
            todo.extend(&d);
            deps[i] = Some(d);
        }
        let needed = (0..deps.len()).filter(|&i| deps[i].is_some()).collect();
        Ok((
            needed,
            deps.into_iter().map(Option::unwrap_or_default).collect(),
        ))
    }

    /// Resolves a stored image: its config and layers.
    fn image(&self, name: &str) -> Result<(Value, Vec<NewLayer>, String)> {
        let r = self.store.resolve_image(name).map_err(|e| {
            if e.is_not_found() {
                BuildError::UnknownBase(name.to_string())
            } else {
                e.into()
            }
        })?;
        let cfg: Value = serde_json::from_slice(&self.store.image_config(&r.id)?).map_err(|e| {
            BuildError::Usage(format!("the config of image {name} is invalid: {e}"))
        })?;
        let layers = self
            .store
            .image_layers(&r.id)?
            .into_iter()
            .map(NewLayer::from)
            .collect();
        Ok((cfg, layers, r.id))
    }

    /// The `created` of a stage starting from `base` (None: scratch): SOURCE_DATE_EPOCH
    /// when given, else the base image's own, else the epoch. Layer mtimes and step cache
    /// keys keep the build's time (`self.created`).
    fn stage_created(&self, base: Option<&Value>) -> String {
        if self.opts.source_date_epoch.is_some() {
            return self.created.clone();
        }
        base.and_then(crate::config::base_created)
            .unwrap_or_else(|| self.created.clone())
    }

    fn stage(&mut self, i: usize) -> Result<StageState> {
        let s = &self.df.stages[i];
        let base = dockerfile::words::expand(&s.base, self.df.escape, &self.global)
            .map_err(|e| self.err(s.loc, e))?;
        let platform = match &s.platform {
            Some(p) => Some(
                dockerfile::words::expand(p, self.df.escape, &self.global)
                    .map_err(|e| self.err(s.loc, e))?,
            ),
            None => self.opts.platform.clone(),
        };
        let (mut st, base_id) = if base.eq_ignore_ascii_case("scratch") {
            // BuildKit's empty image: WorkingDir "/" (PATH is added below for any base).
            let empty = json!({"config": {"WorkingDir": "/"}});
            let created = self.stage_created(None);
            (
                StageState::new(&empty, Vec::new(), self.df.escape, created),
                None,
            )
        } else if let Some(j) = self.stage_ref(&base, i) {
            let prev = self.built[j]
                .as_ref()
                .ok_or_else(|| self.err(s.loc, format!("stage {base} was not built")))?;
            // A stage from a stage keeps its `created` (its base image's, or the build's).
            let cfg = prev.image_config();
            (
                StageState::new(
                    &cfg,
                    prev.layers.clone(),
                    self.df.escape,
                    prev.created.clone(),
                ),
                None,
            )
        } else {
            let (cfg, layers, id) = self.image(&base)?;
            let created = self.stage_created(Some(&cfg));
            (
                StageState::new(&cfg, layers, self.df.escape, created),
                Some(id),
            )
        };
        if let Some(p) = platform.filter(|p| !p.is_empty()) {
            let want: Vec<&str> = p.split('/').collect();
            let ok = want.first() == Some(&st.os.as_str())
                && want.get(1).is_none_or(|a| *a == st.architecture);
            if !ok && (base_id.is_some() || !base.eq_ignore_ascii_case("scratch")) {
                return Err(self.err(
                    s.loc,
                    format!(
                    "{base} is {}/{}, not the requested platform {p}; gcr builds without emulation",
                    st.os, st.architecture
                ),
                ));
            }
        }
        let layer_kind = |k: &Kind| matches!(k, Kind::Run(_) | Kind::Copy(_) | Kind::Workdir(_));
        let name = s.name.clone().unwrap_or_else(|| format!("stage-{i}"));
        let m = 1 + s
            .instructions
            .iter()
            .filter(|x| layer_kind(&x.kind))
            .count();
        self.live.enter(name, m);
        self.live.begin(&mut *self.emit, &format!("FROM {base}"));
        self.live.done(&mut *self.emit, base_id.is_none(), 0.0);
        (self.emit)(&Event::Base {
            base: match &s.name {
                Some(n) => format!("{base} AS {n}"),
                None => base.clone(),
            },
            id: base_id,
        });
        // ONBUILD triggers of the base run first, and do not pass on.
        let triggers: Vec<String> = st
            .config
            .remove("OnBuild")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let mut onbuild = Vec::with_capacity(triggers.len());
        for t in triggers {
            let (w, rest) = t
                .trim()
                .split_once(char::is_whitespace)
                .unwrap_or((t.trim(), ""));
            let kind = dockerfile::parse_instruction(
                &w.to_ascii_uppercase(),
                rest,
                self.df.escape,
                Vec::new(),
            )
            .map_err(|m| self.err(s.loc, format!("ONBUILD trigger '{t}' of {base}: {m}")))?;
            onbuild.push(Instruction {
                loc: s.loc,
                text: t.clone(),
                kind,
            });
        }
        // Triggers of the base are steps too (FROM was announced before they were known).
        self.live
            .set_total(m + onbuild.iter().filter(|x| layer_kind(&x.kind)).count());
        for ins in &onbuild {
            self.instruction(i, &mut st, ins)?;
        }
        for ins in &s.instructions {
            self.instruction(i, &mut st, ins)?;
        }
        Ok(st)
    }

    fn instruction(&mut self, stage: usize, st: &mut StageState, ins: &Instruction) -> Result<()> {
        let loc = ins.loc;
        let e = |m: String| at(&self.file, loc, m);
        if matches!(ins.kind, Kind::Run(_) | Kind::Copy(_) | Kind::Workdir(_)) {
            self.live.begin(&mut *self.emit, &ins.text);
        }
        match &ins.kind {
            Kind::Run(r) => return self.run_step(stage, st, ins, r),
            Kind::Copy(c) => return self.copy_step(stage, st, ins, c),
            Kind::Workdir(w) => {
                let w = st.expand(w).map_err(e)?;
                let path = if w.starts_with('/') {
                    w
                } else {
                    format!("{}/{w}", st.workdir())
                };
                let path = format!("/{}", clean(&path));
                st.set_str("WorkingDir", path.clone());
                return self.workdir_step(st, ins, &path);
            }
            Kind::Arg(decls) => {
                for d in decls {
                    let def = d
                        .default
                        .as_ref()
                        .map(|x| st.expand(x))
                        .transpose()
                        .map_err(e)?;
                    let v = args::stage_value(d, &self.opts.build_args, def, &self.global);
                    st.args.retain(|(k, _)| *k != d.name);
                    st.args.push((d.name.clone(), v));
                }
            }
            other => {
                st.config_instr(other).map_err(e)?;
            }
        }
        st.push_empty(&ins.text);
        Ok(())
    }

    /// Records a layer step (cache hit or new layer) in the stage, transcript and output.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        st: &mut StageState,
        kind: &'static str,
        ins: &Instruction,
        def: Value,
        layer: NewLayer,
        cached: bool,
        t: Instant,
        files: Option<usize>,
    ) {
        let index = self.steps.len() + 1;
        let ms = crate::builder::ms(t);
        self.live.done(&mut *self.emit, cached, ms);
        (self.emit)(&Event::Step {
            index,
            kind,
            description: ins.text.clone(),
            cached,
            duration_ms: ms,
            layer: layer.digest.clone(),
            files,
        });
        self.steps
            .push(super::step_record(index, kind, &def, cached, ms, &layer));
        if cached {
            self.cached += 1;
        }
        st.push_layer(layer, &ins.text);
    }

    fn lookup(&self, key: &str) -> Result<Option<NewLayer>> {
        if self.opts.no_cache {
            return Ok(None);
        }
        cache::lookup(self.store, key)
    }

    fn workdir_step(&mut self, st: &mut StageState, ins: &Instruction, path: &str) -> Result<()> {
        let t = Instant::now();
        let lowers = st.lowers(self.store)?;
        let view = View::new(&lowers)?;
        let real = view.resolve(path)?;
        if real.is_empty() || !matches!(view.stat(&real), Stat::Missing) {
            st.push_empty(&ins.text);
            return Ok(());
        }
        let user = st.user();
        let (uid, gid) = if user.is_empty() {
            (0, 0)
        } else {
            gcr_runtime::users::resolve_user(&user, &lowers)
                .map(|(u, g, _)| (u, g))
                .map_err(|e| self.err(ins.loc, e))?
        };
        let def = json!({"workdir": real, "uid": uid, "gid": gid});
        let k = key(&st.parent(), &self.created, &def, "");
        let (layer, cached) = match self.lookup(&k)? {
            Some(l) => (l, true),
            None => {
                let mut entries = std::collections::BTreeMap::new();
                let mut acc = String::new();
                for part in real.split('/') {
                    if !acc.is_empty() {
                        acc.push('/');
                    }
                    acc.push_str(part);
                    let e = match view.stat(&acc) {
                        Stat::Dir { mode, uid, gid } => gcr_store::LayerEntry::dir(
                            mode,
                            uid as u64,
                            gid as u64,
                            self.created_unix,
                        ),
                        _ => gcr_store::LayerEntry::dir(
                            0o755,
                            uid as u64,
                            gid as u64,
                            self.created_unix,
                        ),
                    };
                    entries.insert(acc.clone(), e);
                }
                let l = self.store.write_layer(&entries, None)?;
                cache::insert(self.store, &k, &l)?;
                (l, false)
            }
        };
        self.finish(st, "WORKDIR", ins, def, layer, cached, t, None);
        Ok(())
    }

    fn copy_step(
        &mut self,
        stage: usize,
        st: &mut StageState,
        ins: &Instruction,
        c: &dockerfile::CopyInstr,
    ) -> Result<()> {
        let t = Instant::now();
        let e = |m: String| at(&self.file, ins.loc, m);
        let what = if c.add { "ADD" } else { "COPY" };
        if c.parents || !c.excludes.is_empty() || c.keep_git_dir {
            return Err(e(format!(
                "{what} --parents, --exclude and --keep-git-dir are not supported yet; remove them"
            )));
        }
        let mut srcs = Vec::new();
        for s in &c.srcs {
            if s.starts_with("<<") {
                srcs.push(s.clone());
            } else {
                srcs.push(st.expand(s).map_err(e)?);
            }
        }
        let d = st.expand(&c.dest).map_err(e)?;
        let mut dest = if d.starts_with('/') {
            d.clone()
        } else {
            format!("{}/{d}", st.workdir().trim_end_matches('/'))
        };
        if (d.ends_with('/') || d == "." || d.ends_with("/.")) && !dest.ends_with('/') {
            dest.push('/');
        }
        // The stage's files are read only for --chown names and when the step runs.
        let owner = match &c.chown {
            Some(o) => {
                let o = st.expand(o).map_err(e)?;
                let lowers = st.lowers(self.store)?;
                Some(gcr_runtime::users::resolve_owner(&o, &lowers).map_err(|x| e(x.0))?)
            }
            None => None,
        };
        let chmod = c
            .chmod
            .as_ref()
            .map(|m| st.expand(m).and_then(|m| dcopy::parse_chmod(&m)))
            .transpose()
            .map_err(e)?;
        let mut heredocs = Vec::new();
        for h in &c.heredocs {
            let body = if h.expand {
                st.expand(&h.content).map_err(e)?
            } else {
                h.content.clone()
            };
            heredocs.push((h.name.clone(), body));
        }
        let from = c
            .from
            .as_ref()
            .map(|f| st.expand(f))
            .transpose()
            .map_err(e)?;
        if c.add && srcs.iter().any(|s| dcopy::is_url(s)) {
            // Fetched from the network: the build no longer depends on its inputs alone.
            self.hermetic = false;
        }
        let plan = dcopy::CopyPlan {
            instr: c,
            srcs: srcs.clone(),
            dest: dest.clone(),
            owner,
            chmod,
            mtime: self.created_unix,
            network: self.opts.network != BuildNet::None,
            tmp: self.store.temp_dir(),
            heredocs,
        };
        // The step's key comes from its sources' digest: a stage's or image's content is
        // named by its digest (nothing read), context files by the file index.
        let (gathered, from_desc, input) = match &from {
            None => {
                let source = dcopy::Source::Context {
                    ctx: &self.ctx,
                    ignore: &self.ignore,
                    index: &mut self.index,
                };
                let g = dcopy::gather(&plan, source)?;
                self.index.finish_scan()?;
                if !self.index.hits.is_empty() {
                    let allow = crate::scan::Allow::new(&self.ctx, &self.opts.allow_secrets)?;
                    crate::builder::refuse_secrets(&self.ctx, &self.index.hits, &allow)?;
                }
                let input = g.input.clone();
                (Some(g), Value::Null, input)
            }
            Some(f) => {
                let digest = self.source_digest(f, stage)?;
                let input =
                    crate::builder::sha256_hex(format!("from {digest} {srcs:?}").as_bytes());
                (None, json!(digest), input)
            }
        };
        let files = gathered.as_ref().map(|g| g.files);
        let def = json!({"op": what, "srcs": srcs, "dest": dest, "from": from_desc, "owner": owner, "chmod": chmod});
        self.inputs.push(
            json!({"kind": what, "srcs": srcs, "files": files, "from": from_desc, "digest": input}),
        );
        let k = key(&st.parent(), &self.created, &def, &input);
        if let Some(l) = self.lookup(&k)? {
            self.finish(st, what, ins, def, l, true, t, files);
            return Ok(());
        }
        let g = match (gathered, &from) {
            (Some(g), _) => g,
            (None, Some(f)) => {
                let (lowers, digest) = self.source_lowers(f, stage)?;
                let source = dcopy::Source::Image {
                    view: View::new(&lowers)?,
                    digest,
                };
                dcopy::gather(&plan, source)?
            }
            (None, None) => unreachable!("a context copy is always gathered"),
        };
        let files = Some(g.files);
        let view = View::new(&st.lowers(self.store)?)?;
        let mut copied = dcopy::place(&plan, g, &view)?;
        let l = self
            .store
            .write_layer(&copied.entries, Some(&mut copied.spool))?;
        cache::insert(self.store, &k, &l)?;
        self.finish(st, what, ins, def, l, false, t, files);
        Ok(())
    }

    /// The content digest of `--from` / `from=` without reading its files: a stage's chain
    /// ID, or a stored image's id.
    fn source_digest(&self, f: &str, stage: usize) -> Result<String> {
        if let Some(j) = self.stage_ref(f, stage) {
            let Some(prev) = self.built[j].as_ref() else {
                return Err(BuildError::Usage(format!("stage {f} was not built")));
            };
            return Ok(format!("stage:{}", prev.parent()));
        }
        if f.parse::<usize>().is_ok() {
            return Err(BuildError::Usage(format!(
                "--from={f} names stage {f}, which does not come before this one"
            )));
        }
        Ok(self.image(f)?.2)
    }

    /// Layer dirs and content digest of `--from` / `from=`: a stage (by name or index) or
    /// a stored image.
    fn source_lowers(&mut self, f: &str, stage: usize) -> Result<(Vec<PathBuf>, String)> {
        if let Some(j) = self.stage_ref(f, stage) {
            let Some(prev) = self.built[j].as_mut() else {
                return Err(BuildError::Usage(format!("stage {f} was not built")));
            };
            let digest = format!("stage:{}", prev.parent());
            return Ok((prev.lowers(self.store)?, digest));
        }
        if f.parse::<usize>().is_ok() {
            return Err(BuildError::Usage(format!(
                "--from={f} names stage {f}, which does not come before this one"
            )));
        }
        let (_, layers, id) = self.image(f)?;
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
        Ok((crate::step::lowers(self.store, &layers, &diff_ids)?, id))
    }

    fn run_step(
        &mut self,
        stage: usize,
        st: &mut StageState,
        ins: &Instruction,
        r: &dockerfile::RunInstr,
    ) -> Result<()> {
        let t = Instant::now();
        let file = self.file.clone();
        let e = |m: String| at(&file, ins.loc, m);
        if r.security.as_deref().is_some_and(|s| s != "sandbox") {
            return Err(e(
                "RUN --security=insecure is not allowed: build steps always run confined".into(),
            ));
        }
        let net = match r.network.as_deref() {
            None | Some("default") => self.opts.network,
            Some("none") => BuildNet::None,
            Some("host") => BuildNet::Host,
            Some(o) => {
                return Err(e(format!(
                    "invalid RUN --network={o}; use default, none or host"
                )))
            }
        };
        if net != BuildNet::None {
            self.hermetic = false;
        }
        let argv = drun::argv(r, st.shell());
        let env = st.run_env(&self.opts.build_args);
        let cwd = st.workdir();
        let user = st.user();
        let ctx = self.ctx.clone();
        let store_root = self.store.root().to_path_buf();
        let tmp = self.store.temp_dir();
        let secret_ids: Vec<String> = self.opts.secret_digests.keys().cloned().collect();
        let has_secret = |id: &str| secret_ids.iter().any(|s| s == id);
        let mounts = {
            let mut from = |f: &str| self.source_lowers(f, stage);
            let mut menv = drun::MountEnv {
                ctx: &ctx,
                store_root: &store_root,
                tmp: &tmp,
                from: &mut from,
                secrets: &has_secret,
            };
            drun::mounts(&r.mounts, &cwd, &mut menv).map_err(|x| e(x.to_string()))?
        };
        let _scratch: Vec<TempTree> = mounts.scratch.iter().cloned().map(TempTree).collect();
        let secret_input: String = mounts
            .secrets
            .iter()
            .map(|s| {
                format!(
                    "{}={};",
                    s.id,
                    self.opts
                        .secret_digests
                        .get(&s.id)
                        .cloned()
                        .unwrap_or_default()
                )
            })
            .collect();
        let def = json!({"run": argv, "env": env, "cwd": cwd, "user": user, "network": net.as_str(), "mounts": mounts.key});
        let k = key(&st.parent(), &self.created, &def, &secret_input);
        if let Some(l) = self.lookup(&k)? {
            self.finish(st, "RUN", ins, def, l, true, t, None);
            return Ok(());
        }
        let step = StepRun {
            index: self.steps.len() + 1,
            shown: ins.text.clone(),
            argv,
            env,
            cwd,
            user,
            network: net,
            secrets: mounts.secrets,
            mounts: mounts.mounts,
            drop_stubs: false,
        };
        let (live, emit) = (&self.live, &mut *self.emit);
        let layer = run_layer(
            self.store,
            &st.layers,
            &st.diff_ids,
            self.created_unix,
            self.runner,
            &mut |ev: &Event| {
                if let Event::Output { line, .. } = ev {
                    live.line(&mut *emit, line);
                }
                emit(ev);
            },
            step,
        )
        .map_err(|x| match x {
            BuildError::CommandFailed { .. } | BuildError::Runner { .. } => e(x.to_string()),
            other => other,
        })?;
        cache::insert(self.store, &k, &layer)?;
        self.finish(st, "RUN", ins, def, layer, false, t, None);
        Ok(())
    }
}
