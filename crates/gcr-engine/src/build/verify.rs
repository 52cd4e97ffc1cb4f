//! `gcr build --verify`: the same spec built twice, each time into a fresh temporary store
//! (with only the base image copied in), then compared; a difference is explained down to
//! the first differing layer entry or config field.

use gcr_build::{BuildOptions, Event};
use gcr_core::spec::Base;
use gcr_store::{NewImage, NewLayer, Store};

use super::{build_err, BuildRequest, RuntimeRunner};
use crate::{Engine, EngineError};

/// The outcome of a verification.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Manifest digests of the two independent builds.
    pub first: String,
    pub second: String,
    /// Why they differ, when they do.
    pub difference: Option<String>,
}

impl Verified {
    pub fn reproducible(&self) -> bool {
        self.first == self.second
    }
}

/// Copies the image `name` (and its blobs, hard-linked when possible) from `from` to `to`.
fn copy_image(
    from: &Store,
    to: &Store,
    name: &str,
    tag: Option<String>,
) -> Result<(), EngineError> {
    let r = from.resolve_image(name)?;
    let layers = from.image_layers(&r.id)?;
    let mut digests = vec![r.id.clone(), r.manifest_digest.clone()];
    digests.extend(layers.iter().map(|l| l.digest.clone()));
    for d in &digests {
        let (src, dst) = (from.blob_path(d)?, to.blob_path(d)?);
        if dst.exists() {
            continue;
        }
        if std::fs::hard_link(&src, &dst).is_err() {
            to.put_blob_reader(from.open_blob(d)?, Some(d))?;
        }
    }
    let img = NewImage {
        manifest_digest: r.manifest_digest,
        manifest_media_type: r.manifest_media_type,
        config: from.image_config(&r.id)?,
        layers: layers.into_iter().map(NewLayer::from).collect(),
        tags: tag.into_iter().collect(),
    };
    to.register_images(&[img], "load")?;
    Ok(())
}

/// One build into a given store with a given runner, reporting to the emitter.
type BuildInto<'a> = dyn FnMut(&Store, &RuntimeRunner, &mut dyn FnMut(&Event)) -> Result<gcr_build::Built, EngineError>
    + 'a;

/// Copies a base image into a verification store; a missing one is the build's own
/// "unknown base" error.
fn copy_base(from: &Store, to: &Store, name: &str, tag: Option<String>) -> Result<(), EngineError> {
    copy_image(from, to, name, tag).map_err(|e| match e {
        EngineError::Store(se) if se.is_not_found() => {
            build_err(gcr_build::BuildError::UnknownBase(name.to_string()))
        }
        e => e,
    })
}

impl Engine {
    /// Builds the spec (or Dockerfile) twice into two fresh temporary stores and compares
    /// the results.
    pub fn verify_build(
        &self,
        req: &BuildRequest,
        emit: &mut dyn FnMut(&Event),
    ) -> Result<Verified, EngineError> {
        if req.dockerfile_text.is_some() || gcr_build::dockerfile::is_dockerfile(&req.spec_file) {
            let mut opts = super::dockerfile_options(req);
            opts.no_cache = true;
            opts.tag = false;
            let bases = gcr_build::dockerfile::base_images(&opts).map_err(build_err)?;
            let secrets = self.dockerfile_secrets(&req.secrets)?;
            opts.secret_digests = secrets.digests.clone();
            return self.twice(secrets.values, emit, &mut |s, runner, emit| {
                for b in &bases {
                    copy_base(self.store()?, s, b, Some(b.clone()))?;
                }
                gcr_build::dockerfile::build(s, runner, &opts, emit).map_err(build_err)
            });
        }
        let spec = gcr_build::load_spec(&req.spec_file).map_err(build_err)?;
        let secrets = self.build_secrets(&req.spec_file, &req.secrets)?;
        let opts = BuildOptions {
            spec_file: req.spec_file.clone(),
            tags: req.tags.clone(),
            no_cache: true,
            source_date_epoch: req.source_date_epoch,
            tag: false,
            allow_secrets: req.allow_secrets.clone(),
            no_context_scan: req.no_context_scan,
            secret_digests: secrets.digests.clone(),
        };
        self.twice(secrets.values, emit, &mut |s, runner, emit| {
            match &spec.base {
                Base::Scratch => {}
                Base::Image(r) => copy_base(self.store()?, s, &r.to_string(), Some(r.to_string()))?,
                Base::Id(d) => copy_base(self.store()?, s, &d.to_string(), None)?,
            }
            gcr_build::build(s, runner, &opts, emit).map_err(build_err)
        })
    }

    /// Runs `build` into two fresh temporary stores (with the build's secrets) and
    /// compares the two images, explaining the first difference.
    fn twice(
        &self,
        secrets: std::collections::BTreeMap<String, zeroize::Zeroizing<Vec<u8>>>,
        emit: &mut dyn FnMut(&Event),
        build: &mut BuildInto<'_>,
    ) -> Result<Verified, EngineError> {
        let tmp = tempfile::Builder::new()
            .prefix("verify-")
            .tempdir_in(self.store()?.temp_dir())
            .map_err(|e| EngineError::Io("creating a verification store".into(), e))?;
        super::reap_build_cgroups();
        let runner = RuntimeRunner::new(self.root().to_path_buf(), self.run_dir().to_path_buf())
            .with_secrets(secrets);
        let mut digests = Vec::new();
        let mut stores = Vec::new();
        for n in ["a", "b"] {
            let s = Store::open(&tmp.path().join(n))?;
            let b = build(&s, &runner, emit)?;
            digests.push((b.manifest_digest, b.id));
            stores.push(s);
        }
        let difference = (digests[0].0 != digests[1].0).then(|| {
            gcr_build::diff::explain(&stores[0], &digests[0].1, &stores[1], &digests[1].1)
                .unwrap_or_else(|| "the manifests differ".into())
        });
        drop(stores);
        Ok(Verified {
            first: digests[0].0.clone(),
            second: digests[1].0.clone(),
            difference,
        })
    }
}
