//! The typed reading of a manifest document: each object is read through [`Obj`], which
//! names the path of every field it reads and refuses keys the seed does not define, wrong
//! types and missing required fields.

use serde_json::{Map, Value};

use super::error::McError;
use super::*;

/// Longest string accepted in any field.
const MAX_STRING: usize = 8192;
/// Most entries accepted in any array or map.
const MAX_ENTRIES: usize = 256;

/// One JSON object being read, at `path`.
struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
    known: &'static [&'static str],
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn as_obj<'a>(
    path: String,
    v: &'a Value,
    known: &'static [&'static str],
) -> Result<Obj<'a>, McError> {
    let Value::Object(map) = v else {
        return Err(McError::schema(path, "must be a JSON object"));
    };
    if let Some(k) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(McError::schema(
            join(&path, k),
            format!(
                "is not a field of ll.minicontainer.v1 here; the fields are {}",
                known.join(", ")
            ),
        ));
    }
    Ok(Obj { path, map, known })
}

fn string(path: &str, v: &Value) -> Result<String, McError> {
    match v {
        Value::String(s) if s.len() > MAX_STRING => Err(McError::schema(
            path,
            format!("is longer than {MAX_STRING} bytes"),
        )),
        Value::String(s) if s.contains('\0') => {
            Err(McError::schema(path, "contains a NUL character"))
        }
        Value::String(s) => Ok(s.clone()),
        _ => Err(McError::schema(path, "must be a string")),
    }
}

fn array<'a>(path: &str, v: &'a Value) -> Result<&'a Vec<Value>, McError> {
    match v {
        Value::Array(a) if a.len() > MAX_ENTRIES => Err(McError::schema(
            path,
            format!("has more than {MAX_ENTRIES} entries"),
        )),
        Value::Array(a) => Ok(a),
        _ => Err(McError::schema(path, "must be an array")),
    }
}

impl<'a> Obj<'a> {
    fn at(&self, key: &str) -> String {
        debug_assert!(self.known.contains(&key));
        join(&self.path, key)
    }

    fn get(&self, key: &str) -> Result<&'a Value, McError> {
        self.map
            .get(key)
            .ok_or_else(|| McError::schema(self.at(key), "is required"))
    }

    fn str(&self, key: &str) -> Result<String, McError> {
        string(&self.at(key), self.get(key)?)
    }

    fn opt_str(&self, key: &str) -> Result<Option<String>, McError> {
        self.map
            .get(key)
            .map(|v| string(&self.at(key), v))
            .transpose()
    }

    fn obj(&self, key: &str, known: &'static [&'static str]) -> Result<Obj<'a>, McError> {
        as_obj(self.at(key), self.get(key)?, known)
    }

    fn opt_obj(
        &self,
        key: &str,
        known: &'static [&'static str],
    ) -> Result<Option<Obj<'a>>, McError> {
        self.map
            .get(key)
            .map(|v| as_obj(self.at(key), v, known))
            .transpose()
    }

    /// The entries of array `key` (empty when absent), each with its path.
    fn list(&self, key: &str) -> Result<Vec<(String, &'a Value)>, McError> {
        let Some(v) = self.map.get(key) else {
            return Ok(Vec::new());
        };
        let path = self.at(key);
        Ok(array(&path, v)?
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{path}[{i}]"), v))
            .collect())
    }

    fn strings(&self, key: &str, required: bool) -> Result<Vec<String>, McError> {
        if required {
            self.get(key)?;
        }
        self.list(key)?
            .into_iter()
            .map(|(p, v)| string(&p, v))
            .collect()
    }

    fn uint(&self, key: &str, max: u64) -> Result<Option<u64>, McError> {
        let Some(v) = self.map.get(key) else {
            return Ok(None);
        };
        match v.as_u64() {
            Some(n) if n <= max => Ok(Some(n)),
            _ => Err(McError::schema(
                self.at(key),
                format!("must be an integer from 0 to {max}"),
            )),
        }
    }
}

