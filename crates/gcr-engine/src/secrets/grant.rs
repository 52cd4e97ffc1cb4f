//! Secrets granted to a container: the `--secret` flag (Docker/Swarm's syntax), the
//! `grant://NAME` environment values, and their materialization at each launch.
//!
//! The stored configuration keeps the flags as given (`--secret db,mode=0400`,
//! `PASS=grant://db`): inspect, ps, events, logs and the database only ever see names. At
//! each launch (run, start, restart) the values are opened in memory and handed to the
//! runtime: files as [`gcr_runtime::SecretFile`]s (a tmpfs on `/run/secrets` in the
//! container's mount namespace), environment values in the in-memory spec only. Both are
//! wiped from this process once the container is started.

use std::path::PathBuf;

use gcr_trust::SecretsKey;
use zeroize::{Zeroize, Zeroizing};

use crate::{Engine, EngineError};

/// The prefix of an environment value that names a secret.
pub const GRANT_SCHEME: &str = "grant://";

/// One `--secret` flag, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub source: String,
    /// Absolute path in the container.
    pub target: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

fn bad(flag: &str, why: &str) -> EngineError {
    EngineError::Usage(format!(
        "invalid --secret '{flag}': {why}; use --secret NAME or --secret source=NAME[,target=PATH][,uid=N][,gid=N][,mode=0444]"
    ))
}

/// A number as Docker's CLI reads it (strconv.ParseUint base 0): `0400` and `0o400` are
/// octal, `0x` hex, else decimal.
fn parse_uint(v: &str) -> Option<u32> {
    if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()
    } else if let Some(o) = v.strip_prefix("0o").or_else(|| v.strip_prefix("0O")) {
        u32::from_str_radix(o, 8).ok()
    } else if v.len() > 1 && v.starts_with('0') {
        u32::from_str_radix(&v[1..], 8).ok()
    } else {
        v.parse().ok()
    }
}

/// Parses `NAME` or `source=NAME,target=…,uid=…,gid=…,mode=…` (`src=` too).
pub fn parse_secret_flag(flag: &str) -> Result<SecretRef, EngineError> {
    let mut source = None;
    let mut target = None;
    let (mut uid, mut gid, mut mode) = (0, 0, 0o444);
    for (i, field) in flag.split(',').enumerate() {
        let Some((k, v)) = field.split_once('=') else {
            if i == 0 && !field.is_empty() {
                source = Some(field.to_string());
                continue;
            }
            return Err(bad(flag, &format!("'{field}' is not KEY=VALUE")));
        };
        let num = || parse_uint(v).ok_or_else(|| bad(flag, &format!("{k} '{v}' is not a number")));
        match k.to_ascii_lowercase().as_str() {
            "source" | "src" => source = Some(v.to_string()),
            "target" => target = Some(v.to_string()),
            "uid" => uid = num()?,
            "gid" => gid = num()?,
            "mode" => {
                mode = num()?;
                if mode > 0o7777 {
                    return Err(bad(flag, &format!("mode '{v}' is not a file mode")));
                }
            }
            _ => return Err(bad(flag, &format!("unknown key '{k}'"))),
        }
    }
    let source = source.ok_or_else(|| bad(flag, "it names no secret"))?;
    if !super::valid_name(&source) {
        return Err(bad(flag, &format!("'{source}' is not a valid secret name")));
    }
    let target = target.unwrap_or_else(|| source.clone());
    if target.is_empty() || target.split('/').any(|c| c == "..") || target.contains('\0') {
        return Err(bad(
            flag,
            &format!("target '{target}' must be a path without '..'"),
        ));
    }
    let target = if target.starts_with('/') {
        PathBuf::from(target)
    } else {
        PathBuf::from("/run/secrets").join(target)
    };
    if target == std::path::Path::new("/run/secrets") || target == std::path::Path::new("/") {
        return Err(bad(flag, "the target must name a file"));
    }
    Ok(SecretRef {
        source,
        target,
        uid,
        gid,
        mode,
    })
}

/// The secret named by an environment entry `VAR=grant://NAME`, if it is one.
pub fn env_grant(entry: &str) -> Option<&str> {
    entry.split_once('=')?.1.strip_prefix(GRANT_SCHEME)
}

/// Checks the flags and that every secret they name exists; nothing is opened.
pub(crate) fn check(
    engine: &Engine,
    secrets: &[String],
    env: &[String],
) -> Result<(), EngineError> {
    let refs = secrets
        .iter()
        .map(|s| parse_secret_flag(s))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, r) in refs.iter().enumerate() {
        if refs[..i].iter().any(|o| o.target == r.target) {
            return Err(EngineError::Usage(format!(
                "two --secret flags have the target {}; give one a different target=",
                r.target.display()
            )));
        }
    }
    let grants: Vec<&str> = env.iter().filter_map(|e| env_grant(e)).collect();
    for g in &grants {
        if !super::valid_name(g) {
            return Err(EngineError::Usage(format!(
                "invalid secret name '{g}' in an environment value {GRANT_SCHEME}{g}; use a secret name from `gcr secret ls`"
            )));
        }
    }
    if refs.is_empty() && grants.is_empty() {
        return Ok(());
    }
    engine.secrets_exist(refs.iter().map(|r| r.source.as_str()).chain(grants))
}

