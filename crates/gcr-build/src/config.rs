//! The image config (OCI image-spec, with Docker's `Healthcheck`) and manifest, built from
//! the base image's config and the spec's `build.env`, `runtime` and `metadata`, serialized
//! canonically so equal inputs give equal bytes.

use std::collections::BTreeMap;

use gcr_core::spec::{Command, Spec};
use gcr_store::NewLayer;
use serde_json::{json, Map, Value};

/// The OCI architecture name of this host.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn argv(c: &Command) -> Value {
    match c {
        Command::Shell(s) => json!(["/bin/sh", "-c", s]),
        Command::Exec(v) => json!(v),
    }
}

/// The base image's `created` as it is written there, when it is an RFC 3339 time: what a
/// build with no explicit time (SOURCE_DATE_EPOCH, a spec's `metadata.created`) gives its
/// image, so the image shows the age of its base rather than the epoch's and equal inputs
/// still give equal digests. None for scratch and for a base without one.
pub fn base_created(base: &Value) -> Option<String> {
    base.get("created")
        .and_then(Value::as_str)
        .filter(|c| gcr_core::time::Timestamp::parse(c).is_ok())
        .map(str::to_string)
}

/// The environment after applying `build.env` on top of the base's `Env`.
pub fn merged_env(base: &Value, env: &BTreeMap<String, String>) -> Vec<String> {
    let mut out: Vec<String> = base
        .pointer("/config/Env")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for (k, v) in env {
        let kv = format!("{k}={v}");
        match out
            .iter()
            .position(|e| e.split('=').next() == Some(k.as_str()))
        {
            Some(i) => out[i] = kv,
            None => out.push(kv),
        }
    }
    out
}

/// One `history` entry per layer (and per config-only step).
pub struct History {
    pub created_by: String,
    pub empty_layer: bool,
}

/// Builds the image config JSON value.
pub fn image_config(
    spec: &Spec,
    base: &Value,
    diff_ids: &[String],
    history: &[History],
    created: &str,
) -> Value {
    let mut cfg: Map<String, Value> = base
        .get("config")
        .and_then(|c| c.as_object())
        .cloned()
        .unwrap_or_default();
    let env = merged_env(base, &spec.build.env);
    if !env.is_empty() {
        cfg.insert("Env".into(), json!(env));
    }
    let rt = &spec.runtime;
    if let Some(e) = &rt.entrypoint {
        cfg.insert("Entrypoint".into(), argv(e));
        if rt.cmd.is_none() {
            cfg.remove("Cmd");
        }
    }
    if let Some(c) = &rt.cmd {
        cfg.insert("Cmd".into(), argv(c));
    }
    if let Some(w) = &rt.workdir {
        cfg.insert("WorkingDir".into(), json!(w));
    }
    let user = match (&rt.user, rt.uid, rt.gid) {
        (Some(u), _, _) => Some(u.clone()),
        (None, Some(u), Some(g)) => Some(format!("{u}:{g}")),
        (None, Some(u), None) => Some(u.to_string()),
        (None, None, Some(g)) => Some(format!("0:{g}")),
        (None, None, None) => None,
    };
    if let Some(u) = user {
        cfg.insert("User".into(), json!(u));
    }
    if !rt.ports.is_empty() {
        let m = cfg.entry("ExposedPorts").or_insert_with(|| json!({}));
        if let Some(m) = m.as_object_mut() {
            for p in &rt.ports {
                m.insert(p.to_string(), json!({}));
            }
        }
    }
    if !rt.volumes.is_empty() {
        let m = cfg.entry("Volumes").or_insert_with(|| json!({}));
        if let Some(m) = m.as_object_mut() {
            for v in &rt.volumes {
                m.insert(v.clone(), json!({}));
            }
        }
    }
    if let Some(s) = &rt.stop_signal {
        cfg.insert("StopSignal".into(), json!(s));
    }
    if let Some(h) = &rt.healthcheck {
        let test = match &h.command {
            Command::Shell(s) => json!(["CMD-SHELL", s]),
            Command::Exec(v) => {
                let mut t = vec![json!("CMD")];
                t.extend(v.iter().map(|s| json!(s)));
                Value::Array(t)
            }
        };
        cfg.insert(
            "Healthcheck".into(),
            json!({
                "Test": test,
                "Interval": h.interval.as_nanos() as u64,
                "Timeout": h.timeout.as_nanos() as u64,
                "Retries": h.retries,
                "StartPeriod": h.start_period.as_nanos() as u64,
            }),
        );
    }
    let labels = cfg.entry("Labels").or_insert_with(|| json!({}));
    if let Some(l) = labels.as_object_mut() {
        for (k, v) in labels_of(spec) {
            l.insert(k, json!(v));
        }
    }
    if labels.as_object().is_some_and(|l| l.is_empty()) {
        cfg.remove("Labels");
    }
    let mut hist: Vec<Value> = base
        .get("history")
        .and_then(|h| h.as_array())
        .cloned()
        .unwrap_or_default();
    for h in history {
        let mut e = json!({"created": created, "created_by": h.created_by, "comment": "gcr build"});
        if h.empty_layer {
            e["empty_layer"] = json!(true);
        }
        hist.push(e);
    }
    let mut out = json!({
        "architecture": base.get("architecture").and_then(|v| v.as_str()).unwrap_or(host_arch()),
        "os": "linux",
        "created": created,
        "config": Value::Object(cfg),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": hist,
    });
    if let Some(a) = &spec.metadata.author {
        out["author"] = json!(a);
    }
    out
}

