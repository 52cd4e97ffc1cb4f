//! The gate's entry points: a new container (`create`, `run`, both run paths), a
//! `start`, a `pull` (before any blob is fetched, and after, for signatures), a build's
//! base image, and `gcr policy check`, which explains the same decision without acting.

use serde::Serialize;

use gcr_trust::policy::dockerref::DockerRef;
use gcr_trust::policy::image::ImageDecision;
use gcr_trust::policy::run::{Defaults, Deny, RunRequest};

use super::facts::{docker_ref, Identity, Verdict};
use super::{deny, load, Loaded};
use crate::container::config::RunOptions;
use crate::container::record::{self, Record};
use crate::{Engine, EngineError};

/// The run rules' part of `gcr policy check`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunCheck {
    pub file: Option<String>,
    pub allowed: bool,
    pub rule: Option<String>,
    pub reason: Option<String>,
    /// Limits the ceilings would fill in.
    pub defaults: Option<Defaults>,
}

/// What `gcr policy check IMAGE [run flags]` found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CheckReport {
    pub allowed: bool,
    pub image: String,
    pub policy_digest: Option<String>,
    pub image_policy_file: Option<String>,
    /// The image policy's decision: transport, identity, matched scope, requirements.
    pub image_decision: Option<ImageDecision>,
    pub registry: String,
    pub signers: Vec<String>,
    pub run: RunCheck,
}

/// Bind sources of `-v` flags: as given and resolved.
/// The host sources of `-v /host:…` and `--mount type=bind,source=/host,…`.
fn binds(volumes: &[String], mounts: &[String]) -> Vec<(String, Option<std::path::PathBuf>)> {
    let from_mounts = mounts.iter().filter_map(|m| {
        match crate::volumes::plan::parse_mount(m) {
            Ok(crate::volumes::plan::Planned::Bind { source, .. }) => Some(source),
            // Unparseable: refused at create anyway; a bind that does not resolve is denied.
            Err(_) if m.contains("bind") => Some(m.clone()),
            _ => None,
        }
    });
    volumes
        .iter()
        .filter_map(|v| v.split(':').next())
        .filter(|s| s.starts_with('/'))
        .map(str::to_string)
        .chain(from_mounts)
        .map(|s| {
            let resolved = std::fs::canonicalize(&s).ok();
            (s, resolved)
        })
        .collect()
}

fn image_user(config: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(config).ok()?;
    v.pointer("/config/User")
        .and_then(|u| u.as_str())
        .map(str::to_string)
}

impl Engine {
    /// Records a refusal (best effort: the refusal stands even if the store is busy).
    fn record_deny(&self, object: &str, rule: &str) {
        if let Ok(store) = self.store() {
            let _ = record::event(store.conn(), "policy", object, "", None, Some("deny"), rule);
        }
    }

    fn refuse(&self, object: &str, rule: &str, reason: &str) -> EngineError {
        self.record_deny(object, rule);
        deny(rule, reason)
    }