/// Reads the whole document.
pub(super) fn manifest(doc: Value) -> Result<Manifest, McError> {
    const TOP: &[&str] = &[
        "type",
        "version",
        "owner",
        "slots",
        "artifacts",
        "grants",
        "deploy",
        "ledger_refs",
        "ts",
        "provenance",
    ];
    let o = as_obj(String::new(), &doc, TOP)?;
    let ty = o.str("type")?;
    if ty != MANIFEST_TYPE {
        return Err(McError::schema(
            "type",
            format!("is '{ty}'; gcr reads '{MANIFEST_TYPE}' manifests"),
        ));
    }
    let owner = o.obj("owner", &["user_id", "tenant"])?;
    let owner = Owner {
        user_id: owner.str("user_id")?,
        tenant: owner.str("tenant")?,
    };
    let slots = match o.opt_obj("slots", &["signing", "api", "crypto"])? {
        Some(s) => read_slots(&s)?,
        None => Slots::default(),
    };
    let artifacts = o
        .list("artifacts")?
        .into_iter()
        .map(|(p, v)| {
            let a = as_obj(p, v, &["id", "type", "hash", "enc"])?;
            Ok(Artifact {
                id: a.str("id")?,
                kind: a.str("type")?,
                hash: a.str("hash")?,
                enc: a.str("enc")?,
            })
        })
        .collect::<Result<_, McError>>()?;
    let grants = o
        .list("grants")?
        .into_iter()
        .map(|(p, v)| {
            let g = as_obj(p, v, &["id", "artifact_id", "scope", "ttl", "aud", "sig"])?;
            Ok(Grant {
                id: g.str("id")?,
                artifact_id: g.str("artifact_id")?,
                scope: g.strings("scope", true)?,
                ttl: g.str("ttl")?,
                aud: g.str("aud")?,
                sig: g.opt_str("sig")?,
            })
        })
        .collect::<Result<_, McError>>()?;
    let deploy = read_deploy(&o)?;
    let provenance = o
        .opt_obj("provenance", &["kid", "alg", "sig"])?
        .map(|p| {
            Ok::<_, McError>(Provenance {
                kid: p.str("kid")?,
                alg: p.str("alg")?,
                sig: p.str("sig")?,
            })
        })
        .transpose()?;
    Ok(Manifest {
        version: o.str("version")?,
        owner,
        slots,
        artifacts,
        grants,
        deploy,
        ledger_refs: o.strings("ledger_refs", false)?,
        ts: o.str("ts")?,
        provenance,
        doc,
    })
}

fn read_slots(s: &Obj) -> Result<Slots, McError> {
    let signing = s
        .list("signing")?
        .into_iter()
        .map(|(p, v)| {
            let k = as_obj(p, v, &["kid", "pub", "status"])?;
            Ok(SigningSlot {
                kid: k.str("kid")?,
                pub_hex: k.str("pub")?,
                status: k.str("status")?,
            })
        })
        .collect::<Result<_, McError>>()?;
    let api = s
        .list("api")?
        .into_iter()
        .map(|(p, v)| {
            let k = as_obj(p, v, &["token_id", "scopes", "status"])?;
            Ok(ApiSlot {
                token_id: k.str("token_id")?,
                scopes: k.strings("scopes", true)?,
                status: k.str("status")?,
            })
        })
        .collect::<Result<_, McError>>()?;
    let crypto = s
        .list("crypto")?
        .into_iter()
        .map(|(p, v)| {
            let k = as_obj(p, v, &["kid", "alg", "status"])?;
            Ok(CryptoSlot {
                kid: k.str("kid")?,
                alg: k.str("alg")?,
                status: k.str("status")?,
            })
        })
        .collect::<Result<_, McError>>()?;
    Ok(Slots {
        signing,
        api,
        crypto,
    })
}

fn read_deploy(top: &Obj) -> Result<Deploy, McError> {
    let d = top.obj(
        "deploy",
        &[
            "engine",
            "image",
            "entrypoint",
            "env",
            "ports",
            "resources",
            "security",
            "targets",
        ],
    )?;
    let mut env = Vec::new();
    if let Some(e) = d.map.get("env") {
        let path = d.at("env");
        let Value::Object(map) = e else {
            return Err(McError::schema(path, "must be an object of strings"));
        };
        if map.len() > MAX_ENTRIES {
            return Err(McError::schema(
                path,
                format!("has more than {MAX_ENTRIES} variables"),
            ));
        }
        for (k, v) in map {
            env.push((k.clone(), string(&join(&path, k), v)?));
        }
    }
    let ports = d
        .list("ports")?
        .into_iter()
        .map(|(p, v)| {
            let o = as_obj(p, v, &["host", "container"])?;
            let container = o
                .uint("container", 65535)?
                .ok_or_else(|| McError::schema(o.at("container"), "is required"))?;
            Ok(Port {
                host: o.uint("host", 65535)?.unwrap_or(0) as u16,
                container: container as u16,
            })
        })
        .collect::<Result<_, McError>>()?;
    let memory_bytes = match d.opt_obj("resources", &["memory_bytes"])? {
        Some(r) => r.uint("memory_bytes", u64::MAX)?,
        None => None,
    };
    let read_only_rootfs = match d.opt_obj("security", &["read_only_rootfs"])? {
        Some(s) => match s.map.get("read_only_rootfs") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(McError::schema(
                    s.at("read_only_rootfs"),
                    "must be true or false",
                ))
            }
        },
        None => false,
    };
    let targets = d
        .list("targets")?
        .into_iter()
        .map(|(p, v)| {
            let t = as_obj(p, v, &["provider", "project_id", "service"])?;
            Ok(Target {
                provider: t.str("provider")?,
                project_id: t.opt_str("project_id")?,
                service: t.opt_str("service")?,
            })
        })
        .collect::<Result<_, McError>>()?;
    Ok(Deploy {
        engine: d.str("engine")?,
        image: d.str("image")?,
        entrypoint: d.strings("entrypoint", false)?,
        env,
        ports,
        memory_bytes,
        read_only_rootfs,
        targets,
    })
}
