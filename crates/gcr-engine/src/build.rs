//! `gcr build` in the engine: finds the spec, runs gcr-build against the store with a
//! [`runner::RuntimeRunner`] that executes build commands with gcr-runtime (each in a
//! cgroup that dies with the build, see [`stepgroup`] and [`watch`]), verifies
//! reproducibility (`--verify`) in two temporary stores, and serves build transcripts.
//! Every build first removes the step groups of builds that were killed, and every build
//! ends by attaching its provenance to the image (signed when a key is configured, see
//! [`provenance`]).

pub mod provenance;
mod runner;
mod stepgroup;
mod verify;
mod watch;

pub use gcr_build::{BuildNet, Phase};
use std::path::{Path, PathBuf};

use gcr_build::{BuildError, BuildOptions, Built, Event};

pub use gcr_build::cache::PruneOptions as CachePruneOptions;
pub use runner::RuntimeRunner;
pub use stepgroup::reap_leftovers as reap_build_cgroups;
pub use verify::Verified;

use crate::{Engine, EngineError};

/// A build as the CLI asks for it.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// A context directory (containing one `.gcr` file) or a `.gcr` file.
    pub spec_file: PathBuf,
    pub tags: Vec<String>,
    pub no_cache: bool,
    pub source_date_epoch: Option<i64>,
    /// `--sign-key NAME`: sign the provenance and the build record with this stored key
    /// (else the root's `config.json` `build.signKey`, unless `no_sign`).
    pub sign_key: Option<String>,
    /// The password of an encrypted signing key.
    pub password: Option<Vec<u8>>,
    /// `--no-sign`: ignore the configured default key.
    pub no_sign: bool,
    /// `--allow-secret PATH`: context-relative files or directories the secret scan of
    /// copy sources lets through.
    pub allow_secrets: Vec<String>,
    /// Skip the secret scan (benchmarks only: `GCR_NO_CONTEXT_SCAN=1`).
    pub no_context_scan: bool,
    /// `--secret id=ID,src=FILE|env=VAR`: build secrets as given (see
    /// [`crate::secrets::build`]).
    pub secrets: Vec<String>,
    /// Dockerfile builds: the context (default: the Dockerfile's directory).
    pub context: Option<PathBuf>,
    /// `-f -`: the Dockerfile's text.
    pub dockerfile_text: Option<Vec<u8>>,
    pub build_args: std::collections::BTreeMap<String, String>,
    pub target: Option<String>,
    /// `--network`: RUN steps' network in Dockerfile builds (default: the bridge, as
    /// docker build; `none` is hermetic). `.gcr` specs say theirs in `build.network`.
    pub network: gcr_build::BuildNet,
    pub labels: std::collections::BTreeMap<String, String>,
    pub platform: Option<String>,
    /// Set by a caller whose client is gone (the API service's `POST /build`): the RUN step
    /// running is killed and no other starts, so the build ends with an error.
    pub cancel: Option<Cancel>,
    /// What every RUN step runs with (`--add-host`, `--shm-size`, limits).
    pub steps: StepOptions,
}

/// Options of every RUN step of a build (`docker build --add-host --shm-size --memory
/// --memory-swap --cpu-shares --cpuset-cpus --cpuset-mems --cpu-period --cpu-quota
/// --ulimit`): they
/// shape the steps' containers, not the image, so no cache key depends on them (as in
/// Docker's classic builder).
#[derive(Debug, Clone, Default)]
pub struct StepOptions {
    /// `NAME:IP` lines added to each step's /etc/hosts.
    pub add_hosts: Vec<String>,
    /// The size of each step's /dev/shm in bytes (default 64 MiB).
    pub shm_size: Option<u64>,
    pub memory: Option<u64>,
    pub memory_swap: Option<i64>,
    /// CPUs (`--cpu-quota` / `--cpu-period`).
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// `NAME=SOFT[:HARD]` resource limits (as `gcr run --ulimit`).
    pub ulimits: Vec<String>,
}

impl StepOptions {
    /// The CPUs of a CFS quota per period (`--cpu-quota`, `--cpu-period`, default period
    /// 100 ms), as Docker counts them; no positive quota is no limit.
    pub fn cpus_of(quota: Option<i64>, period: Option<i64>) -> Option<f64> {
        let quota = quota.filter(|q| *q > 0)?;
        Some(quota as f64 / period.filter(|p| *p > 0).unwrap_or(100_000) as f64)
    }