/// Labels from `metadata` (OCI annotation keys) and runtime settings the image config has no
/// field for.
fn labels_of(spec: &Spec) -> Vec<(String, String)> {
    let mut l = vec![
        (
            "org.opencontainers.image.title".to_string(),
            spec.name.clone(),
        ),
        (
            "org.opencontainers.image.version".to_string(),
            spec.version.clone(),
        ),
    ];
    let m = &spec.metadata;
    if let Some(a) = &m.author {
        l.push(("org.opencontainers.image.authors".into(), a.clone()));
    }
    if let Some(d) = &m.description {
        l.push(("org.opencontainers.image.description".into(), d.clone()));
    }
    if !m.tags.is_empty() {
        l.push(("dev.gcr.tags".into(), m.tags.join(",")));
    }
    let r = &spec.runtime.resources;
    if let Some(v) = r.memory {
        l.push(("dev.gcr.resources.memory".into(), v.to_string()));
    }
    if let Some(v) = r.cpu {
        l.push(("dev.gcr.resources.cpu".into(), v.to_string()));
    }
    if let Some(v) = r.pids {
        l.push(("dev.gcr.resources.pids".into(), v.to_string()));
    }
    if let Some(v) = r.storage {
        l.push(("dev.gcr.resources.storage".into(), v.to_string()));
    }
    if spec.runtime.read_only_rootfs {
        l.push(("dev.gcr.read-only-rootfs".into(), "true".into()));
    }
    if spec.build.network == gcr_core::spec::BuildNetwork::Host {
        l.push(("dev.gcr.build.hermetic".into(), "false".into()));
    }
    l
}

/// The OCI manifest for a config digest/size and layers.
pub fn manifest(config_digest: &str, config_size: u64, layers: &[NewLayer]) -> Value {
    let ls: Vec<Value> = layers
        .iter()
        .map(|l| json!({"mediaType": l.media_type, "digest": l.digest, "size": l.size}))
        .collect();
    json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": ls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_created_is_kept_as_written_when_valid() {
        let t = "2024-05-06T07:08:09.123456789Z";
        assert_eq!(base_created(&json!({"created": t})).as_deref(), Some(t));
        assert_eq!(base_created(&json!({})), None);
        assert_eq!(base_created(&json!({"created": "yesterday"})), None);
        assert_eq!(base_created(&json!({"created": 1_700_000_000})), None);
    }
}
