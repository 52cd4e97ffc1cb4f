//! `gcr manifest plan FILE --target gcr|podman|kubernetes`: what applying the manifest
//! means for a runtime, as text to review or run. `gcr` prints the gcr commands, `podman`
//! the `podman run` command (the seed's `toPodmanArgs()`), `kubernetes` a Secret and a Pod
//! as YAML that `podman kube play` and Kubernetes accept. Grants become secret references
//! (`grant://<artifact>`, `--secret <artifact>,type=env`, `secretKeyRef`): a plan never holds
//! a secret value. The Kubernetes Secret holds a placeholder per artifact, which the plan's
//! notes say to replace. The manifest's signature is verified first, as for apply.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use gcr_trust::minicontainer::{Manifest, GRANT_SCHEME};

use crate::manifest::{load, McError};
use crate::Engine;

/// A runtime to plan for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanTarget {
    Gcr,
    Podman,
    Kubernetes,
}

/// A plan: the text to print (stdout) and notes for the reader (stderr).
#[derive(Debug, Clone)]
pub struct Plan {
    pub text: String,
    pub notes: Vec<String>,
}

/// The placeholder a planned Kubernetes Secret holds instead of a value.
pub const PLACEHOLDER: &str = "REPLACE_WITH_SECRET_VALUE";

/// `s` quoted for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+%".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn line(words: &[String]) -> String {
    words
        .iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The image as a fully qualified reference (what other runtimes resolve unambiguously).
fn full_image(m: &Manifest) -> String {
    gcr_core::Reference::parse(&m.deploy.image)
        .map(|r| r.full())
        .unwrap_or_else(|_| m.deploy.image.clone())
}

/// The artifact (gcr/podman secret name) of an env value, if it is a grant.
fn grant_artifact<'a>(m: &'a Manifest, value: &str) -> Option<&'a str> {
    let gid = value.strip_prefix(GRANT_SCHEME)?;
    m.grant(gid).map(|g| g.artifact_id.as_str())
}

fn secret_notes(m: &Manifest, notes: &mut Vec<String>, how: &str) {
    for (_, v) in &m.deploy.env {
        if let Some(a) = grant_artifact(m, v) {
            let note = format!("secret '{a}' must exist first: {how} {a} FILE");
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }
}

/// The run flags shared by gcr and podman (without grants and entrypoint).
fn common_flags(m: &Manifest, name: &str, digest: &str) -> Vec<String> {
    let d = &m.deploy;
    let mut w = vec!["-d".into(), "--name".into(), name.to_string()];
    w.push("--label".into());
    w.push(format!("ll.minicontainer.digest={digest}"));
    for p in &d.ports {
        w.push("-p".into());
        w.push(if p.host == 0 {
            p.container.to_string()
        } else {
            format!("{}:{}", p.host, p.container)
        });
    }
    if let Some(mem) = d.memory_bytes {
        w.push("--memory".into());
        w.push(mem.to_string());
    }
    if d.read_only_rootfs {
        w.push("--read-only".into());
    }
    w
}

fn entry(m: &Manifest, w: &mut Vec<String>, image: String) {
    let ep = &m.deploy.entrypoint;
    if let Some(first) = ep.first() {
        w.push("--entrypoint".into());
        w.push(first.clone());
    }
    w.push(image);
    w.extend(ep.iter().skip(1).cloned());
}

fn plan_gcr(m: &Manifest, name: &str, digest: &str) -> Plan {
    let mut notes = Vec::new();
    secret_notes(m, &mut notes, "gcr secret create");
    let mut w: Vec<String> = vec!["gcr".into(), "run".into()];
    w.extend(common_flags(m, name, digest));
    for (k, v) in &m.deploy.env {
        w.push("-e".into());
        w.push(match grant_artifact(m, v) {
            Some(a) => format!("{k}={GRANT_SCHEME}{a}"),
            None => format!("{k}={v}"),
        });
    }
    entry(m, &mut w, m.deploy.image.clone());
    let text = format!(
        "{}\n{}\n",
        line(&["gcr".into(), "pull".into(), m.deploy.image.clone()]),
        line(&w)
    );
    Plan { text, notes }
}

fn plan_podman(m: &Manifest, name: &str, digest: &str) -> Plan {
    let mut notes = Vec::new();
    secret_notes(m, &mut notes, "podman secret create");
    let mut w: Vec<String> = vec!["podman".into(), "run".into()];
    w.extend(common_flags(m, name, digest));
    for (k, v) in &m.deploy.env {
        match grant_artifact(m, v) {
            Some(a) => {
                w.push("--secret".into());
                w.push(format!("{a},type=env,target={k}"));
            }
            None => {
                w.push("-e".into());
                w.push(format!("{k}={v}"));
            }
        }
    }
    entry(m, &mut w, full_image(m));
    Plan {
        text: format!("{}\n", line(&w)),
        notes,
    }
}

fn plan_kubernetes(m: &Manifest, name: &str, digest: &str) -> Plan {
    let d = &m.deploy;
    let secret_name = format!("{name}-grants");
    let mut artifacts: Vec<&str> = Vec::new();
    let env: Vec<Value> = d
        .env
        .iter()
        .map(|(k, v)| match grant_artifact(m, v) {
            Some(a) => {
                if !artifacts.contains(&a) {
                    artifacts.push(a);
                }
                json!({"name": k, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": a}}})
            }
            None => json!({"name": k, "value": v}),
        })
        .collect();
    let mut container = json!({
        "name": name,
        "image": full_image(m),
        "imagePullPolicy": "IfNotPresent",
    });
    if !d.entrypoint.is_empty() {
        container["command"] = json!(d.entrypoint);
    }
    if !env.is_empty() {
        container["env"] = json!(env);
    }
    if !d.ports.is_empty() {
        container["ports"] = d
            .ports
            .iter()
            .map(|p| {
                let mut port = json!({"containerPort": p.container, "protocol": "TCP"});
                if p.host != 0 {
                    port["hostPort"] = json!(p.host);
                }
                port
            })
            .collect();
    }
    if let Some(mem) = d.memory_bytes {
        container["resources"] = json!({"limits": {"memory": mem.to_string()}});
    }
    if d.read_only_rootfs {
        container["securityContext"] = json!({"readOnlyRootFilesystem": true});
    }
    let labels = json!({
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/managed-by": "gcr",
    });
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"restartPolicy": "Never", "containers": [container]},
    });
    // The digest as a comment: podman kube play refuses annotation values over 63 bytes.
    let mut text = format!("# ll.minicontainer.v1 manifest {digest}\n");
    let mut notes = Vec::new();
    if !artifacts.is_empty() {
        let data: serde_json::Map<String, Value> = artifacts
            .iter()
            .map(|a| (a.to_string(), json!(PLACEHOLDER)))
            .collect();
        let secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret_name, "labels": labels},
            "type": "Opaque",
            "stringData": data,
        });
        text.push_str(&yaml(&secret));
        text.push_str("---\n");
        notes.push(format!(
            "Secret {secret_name} holds the placeholder {PLACEHOLDER} for {}: replace it with each artifact's value before applying (the plan never holds secret values)",
            artifacts.join(", ")
        ));
    }
    text.push_str(&yaml(&pod));
    Plan { text, notes }
}