    /// Refuses what cannot work, naming the option.
    pub fn check(&self) -> Result<(), EngineError> {
        for h in &self.add_hosts {
            if crate::network::parse_add_host(h).is_none() {
                return Err(EngineError::Usage(format!(
                    "invalid --add-host '{h}': use NAME:IP, e.g. db:10.0.0.5"
                )));
            }
        }
        for u in &self.ulimits {
            crate::container::config::parse_ulimit(u).map_err(EngineError::Usage)?;
        }
        if self.shm_size == Some(0) {
            return Err(EngineError::Usage(
                "invalid --shm-size 0: give a size, e.g. 128m".into(),
            ));
        }
        if self.memory.is_some_and(|m| m < 6 * 1024 * 1024) {
            return Err(EngineError::Usage(
                "invalid --memory: the minimum allowed memory limit is 6MB".into(),
            ));
        }
        if self.cpus.is_some_and(|c| !c.is_finite() || c <= 0.0) {
            return Err(EngineError::Usage(
                "invalid --cpu-quota/--cpu-period: the quota must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// A build's cancellation: true once the build should stop (its caller's client is gone).
#[derive(Clone)]
pub struct Cancel(std::sync::Arc<dyn Fn() -> bool + Send + Sync>);

impl Cancel {
    pub fn new(test: impl Fn() -> bool + Send + Sync + 'static) -> Cancel {
        Cancel(std::sync::Arc::new(test))
    }

    pub fn is_set(&self) -> bool {
        (self.0)()
    }
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_set() {
            "Cancel(set)"
        } else {
            "Cancel"
        })
    }
}

/// Finds the spec: `file` if given (`-f`), else the only `*.gcr` file in `dir`, else its
/// `Dockerfile` or `Containerfile`.
pub fn find_spec(dir: Option<&Path>, file: Option<&Path>) -> Result<PathBuf, EngineError> {
    if let Some(f) = file {
        if !f.is_file() {
            return Err(EngineError::NotFound(format!(
                "spec file {} does not exist; check the -f path",
                f.display()
            )));
        }
        return Ok(f.to_path_buf());
    }
    let dir = dir.unwrap_or(Path::new("."));
    if dir.is_file() {
        return Ok(dir.to_path_buf());
    }
    let rd = std::fs::read_dir(dir).map_err(|e| {
        EngineError::NotFound(format!(
            "build context {} cannot be read ({e}); give an existing directory",
            dir.display()
        ))
    })?;
    let mut found: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "gcr") && p.is_file())
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => ["Dockerfile", "Containerfile", "dockerfile", "containerfile"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                EngineError::NotFound(format!(
                    "no Dockerfile, Containerfile or .gcr spec in {}; add one or pass -f FILE",
                    dir.display()
                ))
            }),
        _ => Err(EngineError::Usage(format!(
            "{} contains several .gcr specs; choose one with -f FILE.gcr",
            dir.display()
        ))),
    }
}

/// The RUN steps' network named as `gcr build --network` and Docker's `networkmode` name
/// it: `default`/`bridge` (and nothing) the bridge, `none`, `host`; None for other names.
pub fn build_network(name: Option<&str>) -> Option<BuildNet> {
    match name {
        None | Some("default") | Some("bridge") => Some(BuildNet::Bridge),
        Some("none") => Some(BuildNet::None),
        Some("host") => Some(BuildNet::Host),
        Some(_) => None,
    }
}

/// Unpacks a build context sent as a tar (plain, gzip, bzip2 or xz: `POST /build`) into
/// the existing directory `dir` with the store's hostile-input-safe unpacker: no entry
/// lands outside `dir` (`..` is refused, no parent component may be a symlink, hardlinks
/// must point inside, device nodes are skipped; `.wh.` names are plain files here). Returns
/// how many entries it held.
pub fn unpack_context(reader: &mut dyn std::io::Read, dir: &Path) -> Result<u64, EngineError> {
    let rd = gcr_build::compress::reader(reader).map_err(|e| {
        EngineError::Usage(format!("the build context cannot be decompressed: {e}"))
    })?;
    match gcr_store::unpack_tree(rd, dir) {
        Ok(stats) => Ok(stats.entries),
        Err(e @ gcr_store::UnpackError::Refused { .. }) => Err(EngineError::Usage(format!(
            "the build context is refused: {e}"
        ))),
        Err(e @ gcr_store::UnpackError::Stream(_)) => Err(EngineError::Usage(format!(
            "the build context is not a readable tar: {e}"
        ))),
        Err(e) => Err(EngineError::Store(e.into())),
    }
}

