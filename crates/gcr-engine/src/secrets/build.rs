//! Build secrets: `build.secrets` in the spec and `gcr build --secret id=ID,src=FILE|env=VAR`
//! (BuildKit's flag). Each declared id gets its value from a flag, else from the stored
//! secret its `source:` names; the values stay in this process (wiped when dropped) and
//! the build runner mounts them at `/run/secrets/<id>` during each command step, on the
//! same read-only tmpfs as `run --secret`. gcr-build sees only ids and, for the cache key,
//! a BLAKE3 digest keyed with (a key derived from) the store's secrets key: a new value
//! reruns the steps, and the digest tells nothing about a low-entropy value. Layers, the
//! transcript and the provenance hold ids only, so the image digest does not depend on a
//! value the steps do not write into the image.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use zeroize::Zeroizing;

use crate::{Engine, EngineError};

/// Where a `--secret` flag of `gcr build` takes its value from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildSecretSource {
    File(String),
    Env(String),
}

/// The values and cache-key digests of a build's secrets, by id.
#[derive(Default)]
pub struct BuildSecrets {
    pub values: BTreeMap<String, Zeroizing<Vec<u8>>>,
    pub digests: BTreeMap<String, String>,
}

fn bad(flag: &str, why: &str) -> EngineError {
    EngineError::Usage(format!(
        "invalid --secret '{flag}': {why}; use --secret id=ID,src=FILE or --secret id=ID,env=VAR"
    ))
}

/// Parses `id=ID,src=FILE` / `id=ID,env=VAR` (`source=`, `type=file|env` as BuildKit).
pub fn parse_build_secret_flag(flag: &str) -> Result<(String, BuildSecretSource), EngineError> {
    let (mut id, mut src, mut env, mut typ) = (None, None, None, None);
    for field in flag.split(',') {
        let Some((k, v)) = field.split_once('=') else {
            return Err(bad(flag, &format!("'{field}' is not KEY=VALUE")));
        };
        match k {
            "id" => id = Some(v.to_string()),
            "src" | "source" => src = Some(v.to_string()),
            "env" => env = Some(v.to_string()),
            "type" if v == "file" || v == "env" => typ = Some(v.to_string()),
            "type" => return Err(bad(flag, &format!("type '{v}' is not file or env"))),
            _ => return Err(bad(flag, &format!("unknown key '{k}'"))),
        }
    }
    let id = id.ok_or_else(|| bad(flag, "it has no id="))?;
    if !super::valid_name(&id) {
        return Err(bad(flag, &format!("'{id}' is not a valid secret id")));
    }
    let source = match (src, env, typ.as_deref()) {
        (Some(s), None, None | Some("file")) if !s.is_empty() => BuildSecretSource::File(s),
        (None, Some(e), None | Some("env")) if !e.is_empty() => BuildSecretSource::Env(e),
        (Some(s), None, Some("env")) if !s.is_empty() => BuildSecretSource::Env(s),
        (None, None, _) => return Err(bad(flag, "it says neither src= nor env=")),
        _ => return Err(bad(flag, "give one of src= or env=")),
    };
    Ok((id, source))
}

fn read_source(id: &str, source: &BuildSecretSource) -> Result<Zeroizing<Vec<u8>>, EngineError> {
    match source {
        BuildSecretSource::Env(var) => std::env::var_os(var)
            .map(|v| Zeroizing::new(v.into_encoded_bytes()))
            .ok_or_else(|| {
                EngineError::Usage(format!(
                    "build secret '{id}': the environment variable {var} is not set; export it or use src=FILE"
                ))
            }),
        BuildSecretSource::File(path) => {
            let mut buf = Zeroizing::new(Vec::new());
            std::fs::File::open(path)
                .and_then(|f| f.take(super::MAX_SECRET as u64 + 1).read_to_end(&mut buf))
                .map_err(|e| {
                    EngineError::Usage(format!(
                        "build secret '{id}': cannot read {path}: {e}; give a readable file"
                    ))
                })?;
            if buf.len() > super::MAX_SECRET {
                return Err(EngineError::Usage(format!(
                    "build secret '{id}': {path} is larger than the 500 KiB a secret may hold"
                )));
            }
            Ok(buf)
        }
    }
}

