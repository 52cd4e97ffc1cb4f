//! `gcr manifest apply FILE`: verify → policy → pull → grants → run detached, as the seed's
//! deploy flow. The signer must be a key of this store (or the key given). With an
//! idempotency key, the first apply is recorded (`manifest_applies`, schema v8) before
//! anything runs, in the transaction of its `deploy.planned` event: the same key with the
//! same manifest digest returns that first result without running again, with another
//! digest it is `409_IDEMPOTENCY_CONFLICT`. A nonce (the seed's `X-Nonce`) is accepted once
//! per store (`manifest_nonces`): a reused one is `409_NONCE_REUSED`. The run goes through
//! the engine's own `run -d` (so policy, once configured, is consulted there; its refusal
//! is `403_FORBIDDEN`), and the outcome is recorded with `deploy.applied` and
//! `run_state.running`, or `deploy.failed` (with the code and reason) and
//! `run_state.failed` (the reservation is then released).
//!
//! Grants: an environment value `grant://GRANT` becomes `grant://<artifact id>`, the gcr
//! secret holding the artifact (`gcr secret create <artifact id> FILE`), which the run puts
//! in that process's environment only; a missing secret is `403_FORBIDDEN` before anything
//! is recorded. The value itself is never read here.

use std::path::Path;

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use gcr_trust::minicontainer::GRANT_SCHEME;

use crate::container::config::RunOptions;
use crate::container::record::{event, now_secs};
use crate::manifest::{load, Code, Loaded, ManifestReport, McError};
use crate::{Engine, EngineError};

/// Options of `gcr manifest apply`.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    pub idempotency_key: Option<String>,
    pub nonce: Option<String>,
    /// Container name; default the manifest's `<tenant>-<service>`.
    pub name: Option<String>,
    /// The signer required (a store key name or PEM public key file).
    pub key: Option<String>,
}

/// What an apply did (or, replayed, what the first apply with its key did).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Applied {
    pub digest: String,
    pub reference: String,
    pub image: String,
    pub container_id: String,
    pub container_name: String,
    /// True when this is the recorded result of an earlier apply with the same key.
    #[serde(default)]
    pub replayed: bool,
}

fn internal(field: &str, e: impl std::fmt::Display) -> McError {
    McError::internal(field, e.to_string())
}

/// A key or nonce: 1 to 255 printable ASCII characters.
fn check_token(field: &str, s: &str) -> Result<(), McError> {
    if !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(McError::schema(
            field,
            "must be 1 to 255 printable ASCII characters without spaces",
        ))
    }
}

enum Reserved {
    /// Go ahead.
    New,
    /// The recorded first result.
    Replay(Applied),
}

impl Engine {
    /// `gcr manifest apply FILE`.
    pub fn manifest_apply(&self, path: &Path, o: &ApplyOptions) -> Result<Applied, McError> {
        if let Some(k) = &o.idempotency_key {
            check_token("idempotency_key", k)?;
        }
        if let Some(n) = &o.nonce {
            check_token("nonce", n)?;
        }
        let l = load(path)?;
        let report = self.manifest_check(&l, o.key.as_deref())?;
        let name = o.name.clone().unwrap_or_else(|| l.manifest.deploy_name());
        if !report.trusted {
            let e = McError::new(
                Code::Forbidden,
                "provenance.kid",
                format!(
                    "the manifest is signed by key id {}, which is not a key of this store; import the signer's public key with `gcr key import NAME FILE` or give it with --key",
                    report.key_id
                ),
            );
            let _ = self.record_refused(&report, &name, &e);
            return Err(e);
        }
        let opts = self.run_options(&l, &report, &name)?;
        match self.reserve(o, &report, &name)? {
            Reserved::Replay(a) => return Ok(a),
            Reserved::New => {}
        }
        let r = self
            .pull_if_missing(&l.manifest.deploy.image)
            .and_then(|()| {
                self.run_detached(opts).map_err(|e| {
                    let msg = e.to_string();
                    if msg.contains("POLICY_DENY") {
                        McError::new(Code::Forbidden, "deploy", msg)
                    } else {
                        McError::internal("deploy", msg)
                    }
                })
            });
        match r {
            Ok(rec) => {
                let applied = Applied {
                    digest: report.digest.clone(),
                    reference: report.reference.clone(),
                    image: l.manifest.deploy.image.clone(),
                    container_id: rec.id.clone(),
                    container_name: rec.name.clone(),
                    replayed: false,
                };
                self.record_applied(o, &applied)?;
                Ok(applied)
            }
            Err(e) => {
                // Release the reservation so that a retry with the same key can run.
                let _ = self.record_failed(o, &report, &name, &e);
                Err(e)
            }
        }
    }