/// The Dockerfile frontend's options for a request.
pub(crate) fn dockerfile_options(req: &BuildRequest) -> gcr_build::dockerfile::DockerfileOptions {
    let context = match &req.context {
        Some(c) => c.clone(),
        None => req
            .spec_file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf(),
    };
    gcr_build::dockerfile::DockerfileOptions {
        dockerfile: req.spec_file.clone(),
        text: req.dockerfile_text.clone(),
        context,
        tags: req.tags.clone(),
        build_args: req.build_args.clone(),
        target: req.target.clone(),
        network: req.network,
        labels: req.labels.clone(),
        platform: req.platform.clone(),
        no_cache: req.no_cache,
        source_date_epoch: req.source_date_epoch,
        tag: true,
        allow_secrets: req.allow_secrets.clone(),
        no_context_scan: req.no_context_scan,
        secret_digests: Default::default(),
    }
}

/// Maps a build error to the engine's (exit code 1, 2 for usage, 125 for a refusal).
pub(crate) fn build_err(e: BuildError) -> EngineError {
    match e {
        BuildError::Usage(m) => EngineError::Usage(m),
        BuildError::UnknownBase(_) | BuildError::MissingSource(_) => {
            EngineError::NotFound(e.to_string())
        }
        BuildError::Store(s) => EngineError::Store(s),
        BuildError::SecretsFound(_) => EngineError::Refused(format!(
            "the build was refused: files it copies hold what look like secrets:\n{e}"
        )),
        other => EngineError::Internal(other.to_string()),
    }
}

impl Engine {
    /// Builds (and tags) the image of a spec or Dockerfile, reporting progress to `emit`.
    pub fn build(
        &self,
        req: &BuildRequest,
        emit: &mut dyn FnMut(&Event),
    ) -> Result<Built, EngineError> {
        req.steps.check()?;
        if req.dockerfile_text.is_some() || gcr_build::dockerfile::is_dockerfile(&req.spec_file) {
            return self.build_dockerfile(req, emit);
        }
        let opts = BuildOptions {
            spec_file: req.spec_file.clone(),
            tags: req.tags.clone(),
            no_cache: req.no_cache,
            source_date_epoch: req.source_date_epoch,
            tag: true,
            allow_secrets: req.allow_secrets.clone(),
            no_context_scan: req.no_context_scan,
            secret_digests: Default::default(),
        };
        // The key is opened first: a wrong name or password fails before anything is built.
        let key = self.build_sign_key(req)?;
        if crate::policy::load(self.root())?.is_some_and(|l| l.image.is_some()) {
            let name = req.spec_file.display().to_string();
            let bytes = std::fs::read(&req.spec_file)
                .map_err(|e| EngineError::Io(format!("cannot read spec file {name}"), e))?;
            if let Ok(spec) = gcr_core::spec::parse_spec_bytes(&name, &bytes) {
                if !matches!(spec.base, gcr_core::spec::Base::Scratch) {
                    self.gate_build_base(&spec.base.to_string())?;
                }
            }
        }
        let secrets = self.build_secrets(&opts.spec_file, &req.secrets)?;
        let opts = BuildOptions {
            secret_digests: secrets.digests,
            ..opts
        };
        reap_build_cgroups();
        let runner = RuntimeRunner::new(self.root().to_path_buf(), self.run_dir().to_path_buf())
            .with_secrets(secrets.values)
            .with_cancel(req.cancel.clone())
            .with_steps(req.steps.clone());
        let built = gcr_build::build(self.store()?, &runner, &opts, emit).map_err(build_err)?;
        self.attach_provenance(&built, key.as_ref(), emit)?;
        Ok(built)
    }

    /// A Dockerfile build: the policy gate on its base images, its `--secret`s, then
    /// gcr-build's Dockerfile frontend, then the provenance as for a `.gcr` build.
    fn build_dockerfile(
        &self,
        req: &BuildRequest,
        emit: &mut dyn FnMut(&Event),
    ) -> Result<Built, EngineError> {
        let mut opts = dockerfile_options(req);
        let key = self.build_sign_key(req)?;
        if crate::policy::load(self.root())?.is_some_and(|l| l.image.is_some()) {
            for base in gcr_build::dockerfile::base_images(&opts).map_err(build_err)? {
                self.gate_build_base(&base)?;
            }
        }
        let secrets = self.dockerfile_secrets(&req.secrets)?;
        opts.secret_digests = secrets.digests;
        reap_build_cgroups();
        let runner = RuntimeRunner::new(self.root().to_path_buf(), self.run_dir().to_path_buf())
            .with_secrets(secrets.values)
            .with_cancel(req.cancel.clone())
            .with_steps(req.steps.clone());
        let built =
            gcr_build::dockerfile::build(self.store()?, &runner, &opts, emit).map_err(build_err)?;
        self.attach_provenance(&built, key.as_ref(), emit)?;
        Ok(built)
    }

