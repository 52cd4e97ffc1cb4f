//! The run policy (`<root>/run-policy.json`): what may run, and how. gcr's own format,
//! strictly parsed, deny-by-default: `registries` is mandatory (`"*"` for any, `"local"`
//! for images built, imported or loaded here); every privilege not granted is refused
//! (`privileged`, `capAdd`, `hostNetwork`, `hostNamespaces` for the host's pid, ipc or uts
//! namespace, `bindMounts`, `devices` for host device nodes); `readOnlyRootfs` and `nonRoot`
//! require them; `memory`, `cpus` and `pids` are ceilings, and a container that sets no
//! limit gets the ceiling (Kubernetes LimitRange style: written into its stored config).
//! `signers` (key ids or stored key names) requires a verified signature by one of them.

use serde::{Deserialize, Deserializer, Serialize};

use super::{parse_json, PolicyError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RunDoc {
    registries: Vec<String>,
    #[serde(default)]
    signers: Vec<String>,
    #[serde(default)]
    privileged: bool,
    #[serde(default)]
    cap_add: Vec<String>,
    #[serde(default)]
    host_network: bool,
    #[serde(default)]
    host_namespaces: bool,
    #[serde(default)]
    bind_mounts: Vec<String>,
    #[serde(default)]
    devices: Vec<String>,
    #[serde(default)]
    read_only_rootfs: bool,
    #[serde(default)]
    non_root: bool,
    #[serde(default, deserialize_with = "size")]
    memory: Option<u64>,
    #[serde(default)]
    cpus: Option<f64>,
    #[serde(default)]
    pids: Option<i64>,
}

/// A size: a number of bytes, or a string with a b/k/m/g suffix (powers of 1024).
fn size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum S {
        N(u64),
        T(String),
    }
    let s = S::deserialize(d)?;
    let bad = || serde::de::Error::custom("memory: expected bytes or a size like \"512m\"");
    Ok(Some(match s {
        S::N(n) => n,
        S::T(t) => {
            let t = t.trim().to_ascii_lowercase();
            let (num, mul) = match t.char_indices().last() {
                Some((i, 'b')) => (&t[..i], 1),
                Some((i, 'k')) => (&t[..i], 1 << 10),
                Some((i, 'm')) => (&t[..i], 1 << 20),
                Some((i, 'g')) => (&t[..i], 1 << 30),
                _ => (t.as_str(), 1),
            };
            num.parse::<u64>()
                .ok()
                .and_then(|n| n.checked_mul(mul))
                .ok_or_else(bad)?
        }
    }))
}

/// A compiled run policy.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunPolicy {
    pub registries: Vec<String>,
    /// As written: key ids or key names (the engine resolves names).
    pub signers: Vec<String>,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub host_network: bool,
    /// `--pid`, `--ipc` or `--uts host` allowed.
    pub host_namespaces: bool,
    pub bind_mounts: Vec<String>,
    /// Host device paths `--device` may give (`"*"` for any).
    pub devices: Vec<String>,
    pub read_only_rootfs: bool,
    pub non_root: bool,
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
}

/// What a container asks for.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// The image's registry (`host[:port]`), or `local`.
    pub registry: String,
    /// Key ids that verified signatures of the image (filled only when `signers` is set).
    pub signers: Vec<String>,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub host_network: bool,
    /// The host namespaces asked for (`pid`, `ipc`, `uts`).
    pub host_namespaces: Vec<String>,
    /// Host device paths (`--device`).
    pub devices: Vec<String>,
    /// Bind sources: as given, and resolved (None when they cannot be).
    pub binds: Vec<(String, Option<std::path::PathBuf>)>,
    pub read_only: bool,
    /// The resolved uid (filled only when `nonRoot` is set).
    pub uid: Option<u32>,
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
}

/// A refusal: the rule (`runPolicy.<key>`) and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deny {
    pub rule: String,
    pub reason: String,
}

/// Limits the policy fills in for a container that set none.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Defaults {
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
}

fn deny(key: &str, reason: String) -> Result<Defaults, Deny> {
    Err(Deny {
        rule: format!("runPolicy.{key}"),
        reason,
    })
}

fn cap_name(c: &str) -> String {
    let u = c.trim().to_ascii_uppercase();
    u.strip_prefix("CAP_").map(str::to_string).unwrap_or(u)
}

