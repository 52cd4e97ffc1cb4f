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

use std::path::{Path, PathBuf};

use gcr_build::{BuildError, BuildOptions, Built, Event};

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
}

/// Finds the spec: `file` if given (`-f`), else the only `*.gcr` file in `dir`.
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
        0 => Err(EngineError::NotFound(format!(
            "no .gcr spec in {}; add one or pass -f FILE.gcr",
            dir.display()
        ))),
        _ => Err(EngineError::Usage(format!(
            "{} contains several .gcr specs; choose one with -f FILE.gcr",
            dir.display()
        ))),
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
    /// Builds (and tags) the image of a spec, reporting progress to `emit`.
    pub fn build(
        &self,
        req: &BuildRequest,
        emit: &mut dyn FnMut(&Event),
    ) -> Result<Built, EngineError> {
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
        let key_name = match (&req.sign_key, req.no_sign) {
            (Some(k), _) => Some(k.clone()),
            (None, false) => provenance::default_sign_key(self.root())?,
            (None, true) => None,
        };
        let key = key_name
            .map(|k| self.keys().private(&k, req.password.as_deref()))
            .transpose()?;
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
        let runner = RuntimeRunner::new(self.run_dir().to_path_buf()).with_secrets(secrets.values);
        let built = gcr_build::build(self.store()?, &runner, &opts, emit).map_err(build_err)?;
        self.attach_provenance(&built, key.as_ref(), emit)?;
        Ok(built)
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