impl Engine {
    /// The secrets of a Dockerfile build: every `--secret` flag's value (a Dockerfile asks
    /// for them with `RUN --mount=type=secret,id=ID`). Nothing is opened without flags.
    pub fn dockerfile_secrets(&self, flags: &[String]) -> Result<BuildSecrets, EngineError> {
        let mut out = BuildSecrets::default();
        if flags.is_empty() {
            return Ok(out);
        }
        let key = self.secrets_key()?;
        for f in flags {
            let (id, src) = parse_build_secret_flag(f)?;
            if out.values.contains_key(&id) {
                return Err(bad(f, &format!("the id '{id}' is given twice")));
            }
            let value = read_source(&id, &src)?;
            out.digests
                .insert(id.clone(), key.keyed_digest("build-secret", &value));
            out.values.insert(id, value);
        }
        Ok(out)
    }

    /// The secrets of a build of `spec_file`, from the `--secret` flags and the spec's
    /// `build.secrets`. Nothing is opened (not even the key) when neither names any.
    pub fn build_secrets(
        &self,
        spec_file: &Path,
        flags: &[String],
    ) -> Result<BuildSecrets, EngineError> {
        let mut given: BTreeMap<String, BuildSecretSource> = BTreeMap::new();
        for f in flags {
            let (id, src) = parse_build_secret_flag(f)?;
            if given.insert(id.clone(), src).is_some() {
                return Err(bad(f, &format!("the id '{id}' is given twice")));
            }
        }
        let name = spec_file.display().to_string();
        // A spec that does not parse is reported by the build itself.
        let declared = std::fs::read(spec_file)
            .ok()
            .and_then(|b| gcr_core::spec::parse_spec_bytes(&name, &b).ok())
            .map(|s| s.build.secrets)
            .unwrap_or_default();
        if let Some(id) = given
            .keys()
            .find(|id| !declared.iter().any(|d| &d.id == *id))
        {
            return Err(EngineError::Usage(format!(
                "--secret id={id}: the spec {name} declares no build secret '{id}'; add it under build.secrets"
            )));
        }
        let mut out = BuildSecrets::default();
        if declared.is_empty() {
            return Ok(out);
        }
        let key = self.secrets_key()?;
        for d in &declared {
            let value = match (given.get(&d.id), &d.source) {
                (Some(src), _) => read_source(&d.id, src)?,
                (None, Some(stored)) => self.secret_value(&key, stored)?,
                (None, None) => {
                    return Err(EngineError::Usage(format!(
                        "build secret '{0}' has no value; give it with `gcr build --secret id={0},src=FILE` (or env=VAR), or name a stored secret with `source:` in build.secrets",
                        d.id
                    )))
                }
            };
            out.digests
                .insert(d.id.clone(), key.keyed_digest("build-secret", &value));
            out.values.insert(d.id.clone(), value);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_secret_flags_parse_as_buildkit() {
        assert_eq!(
            parse_build_secret_flag("id=npm,src=/x/.npmrc").unwrap(),
            ("npm".into(), BuildSecretSource::File("/x/.npmrc".into()))
        );
        assert_eq!(
            parse_build_secret_flag("id=tok,env=TOKEN").unwrap(),
            ("tok".into(), BuildSecretSource::Env("TOKEN".into()))
        );
        assert_eq!(
            parse_build_secret_flag("type=env,id=tok,source=TOKEN").unwrap(),
            ("tok".into(), BuildSecretSource::Env("TOKEN".into()))
        );
        for bad in [
            "src=x",
            "id=a",
            "id=a,src=x,env=Y",
            "id=a,src=",
            "id=a b,src=x",
            "id=a,type=ssh,src=x",
            "id=a,mode=1,src=x",
            "npm",
        ] {
            assert!(
                matches!(parse_build_secret_flag(bad), Err(EngineError::Usage(_))),
                "{bad}"
            );
        }
    }
}