/// `v` as block-style YAML; every string is double-quoted (JSON escapes are YAML's).
pub fn yaml(v: &Value) -> String {
    let mut out = String::new();
    emit(v, 0, &mut out);
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()),
        Value::Object(o) if o.is_empty() => "{}".into(),
        Value::Array(a) if a.is_empty() => "[]".into(),
        other => other.to_string(),
    }
}

fn is_block(v: &Value) -> bool {
    matches!(v, Value::Object(o) if !o.is_empty()) || matches!(v, Value::Array(a) if !a.is_empty())
}

fn emit(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(o) if !o.is_empty() => {
            for (k, val) in o {
                let plain = !k.is_empty()
                    && k.as_bytes()[0].is_ascii_alphabetic()
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_./-".contains(&b));
                let key = if plain {
                    k.clone()
                } else {
                    scalar(&Value::String(k.clone()))
                };
                if is_block(val) {
                    let _ = writeln!(out, "{pad}{key}:");
                    emit(val, indent + 2, out);
                } else {
                    let _ = writeln!(out, "{pad}{key}: {}", scalar(val));
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for val in a {
                if is_block(val) {
                    // The first line of the block goes after the dash.
                    let mut inner = String::new();
                    emit(val, indent + 2, &mut inner);
                    let rest = inner.get(indent + 2..).unwrap_or("");
                    let _ = write!(out, "{pad}- {rest}");
                } else {
                    let _ = writeln!(out, "{pad}- {}", scalar(val));
                }
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{}", scalar(other));
        }
    }
}

impl Engine {
    /// `gcr manifest plan FILE --target T`.
    pub fn manifest_plan(
        &self,
        path: &Path,
        target: PlanTarget,
        key: Option<&str>,
        name: Option<&str>,
    ) -> Result<Plan, McError> {
        let l = load(path)?;
        let report = self.manifest_check(&l, key)?;
        let m = &l.manifest;
        let name = name.map_or_else(|| m.deploy_name(), str::to_string);
        let mut plan = match target {
            PlanTarget::Gcr => plan_gcr(m, &name, &report.digest),
            PlanTarget::Podman => plan_podman(m, &name, &report.digest),
            PlanTarget::Kubernetes => plan_kubernetes(
                m,
                &gcr_trust::minicontainer::dns_label(&name),
                &report.digest,
            ),
        };
        if !report.trusted {
            plan.notes.push(format!(
                "the signer (key id {}) is not a key of this store; `gcr manifest apply` will refuse it until it is imported",
                report.key_id
            ));
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_nests_maps_and_lists() {
        let v = json!({"a": {"b": [1, {"c": "x\"y", "d": []}], "e": {}}, "f": true});
        assert_eq!(
            yaml(&v),
            "a:\n  b:\n    - 1\n    - c: \"x\\\"y\"\n      d: []\n  e: {}\nf: true\n"
        );
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("a=b"), "a=b");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
    }
}