    /// The `run -d` options of a manifest.
    fn run_options(
        &self,
        l: &Loaded,
        report: &ManifestReport,
        name: &str,
    ) -> Result<RunOptions, McError> {
        let d = &l.manifest.deploy;
        let mut env = Vec::new();
        for (k, v) in &d.env {
            match v.strip_prefix(GRANT_SCHEME) {
                Some(gid) => {
                    let artifact = l
                        .manifest
                        .grant(gid)
                        .map(|g| g.artifact_id.clone())
                        .ok_or_else(|| {
                            McError::schema(format!("deploy.env.{k}"), "names an undeclared grant")
                        })?;
                    self.grant_secret(k, &artifact)?;
                    env.push(format!("{k}={GRANT_SCHEME}{artifact}"));
                }
                None => env.push(format!("{k}={v}")),
            }
        }
        let (entrypoint, cmd) = match d.entrypoint.split_first() {
            Some((first, rest)) => (Some(first.clone()), rest.to_vec()),
            None => (None, Vec::new()),
        };
        Ok(RunOptions {
            image: d.image.clone(),
            name: Some(name.to_string()),
            entrypoint,
            cmd,
            env,
            detach: true,
            memory: d.memory_bytes,
            read_only: d.read_only_rootfs,
            publish: d
                .ports
                .iter()
                .map(|p| {
                    if p.host == 0 {
                        format!("{}", p.container)
                    } else {
                        format!("{}:{}", p.host, p.container)
                    }
                })
                .collect(),
            labels: vec![
                format!("ll.minicontainer.digest={}", report.digest),
                format!("ll.minicontainer.ref={}", report.reference),
            ],
            ..RunOptions::default()
        })
    }

    /// Checks that grant artifact `artifact` (used by variable `var`) is a gcr secret, which
    /// the run hands to the container's environment only (`-e VAR=grant://NAME`).
    fn grant_secret(&self, var: &str, artifact: &str) -> Result<(), McError> {
        match self.secret_inspect(artifact) {
            Ok(_) => Ok(()),
            Err(EngineError::NotFound(_)) => Err(McError::new(
                Code::Forbidden,
                format!("deploy.env.{var}"),
                format!(
                    "the grant's artifact '{artifact}' is not a secret of this store; create it with `gcr secret create {artifact} FILE`"
                ),
            )),
            Err(e) => Err(internal(&format!("deploy.env.{var}"), e)),
        }
    }

    fn pull_if_missing(&self, image: &str) -> Result<(), McError> {
        let store = self.store().map_err(|e| internal("", e))?;
        if store.resolve_image(image).is_ok() {
            return Ok(());
        }
        self.pull(
            image,
            &crate::registry::PullOptions::default(),
            &crate::registry::NoProgress,
        )
        .map(|_| ())
        .map_err(|e| internal("deploy.image", e))
    }