    /// The key a build signs with: `--sign-key`, else the root's default unless
    /// `--no-sign`; opened (password checked) before anything is built.
    fn build_sign_key(
        &self,
        req: &BuildRequest,
    ) -> Result<Option<gcr_trust::PrivateKey>, EngineError> {
        let name = match (&req.sign_key, req.no_sign) {
            (Some(k), _) => Some(k.clone()),
            (None, false) => provenance::default_sign_key(self.root())?,
            (None, true) => None,
        };
        Ok(name
            .map(|k| self.keys().private(&k, req.password.as_deref()))
            .transpose()?)
    }

    /// The base images a build starts from (not stages, not scratch), expanded with its
    /// build args: what `docker build --pull` (and a missing base) pulls first.
    pub fn build_bases(&self, req: &BuildRequest) -> Result<Vec<String>, EngineError> {
        if req.dockerfile_text.is_some() || gcr_build::dockerfile::is_dockerfile(&req.spec_file) {
            return gcr_build::dockerfile::base_images(&dockerfile_options(req)).map_err(build_err);
        }
        let name = req.spec_file.display().to_string();
        let bytes = std::fs::read(&req.spec_file)
            .map_err(|e| EngineError::Io(format!("cannot read spec file {name}"), e))?;
        let spec = gcr_core::spec::parse_spec_bytes(&name, &bytes)
            .map_err(|e| EngineError::Usage(e.to_string()))?;
        Ok(match spec.base {
            gcr_core::spec::Base::Scratch => Vec::new(),
            b => vec![b.to_string()],
        })
    }

    /// A Dockerfile build's instructions in order, as Docker's classic builder numbers its
    /// steps: (stage index, text), each stage's `FROM` first. Empty for a `.gcr` spec.
    pub fn dockerfile_steps(
        &self,
        req: &BuildRequest,
    ) -> Result<Vec<(usize, String)>, EngineError> {
        if req.dockerfile_text.is_none() && !gcr_build::dockerfile::is_dockerfile(&req.spec_file) {
            return Ok(Vec::new());
        }
        let (df, _) = gcr_build::dockerfile::load(&dockerfile_options(req)).map_err(build_err)?;
        let mut out = Vec::new();
        for (i, st) in df.stages.iter().enumerate() {
            let from = match &st.name {
                Some(n) => format!("FROM {} AS {n}", st.base),
                None => format!("FROM {}", st.base),
            };
            out.push((i, from));
            out.extend(st.instructions.iter().map(|ins| (i, ins.text.clone())));
        }
        Ok(out)
    }

    /// `docker builder prune`: the step-cache entries no image's layer comes from (with
    /// `all`, every entry), and their layer blobs when nothing else references them.
    pub fn build_cache_prune(
        &self,
        all: bool,
    ) -> Result<Vec<gcr_build::cache::PrunedStep>, EngineError> {
        gcr_build::cache::prune(self.store()?, all).map_err(build_err)
    }

    /// `gcr builder prune [-a] [--filter until=…] [--keep-storage SIZE]`.
    pub fn build_cache_prune_with(
        &self,
        o: &gcr_build::cache::PruneOptions,
    ) -> Result<Vec<gcr_build::cache::PrunedStep>, EngineError> {
        gcr_build::cache::prune_with(self.store()?, o).map_err(build_err)
    }

    /// The build transcript of an image built by this store.
    pub fn image_transcript(&self, image: &str) -> Result<serde_json::Value, EngineError> {
        let id = self.store()?.resolve_image(image).map_err(|e| {
            if e.is_not_found() {
                EngineError::NotFound(format!("no such image: {image}"))
            } else {
                e.into()
            }
        })?;
        gcr_build::cache::transcript(self.store()?, &id.id)
            .map_err(build_err)?
            .ok_or_else(|| {
                EngineError::NotFound(format!(
                    "image {image} has no build transcript (it was not built by gcr build in this store)"
                ))
            })
    }
}
