//! Credentials and challenges: Docker's `config.json` (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`; `auths.<host>.auth` = base64 `user:password`, written mode 0600
//! with every other key kept), and parsing of `WWW-Authenticate` challenges.

use crate::error::{RegistryError, Result};
use base64::Engine as _;
use serde_json::{Map, Value};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

/// A user name and password (or identity token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

impl Credentials {
    /// The `Authorization: Basic ...` header value.
    pub fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The path of Docker's client config file.
pub fn config_path() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("config.json");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".docker/config.json")
}

/// The key under `auths` for a registry host (Docker Hub keeps its historical URL).
pub fn auth_key(host: &str) -> String {
    if host == "docker.io" || host == "registry-1.docker.io" || host == "index.docker.io" {
        "https://index.docker.io/v1/".into()
    } else {
        host.to_string()
    }
}

/// Normalizes a key of `auths` to a bare host (`https://host/v1/` -> `host`).
fn key_host(k: &str) -> &str {
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    k.split('/').next().unwrap_or(k)
}

fn read_config() -> Result<Map<String, Value>> {
    let p = config_path();
    match std::fs::read(&p) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
        Ok(b) => match serde_json::from_slice::<Value>(&b) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(RegistryError::Usage(format!(
                "credentials file '{}' is not a JSON object; fix or remove it",
                p.display()
            ))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(RegistryError::io("cannot read credentials file", &p, e)),
    }
}

/// Stored credentials for a host, if any.
pub fn lookup(host: &str) -> Result<Option<Credentials>> {
    let cfg = read_config()?;
    let Some(auths) = cfg.get("auths").and_then(Value::as_object) else {
        return Ok(None);
    };
    let want = key_host(&auth_key(host)).to_string();
    let entry = auths.get(&auth_key(host)).or_else(|| {
        auths
            .iter()
            .find(|(k, _)| key_host(k) == want)
            .map(|(_, v)| v)
    });
    let Some(e) = entry else { return Ok(None) };
    if let Some(a) = e
        .get("auth")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
    {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                RegistryError::Usage(format!(
                    "the saved credentials for {host} in '{}' are not valid base64 'user:password'; run 'gcr login {host}' again",
                    config_path().display()
                ))
            })?;
        if let Some((u, p)) = raw.split_once(':') {
            return Ok(Some(Credentials {
                username: u.into(),
                password: p.into(),
            }));
        }
    }
    let u = e.get("username").and_then(Value::as_str);
    let p = e.get("password").and_then(Value::as_str);
    Ok(match (u, p) {
        (Some(u), Some(p)) => Some(Credentials {
            username: u.into(),
            password: p.into(),
        }),
        _ => None,
    })
}

fn write_config(cfg: &Map<String, Value>) -> Result<PathBuf> {
    let p = config_path();
    let dir = p
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    if !dir.exists() {
        std::fs::create_dir_all(&dir).map_err(|e| RegistryError::io("cannot create", &dir, e))?;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    }
    let tmp = dir.join(format!(".config.json.{}", std::process::id()));
    let mut body = serde_json::to_vec_pretty(cfg).unwrap_or_default();
    body.push(b'\n');
    let r = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(&body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &p)
    })();
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(RegistryError::io("cannot write credentials file", &p, e));
    }
    Ok(p)
}

/// Saves credentials for a host; returns the file written.
pub fn save(host: &str, c: &Credentials) -> Result<PathBuf> {
    let mut cfg = read_config()?;
    let auths = cfg
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    let raw = format!("{}:{}", c.username, c.password);
    let mut e = Map::new();
    e.insert(
        "auth".into(),
        Value::String(base64::engine::general_purpose::STANDARD.encode(raw)),
    );
    if let Some(a) = auths.as_object_mut() {
        a.insert(auth_key(host), Value::Object(e));
    }
    write_config(&cfg)
}

/// Removes saved credentials for a host; false when there were none.
pub fn remove(host: &str) -> Result<bool> {
    let mut cfg = read_config()?;
    let want = key_host(&auth_key(host)).to_string();
    let Some(auths) = cfg.get_mut("auths").and_then(Value::as_object_mut) else {
        return Ok(false);
    };
    let keys: Vec<String> = auths
        .keys()
        .filter(|k| key_host(k) == want)
        .cloned()
        .collect();
    if keys.is_empty() {
        return Ok(false);
    }
    for k in keys {
        auths.remove(&k);
    }
    write_config(&cfg)?;
    Ok(true)
}

/// One `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lower-case scheme: `bearer` or `basic`.
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// A parameter by (case-insensitive) name.
    pub fn param(&self, k: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    }

    /// Parses `Bearer realm="...",service="...",scope="a,b"` (quoted commas allowed).
    pub fn parse(h: &str) -> Option<Challenge> {
        let h = h.trim();
        let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
        if scheme.is_empty() {
            return None;
        }
        let mut params = Vec::new();
        let b = rest.as_bytes();
        let mut i = 0;
        while i < b.len() {
            while i < b.len() && (b[i] == b' ' || b[i] == b',') {
                i += 1;
            }
            let ks = i;
            while i < b.len() && b[i] != b'=' && b[i] != b',' {
                i += 1;
            }
            let key = rest[ks..i].trim().to_string();
            if i >= b.len() || b[i] != b'=' {
                continue;
            }
            i += 1;
            let mut val = String::new();
            if i < b.len() && b[i] == b'"' {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    let ch_len = rest[i..].chars().next().map_or(1, char::len_utf8);
                    val.push_str(&rest[i..i + ch_len]);
                    i += ch_len;
                }
                i += 1;
            } else {
                let vs = i;
                while i < b.len() && b[i] != b',' {
                    i += 1;
                }
                val = rest[vs..i].trim().to_string();
            }
            if !key.is_empty() {
                params.push((key, val));
            }
        }
        Some(Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.example/token"));
        assert_eq!(c.param("scope"), Some("repository:a/b:pull,push"));
        assert_eq!(
            Challenge::parse(r#"Basic realm="x""#).unwrap().scheme,
            "basic"
        );
        assert!(Challenge::parse("Bearer realm=\"unterminated").is_some());
    }

    #[test]
    fn key_normalization() {
        assert_eq!(key_host("https://index.docker.io/v1/"), "index.docker.io");
        assert_eq!(key_host("localhost:5000"), "localhost:5000");
        assert_eq!(auth_key("docker.io"), "https://index.docker.io/v1/");
    }
}