    /// Records the nonce and the idempotency reservation with `deploy.planned`, or finds
    /// the first result.
    fn reserve(
        &self,
        o: &ApplyOptions,
        report: &ManifestReport,
        name: &str,
    ) -> Result<Reserved, McError> {
        let store = self.store().map_err(|e| internal("", e))?;
        let r = store.transaction(|tx| -> Result<Result<Reserved, McError>, EngineError> {
            if let Some(k) = &o.idempotency_key {
                let row: Option<(String, Option<String>)> = tx
                    .query_row(
                        "SELECT digest, result FROM manifest_applies WHERE idempotency_key = ?1",
                        [k],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                match row {
                    Some((d, _)) if d != report.digest => {
                        return Ok(Err(McError::new(
                            Code::IdempotencyConflict,
                            "idempotency_key",
                            format!("key '{k}' was used for another manifest ({d}); use a new key for a changed manifest"),
                        )))
                    }
                    Some((_, Some(result))) => {
                        let mut a: Applied = serde_json::from_str(&result)?;
                        a.replayed = true;
                        return Ok(Ok(Reserved::Replay(a)));
                    }
                    Some((_, None)) => {
                        return Ok(Err(McError::new(
                            Code::IdempotencyConflict,
                            "idempotency_key",
                            format!("an apply with key '{k}' is still in progress; retry when it ends"),
                        )))
                    }
                    None => {}
                }
            }
            if let Some(n) = &o.nonce {
                let used = tx
                    .execute(
                        "INSERT INTO manifest_nonces(nonce, digest, used_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                        params![n, report.digest, now_secs()],
                    )?
                    == 0;
                if used {
                    return Ok(Err(McError::new(
                        Code::NonceReused,
                        "nonce",
                        format!("nonce '{n}' was used already; every apply needs a fresh nonce"),
                    )));
                }
            }
            if let Some(k) = &o.idempotency_key {
                tx.execute(
                    "INSERT INTO manifest_applies(idempotency_key, digest, result, created_at) VALUES (?1, ?2, NULL, ?3)",
                    params![k, report.digest, now_secs()],
                )?;
            }
            event(tx, "deploy", &report.digest, name, None, Some("planned"), &report.reference)?;
            Ok(Ok(Reserved::New))
        });
        r.map_err(|e| internal("", e))?
    }

    fn record_applied(&self, o: &ApplyOptions, a: &Applied) -> Result<(), McError> {
        let store = self.store().map_err(|e| internal("", e))?;
        store
            .transaction(|tx| -> Result<(), EngineError> {
                if let Some(k) = &o.idempotency_key {
                    tx.execute(
                        "UPDATE manifest_applies SET result = ?2 WHERE idempotency_key = ?1",
                        params![k, serde_json::to_string(a)?],
                    )?;
                }
                event(
                    tx,
                    "deploy",
                    &a.digest,
                    &a.container_name,
                    Some("planned"),
                    Some("applied"),
                    &a.container_id,
                )?;
                event(
                    tx,
                    "run_state",
                    &a.container_id,
                    &a.container_name,
                    Some("pending"),
                    Some("running"),
                    &a.digest,
                )?;
                event(
                    tx,
                    "minicontainer",
                    &a.digest,
                    &a.container_name,
                    None,
                    Some("applied"),
                    "ok",
                )?;
                Ok(())
            })
            .map_err(|e| internal("", e))
    }

    fn record_failed(
        &self,
        o: &ApplyOptions,
        report: &ManifestReport,
        name: &str,
        e: &McError,
    ) -> Result<(), McError> {
        let store = self.store().map_err(|e| internal("", e))?;
        store
            .transaction(|tx| -> Result<(), EngineError> {
                if let Some(k) = &o.idempotency_key {
                    tx.execute(
                        "DELETE FROM manifest_applies WHERE idempotency_key = ?1 AND result IS NULL",
                        [k],
                    )?;
                }
                let why = format!("{}: {}", e.code.as_str(), e.reason);
                event(tx, "deploy", &report.digest, name, Some("planned"), Some("failed"), &why)?;
                event(tx, "run_state", &report.digest, name, Some("pending"), Some("failed"), e.code.as_str())?;
                event(tx, "minicontainer", &report.digest, name, None, Some("applied"), &why)?;
                Ok(())
            })
            .map_err(|e| internal("", e))
    }

    /// An apply refused before anything was planned (its signer is not trusted here): only
    /// its `minicontainer.applied` event, with the reason.
    fn record_refused(
        &self,
        report: &ManifestReport,
        name: &str,
        e: &McError,
    ) -> Result<(), McError> {
        let why = format!("{}: {}", e.code.as_str(), e.reason);
        let store = self.store().map_err(|e| internal("", e))?;
        store
            .transaction(|tx| -> Result<(), EngineError> {
                event(
                    tx,
                    "minicontainer",
                    &report.digest,
                    name,
                    None,
                    Some("applied"),
                    &why,
                )
            })
            .map_err(|e| internal("", e))
    }
}