/// Replaces each `VAR=grant://NAME` in `env` with `VAR=<value>`. The caller wipes `env`
/// (see [`wipe_env`]) once the process has it.
pub(crate) fn fill_env(
    engine: &Engine,
    key: &mut Option<SecretsKey>,
    env: &mut [String],
) -> Result<(), EngineError> {
    for e in env.iter_mut() {
        let Some((var, name)) = e.split_once('=').and_then(|(v, rest)| {
            rest.strip_prefix(GRANT_SCHEME)
                .map(|n| (v.to_string(), n.to_string()))
        }) else {
            continue;
        };
        let k = match key {
            Some(k) => k,
            None => key.insert(engine.secrets_key()?),
        };
        let value = engine.secret_value(k, &name)?;
        let text = std::str::from_utf8(&value)
            .ok()
            .filter(|t| !t.contains('\0'))
            .ok_or_else(|| {
                EngineError::Usage(format!(
                    "secret '{name}' is not text without NUL bytes, so it cannot be the value of {var}; mount it as a file with --secret {name}"
                ))
            })?;
        let mut filled = Zeroizing::new(String::with_capacity(var.len() + 1 + text.len()));
        filled.push_str(&var);
        filled.push('=');
        filled.push_str(text);
        std::mem::swap(e, &mut *filled);
    }
    Ok(())
}

/// Wipes every entry of `env` (an environment that held secret values).
pub(crate) fn wipe_env(env: &mut [String]) {
    for e in env.iter_mut() {
        e.zeroize();
    }
}

/// Opens the secrets named by `--secret` flags as runtime files.
pub(crate) fn files(
    engine: &Engine,
    key: &mut Option<SecretsKey>,
    flags: &[String],
) -> Result<Vec<gcr_runtime::SecretFile>, EngineError> {
    let mut files = Vec::with_capacity(flags.len());
    for f in flags {
        let r = parse_secret_flag(f)?;
        let k = match key {
            Some(k) => k,
            None => key.insert(engine.secrets_key()?),
        };
        files.push(gcr_runtime::SecretFile {
            data: engine.secret_value(k, &r.source)?,
            target: r.target,
            uid: r.uid,
            gid: r.gid,
            mode: r.mode,
        });
    }
    Ok(files)
}

/// Wipes the process environment of a spec that may hold secret values.
pub(crate) fn wipe_spec_env(spec: &mut oci_spec::runtime::Spec) {
    if let Some(env) = spec
        .process_mut()
        .as_mut()
        .and_then(|p| p.env_mut().as_mut())
    {
        wipe_env(env);
    }
}

impl Engine {
    /// The secrets a launch of `cfg` hands to the runtime: the `--secret` files, and the
    /// spec's environment with each `grant://NAME` replaced by its value (in memory only).
    pub(crate) fn grant_secrets(
        &self,
        cfg: &crate::container::config::ContainerConfig,
        mut spec: oci_spec::runtime::Spec,
    ) -> Result<(oci_spec::runtime::Spec, Vec<gcr_runtime::SecretFile>), EngineError> {
        let mut key = None;
        let files = if cfg.opts.secrets.is_empty() {
            Vec::new()
        } else {
            files(self, &mut key, &cfg.opts.secrets)?
        };
        if cfg.resolved.env.iter().any(|e| env_grant(e).is_some()) {
            if let Some(env) = spec
                .process_mut()
                .as_mut()
                .and_then(|p| p.env_mut().as_mut())
            {
                if let Err(e) = fill_env(self, &mut key, env) {
                    wipe_env(env);
                    return Err(e);
                }
            }
        }
        Ok((spec, files))
    }
}

/// Names of the containers whose stored flags name the secret `name`.
pub(crate) fn containers_using(
    conn: &rusqlite::Connection,
    name: &str,
) -> Result<Vec<String>, EngineError> {
    let mut st = conn.prepare("SELECT name, config FROM containers")?;
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (cname, config) = row?;
        let Ok(cfg) = serde_json::from_str::<crate::container::config::ContainerConfig>(&config)
        else {
            continue;
        };
        let by_flag = cfg
            .opts
            .secrets
            .iter()
            .filter_map(|f| parse_secret_flag(f).ok())
            .any(|r| r.source == name);
        let by_env = cfg.opts.env.iter().any(|e| env_grant(e) == Some(name));
        if by_flag || by_env {
            out.push(cname);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_flags_parse_as_docker() {
        let r = parse_secret_flag("db").unwrap();
        assert_eq!(r.target, PathBuf::from("/run/secrets/db"));
        assert_eq!((r.uid, r.gid, r.mode), (0, 0, 0o444));
        let r = parse_secret_flag("source=db,target=pw,uid=1000,gid=100,mode=0400").unwrap();
        assert_eq!(r.source, "db");
        assert_eq!(r.target, PathBuf::from("/run/secrets/pw"));
        assert_eq!((r.uid, r.gid, r.mode), (1000, 100, 0o400));
        let r = parse_secret_flag("src=db,target=/etc/app/pw,mode=0o600").unwrap();
        assert_eq!(r.target, PathBuf::from("/etc/app/pw"));
        assert_eq!(r.mode, 0o600);
        assert_eq!(parse_secret_flag("db,mode=292").unwrap().mode, 0o444);
        for bad in [
            "",
            "target=x",
            "db,uid=x",
            "db,mode=077777",
            "db,colour=red",
            "db,target=../x",
            "db,target=/run/secrets",
            "-db",
            "db,,",
        ] {
            assert!(
                matches!(parse_secret_flag(bad), Err(EngineError::Usage(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn grant_values_are_recognized() {
        assert_eq!(env_grant("A=grant://db"), Some("db"));
        assert_eq!(env_grant("A=grant:/db"), None);
        assert_eq!(env_grant("grant://db"), None);
    }
}