impl RunPolicy {
    pub fn parse(file: &str, bytes: &[u8]) -> Result<RunPolicy, PolicyError> {
        let d: RunDoc = parse_json(file, bytes)?;
        let invalid = |msg: String| PolicyError::Invalid {
            file: file.to_string(),
            msg,
        };
        if let Some(c) = d.cpus {
            if !(c.is_finite() && c > 0.0) {
                return Err(invalid(format!("cpus {c} is not a positive number")));
            }
        }
        if d.pids.is_some_and(|p| p <= 0) || d.memory == Some(0) {
            return Err(invalid("memory and pids ceilings must be positive".into()));
        }
        for b in &d.bind_mounts {
            if !b.starts_with('/') {
                return Err(invalid(format!(
                    "bindMounts entry '{b}' is not an absolute path"
                )));
            }
        }
        Ok(RunPolicy {
            registries: d.registries,
            signers: d.signers,
            privileged: d.privileged,
            cap_add: d.cap_add.iter().map(|c| cap_name(c)).collect(),
            host_network: d.host_network,
            host_namespaces: d.host_namespaces,
            bind_mounts: d.bind_mounts,
            devices: d.devices,
            read_only_rootfs: d.read_only_rootfs,
            non_root: d.non_root,
            memory: d.memory,
            cpus: d.cpus,
            pids: d.pids,
        })
    }

    /// Checks `req`; on success, the limits to apply to a container that set none.
    /// `signer_ids` are the policy's signers resolved to key ids.
    pub fn evaluate(&self, req: &RunRequest, signer_ids: &[String]) -> Result<Defaults, Deny> {
        if !self
            .registries
            .iter()
            .any(|r| r == "*" || *r == req.registry)
        {
            return deny(
                "registries",
                format!(
                    "images from '{}' may not run; allowed: {}",
                    req.registry,
                    self.registries.join(", ")
                ),
            );
        }
        if !signer_ids.is_empty() && !req.signers.iter().any(|s| signer_ids.contains(s)) {
            return deny(
                "signers",
                format!(
                    "the image carries no verified signature by a required signer ({})",
                    self.signers.join(", ")
                ),
            );
        }
        if req.privileged && !self.privileged {
            return deny(
                "privileged",
                "--privileged (all capabilities and devices) is not allowed".into(),
            );
        }
        for c in &req.cap_add {
            let n = cap_name(c);
            if !self.cap_add.iter().any(|a| *a == n || a == "ALL") {
                return deny(
                    "capAdd",
                    format!("--cap-add {n} is not in the allowed list"),
                );
            }
        }
        if req.host_network && !self.host_network {
            return deny("hostNetwork", "--network host is not allowed".into());
        }
        if let Some(ns) = req
            .host_namespaces
            .first()
            .filter(|_| !self.host_namespaces)
        {
            return deny(
                "hostNamespaces",
                format!("--{ns} host (the host's {ns} namespace) is not allowed"),
            );
        }
        for d in &req.devices {
            if !self.devices.iter().any(|a| a == "*" || a == d) {
                return deny(
                    "devices",
                    format!("--device {d} is not in the allowed list"),
                );
            }
        }
        for (given, resolved) in &req.binds {
            let Some(path) = resolved else {
                return deny(
                    "bindMounts",
                    format!("bind source {given} does not resolve to an existing path"),
                );
            };
            let ok = self.bind_mounts.iter().any(|p| {
                let allowed = std::fs::canonicalize(p).unwrap_or_else(|_| p.into());
                path.starts_with(&allowed)
            });
            if !ok {
                return deny(
                    "bindMounts",
                    format!(
                        "bind source {} is not under an allowed path",
                        path.display()
                    ),
                );
            }
        }
        if self.read_only_rootfs && !req.read_only {
            return deny(
                "readOnlyRootfs",
                "the root filesystem must be read-only; add --read-only".into(),
            );
        }
        if self.non_root && req.uid.unwrap_or(0) == 0 {
            return deny(
                "nonRoot",
                "the container would run as root (uid 0); give --user with a non-zero uid".into(),
            );
        }
        let mut d = Defaults::default();
        if let Some(max) = self.memory {
            match req.memory {
                Some(m) if m > max => {
                    return deny(
                        "memory",
                        format!("--memory {m} bytes is above the ceiling of {max} bytes"),
                    )
                }
                Some(_) => {}
                None => d.memory = Some(max),
            }
        }
        if let Some(max) = self.cpus {
            match req.cpus {
                Some(c) if c > max => {
                    return deny("cpus", format!("--cpus {c} is above the ceiling of {max}"))
                }
                Some(_) => {}
                None => d.cpus = Some(max),
            }
        }
        if let Some(max) = self.pids {
            match req.pids {
                Some(p) if p > max || p <= 0 => {
                    return deny(
                        "pids",
                        format!("--pids-limit {p} is above the ceiling of {max}"),
                    )
                }
                Some(_) => {}
                None => d.pids = Some(max),
            }
        }
        Ok(d)
    }
}