    /// The run policy's signers as key ids (names are looked up in the key store).
    fn signer_ids(&self, loaded: &Loaded) -> Result<Vec<String>, EngineError> {
        let Some((_, run)) = &loaded.run else {
            return Ok(Vec::new());
        };
        let keys = self.keys();
        run.signers
            .iter()
            .map(|s| {
                if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(s.to_ascii_lowercase())
                } else {
                    keys.public(s).map(|k| k.id().to_string()).map_err(|_| {
                        EngineError::Usage(format!(
                            "the run policy names signer '{s}', which is neither a key id nor a key in `gcr key list`; fix the run policy"
                        ))
                    })
                }
            })
            .collect()
    }

    /// Evaluates the run rules for `opts` on an image with verdict `v`.
    fn run_rules(
        &self,
        loaded: &Loaded,
        opts: &RunOptions,
        v: &Verdict,
        uid: impl FnOnce() -> Result<u32, EngineError>,
    ) -> Result<Result<Defaults, Deny>, EngineError> {
        let Some((_, run)) = &loaded.run else {
            return Ok(Ok(Defaults::default()));
        };
        let req = RunRequest {
            registry: v.registry.clone(),
            signers: v.signers.clone(),
            privileged: opts.privileged,
            cap_add: opts.cap_add.clone(),
            host_network: opts.network.as_deref() == Some("host"),
            host_namespaces: [("pid", &opts.pid), ("ipc", &opts.ipc), ("uts", &opts.uts)]
                .into_iter()
                .filter(|(_, v)| v.as_deref() == Some("host"))
                .map(|(n, _)| n.to_string())
                .collect(),
            devices: opts
                .devices
                .iter()
                .filter_map(|d| crate::container::config::parse_device(d).ok())
                .map(|(host, _, _)| host)
                .collect(),
            binds: binds(&opts.volumes, &opts.mounts),
            read_only: opts.read_only,
            uid: if run.non_root { Some(uid()?) } else { None },
            memory: opts.memory,
            cpus: opts.cpus,
            pids: opts.pids_limit,
        };
        Ok(run.evaluate(&req, &self.signer_ids(loaded)?))
    }

    /// The gate of a new container: image and run rules; missing limits get the
    /// ceilings. Returns the allow note stored with the container (None: no policy).
    pub(crate) fn gate_container(
        &self,
        opts: &mut RunOptions,
        id: &str,
        config: &str,
        lowers: &[String],
    ) -> Result<Option<String>, EngineError> {
        let Some(loaded) = load(self.root())? else {
            return Ok(None);
        };
        crate::timing::mark("policy: loaded");
        let v = self.policy_verdict(loaded, &opts.image, id)?;
        crate::timing::mark("policy: image verdict");
        if let Some(d) = v.image.as_ref().filter(|d| !d.allowed) {
            return Err(self.refuse(&opts.image, &d.rule, &d.reason));
        }
        let user = opts.user.clone().or_else(|| image_user(config));
        let uid = || -> Result<u32, EngineError> {
            Ok(crate::resolve::resolve_user(user.as_deref().unwrap_or(""), lowers)?.0)
        };
        match self.run_rules(loaded, opts, &v, uid)? {
            Err(d) => Err(self.refuse(&opts.image, &d.rule, &d.reason)),
            Ok(defaults) => {
                crate::timing::mark("policy: run rules");
                opts.memory = opts.memory.or(defaults.memory);
                opts.cpus = opts.cpus.or(defaults.cpus);
                opts.pids_limit = opts.pids_limit.or(defaults.pids);
                let rule = v.image.as_ref().map_or("-", |d| d.rule.as_str());
                Ok(Some(format!(
                    "policy allow {rule} digest {}",
                    &loaded.digest[..16]
                )))
            }
        }
    }

    /// The gate of `start`: the container as stored must still pass (a limit the policy
    /// would fill in now, missing from a container made before, is refused: recreate it).
    pub(crate) fn gate_start(&self, r: &Record) -> Result<(), EngineError> {
        let Some(loaded) = load(self.root())? else {
            return Ok(());
        };
        let opts = &r.config.opts;
        let v = self.policy_verdict(loaded, &r.image_ref, &r.image_id)?;
        if let Some(d) = v.image.as_ref().filter(|d| !d.allowed) {
            return Err(self.refuse(&r.id, &d.rule, &d.reason));
        }
        let uid = r.config.resolved.uid;
        match self.run_rules(loaded, opts, &v, || Ok(uid))? {
            Err(d) => Err(self.refuse(&r.id, &d.rule, &d.reason)),
            Ok(defaults) if defaults != Defaults::default() => {
                let (rule, what) = match (defaults.memory, defaults.cpus) {
                    (Some(_), _) => ("runPolicy.memory", "memory"),
                    (None, Some(_)) => ("runPolicy.cpus", "cpus"),
                    _ => ("runPolicy.pids", "pids"),
                };
                Err(self.refuse(
                    &r.id,
                    rule,
                    &format!("container {} has no {what} limit and the run policy sets a ceiling; remove it and create it again", r.name),
                ))
            }
            Ok(_) => Ok(()),
        }
    }

    /// `gcr pull`, before anything is fetched: refused when the reference's scope rejects.
    /// True when a `sigstoreSigned` requirement must be checked once the image is in.
    pub(crate) fn gate_pull_before(&self, reference: &str) -> Result<bool, EngineError> {
        let Some(loaded) = load(self.root())? else {
            return Ok(false);
        };
        let Some(file) = &loaded.image else {
            return Ok(false);
        };
        let policy = file.policy()?;
        let r =
            gcr_core::Reference::parse(reference).map_err(|e| EngineError::Usage(e.to_string()))?;
        let dr = DockerRef {
            name: r.name(),
            tag: r
                .tag()
                .map(str::to_string)
                .or_else(|| r.digest().is_none().then(|| "latest".into())),
            digest: r.digest().map(|d| d.to_string()),
        };
        if let Some(d) = policy.precheck("docker", &dr) {
            return Err(self.refuse(reference, &d.rule, &d.reason));
        }
        Ok(policy
            .lookup("docker", Some(&dr))
            .requirements
            .iter()
            .any(|q| {
                matches!(
                    q,
                    gcr_trust::policy::image::Requirement::SigstoreSigned { .. }
                )
            }))
    }

    /// `gcr pull`, once image `id` and its referrers are in: the full image decision.
    pub(crate) fn gate_pull_after(&self, reference: &str, id: &str) -> Result<(), EngineError> {
        let Some(loaded) = load(self.root())? else {
            return Ok(());
        };
        let manifest_digest = self.store()?.resolve_image(id)?.manifest_digest;
        // Judged as what was just pulled, in the docker transport: the store may have had
        // the same image already (built or imported, so no blob was fetched and it has no
        // registry source), and it must not pass as a local image.
        let r =
            gcr_core::Reference::parse(reference).map_err(|e| EngineError::Usage(e.to_string()))?;
        let ident = Identity {
            transport: "docker",
            registry: r.registry().to_string(),
            reference: Some(docker_ref(&r)),
        };
        match self.image_decision(loaded, &ident, &manifest_digest)? {
            Some(d) if !d.allowed => Err(self.refuse(reference, &d.rule, &d.reason)),
            _ => Ok(()),
        }
    }

    /// A build's base image: the image policy must accept it.
    pub(crate) fn gate_build_base(&self, base: &str) -> Result<(), EngineError> {
        let Some(loaded) = load(self.root())? else {
            return Ok(());
        };
        if loaded.image.is_none() {
            return Ok(());
        }
        let Ok(img) = self.store()?.resolve_image(base) else {
            // The build itself says the base is missing.
            return Ok(());
        };
        let v = self.policy_verdict(loaded, base, &img.id)?;
        match v.image {
            Some(d) if !d.allowed => Err(self.refuse(base, &d.rule, &d.reason)),
            _ => Ok(()),
        }
    }

    /// `gcr policy check IMAGE [run flags]`: the decision, explained, without acting.
    pub fn policy_check(&self, mut opts: RunOptions) -> Result<CheckReport, EngineError> {
        let img = self.store()?.resolve_image(&opts.image)?;
        let loaded = load(self.root())?;
        let Some(loaded) = loaded else {
            return Ok(CheckReport {
                allowed: true,
                image: opts.image.clone(),
                policy_digest: None,
                image_policy_file: None,
                image_decision: None,
                registry: String::new(),
                signers: Vec::new(),
                run: RunCheck {
                    file: None,
                    allowed: true,
                    rule: None,
                    reason: Some("no policy file: everything is allowed".into()),
                    defaults: None,
                },
            });
        };
        let v = self.policy_verdict(loaded, &opts.image, &img.id)?;
        let config = String::from_utf8(self.store()?.image_config(&img.id)?).unwrap_or_default();
        let lowers: Vec<String> = self
            .store()?
            .prepare_rootfs(&img.id)?
            .into_iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let user = opts.user.clone().or_else(|| image_user(&config));
        let uid = || -> Result<u32, EngineError> {
            Ok(crate::resolve::resolve_user(user.as_deref().unwrap_or(""), &lowers)?.0)
        };
        let run = self.run_rules(loaded, &opts, &v, uid)?;
        let run_file = loaded.run.as_ref().map(|(p, _)| p.display().to_string());
        let run = match run {
            Ok(d) => {
                opts.memory = opts.memory.or(d.memory);
                RunCheck {
                    file: run_file,
                    allowed: true,
                    rule: None,
                    reason: None,
                    defaults: Some(d),
                }
            }
            Err(d) => RunCheck {
                file: run_file,
                allowed: false,
                rule: Some(d.rule),
                reason: Some(d.reason),
                defaults: None,
            },
        };
        Ok(CheckReport {
            allowed: run.allowed && v.image.as_ref().is_none_or(|d| d.allowed),
            image: opts.image,
            policy_digest: Some(loaded.digest.clone()),
            image_policy_file: loaded.image.as_ref().map(|f| f.path.display().to_string()),
            image_decision: v.image,
            registry: v.registry,
            signers: v.signers,
            run,
        })
    }
}
