//! Secrets: `gcr secret create|ls|inspect|rm` and what gives them to containers.
//!
//! A value is sealed (XChaCha20-Poly1305, gcr-trust) under the store's secrets key
//! (`<root>/secrets.key`) before it reaches the store; only the sealed bytes and their
//! digest are in the database. Nothing here prints or stores a clear value: `inspect` shows
//! name, id, times, labels and the sealed digest. Containers name secrets in their stored
//! flags only (`--secret NAME[,...]`, `-e VAR=grant://NAME`); the values are opened at each
//! launch, in memory, and handed to the runtime ([`grant`]). Build steps get them the same
//! way ([`build`]).

use serde::Serialize;
use zeroize::Zeroizing;

use gcr_store::SecretRow;
use gcr_trust::{SecretError, SecretsKey};

use crate::{Engine, EngineError};

pub mod build;
pub mod grant;

/// Docker's limit on a secret's size (500 KiB).
pub const MAX_SECRET: usize = 500 * 1024;

/// A secret as `secret inspect` shows it (Docker's shape plus the sealed value's digest).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretInfo {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: SecretVersion,
    pub created_at: String,
    pub updated_at: String,
    pub spec: SecretSpec,
    /// sha256 of the sealed value (nonce, ciphertext, tag): changes with every create,
    /// tells nothing about the value.
    pub digest: String,
    /// Unix seconds of `created_at` and `updated_at`, for `secret ls`.
    #[serde(skip)]
    pub created_secs: i64,
    #[serde(skip)]
    pub updated_secs: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretVersion {
    pub index: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretSpec {
    pub name: String,
    pub labels: serde_json::Map<String, serde_json::Value>,
}

/// Docker's secret names: 1 to 64 of `[A-Za-z0-9_.-]`, starting and ending with a letter
/// or digit.
pub fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

/// A random secret id: 25 lowercase letters and digits, as Docker's.
fn random_id() -> String {
    let hex = crate::names::random_id();
    let mut n = u128::from_str_radix(&hex[..32], 16).unwrap_or(0);
    let mut s = String::with_capacity(25);
    for _ in 0..25 {
        s.push(char::from_digit((n % 36) as u32, 36).unwrap_or('0'));
        n /= 36;
    }
    s
}

fn rfc3339_ns(ns: i64) -> String {
    gcr_core::time::format_rfc3339(ns.div_euclid(1_000_000_000))
}

pub(crate) fn key_err(e: SecretError) -> EngineError {
    EngineError::Internal(e.to_string())
}

fn info(r: &SecretRow) -> SecretInfo {
    let labels = serde_json::from_str(&r.labels).unwrap_or_default();
    SecretInfo {
        id: r.id.clone(),
        version: SecretVersion { index: 1 },
        created_at: rfc3339_ns(r.created_at),
        updated_at: rfc3339_ns(r.updated_at),
        spec: SecretSpec {
            name: r.name.clone(),
            labels,
        },
        digest: r.digest.clone(),
        created_secs: r.created_at.div_euclid(1_000_000_000),
        updated_secs: r.updated_at.div_euclid(1_000_000_000),
    }
}

fn no_such(name: &str) -> EngineError {
    EngineError::NotFound(format!(
        "no secret named '{name}'; create it with `gcr secret create {name} FILE` or see `gcr secret ls`"
    ))
}

impl Engine {
    /// The store's secrets key, made at first use.
    pub fn secrets_key(&self) -> Result<SecretsKey, EngineError> {
        SecretsKey::open_or_create(self.root()).map_err(key_err)
    }

    /// `gcr secret create NAME`: seals `value` and stores it; returns the new id. Every
    /// check comes before the first write: a refused secret writes nothing.
    pub fn secret_create(
        &self,
        name: &str,
        value: Zeroizing<Vec<u8>>,
        labels: &[String],
    ) -> Result<String, EngineError> {
        if !valid_name(name) {
            return Err(EngineError::Usage(format!(
                "invalid secret name '{name}': use 1 to 64 letters, digits, '_', '.' or '-', starting and ending with a letter or digit"
            )));
        }
        let mut map = serde_json::Map::new();
        for l in labels {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            if k.is_empty() {
                return Err(EngineError::Usage(format!(
                    "invalid label '{l}': use --label KEY=VALUE"
                )));
            }
            map.insert(k.to_string(), serde_json::Value::String(v.to_string()));
        }
        if value.is_empty() {
            return Err(EngineError::Usage(format!(
                "the value of secret '{name}' is empty; give a file or standard input with data"
            )));
        }
        if value.len() > MAX_SECRET {
            return Err(EngineError::Usage(format!(
                "the value of secret '{name}' is {} bytes, more than the 500 KiB a secret may hold; store a smaller value",
                value.len()
            )));
        }
        let store = self.store()?;
        let exists = || {
            EngineError::Conflict(format!(
                "a secret named '{name}' already exists; remove it with `gcr secret rm {name}` or choose another name"
            ))
        };
        if store.secret(name)?.is_some_and(|r| r.name == name) {
            return Err(exists());
        }
        let key = self.secrets_key()?;
        let id = random_id();
        let sealed = key.seal(name, &id, &value).map_err(key_err)?;
        let digest = format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&sealed))
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let row = SecretRow {
            id: id.clone(),
            name: name.to_string(),
            created_at: now,
            updated_at: now,
            labels: serde_json::Value::Object(map).to_string(),
            sealed,
            digest,
        };
        if !store.insert_secret(&row)? {
            return Err(exists());
        }
        Ok(id)
    }

    /// Every secret, by name.
    pub fn secret_list(&self) -> Result<Vec<SecretInfo>, EngineError> {
        Ok(self.store()?.secrets()?.iter().map(info).collect())
    }

    /// One secret by name, id or unique id prefix.
    pub fn secret_inspect(&self, name: &str) -> Result<SecretInfo, EngineError> {
        let r = self.store()?.secret(name)?.ok_or_else(|| no_such(name))?;
        Ok(info(&r))
    }

    /// Removes a secret no container names; returns its name.
    pub fn secret_remove(&self, name: &str) -> Result<String, EngineError> {
        let store = self.store()?;
        let r = store.secret(name)?.ok_or_else(|| no_such(name))?;
        let users = grant::containers_using(store.conn(), &r.name)?;
        if !users.is_empty() {
            return Err(EngineError::Conflict(format!(
                "secret '{}' is in use by container(s) {}; remove them first",
                r.name,
                users.join(", ")
            )));
        }
        if !store.delete_secret(&r.id)? {
            return Err(no_such(name));
        }
        Ok(r.name)
    }

    /// The clear value of the secret `name` (a [`Zeroizing`] buffer).
    pub(crate) fn secret_value(
        &self,
        key: &SecretsKey,
        name: &str,
    ) -> Result<Zeroizing<Vec<u8>>, EngineError> {
        let r = self
            .store()?
            .secret(name)?
            .filter(|r| r.name == name)
            .ok_or_else(|| no_such(name))?;
        key.open_sealed(&r.name, &r.id, &r.sealed).map_err(key_err)
    }

    /// Checks that every named secret exists (create time), without opening any.
    pub(crate) fn secrets_exist<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), EngineError> {
        for n in names {
            if self.store()?.secret(n)?.is_none_or(|r| r.name != n) {
                return Err(EngineError::Usage(format!(
                    "secret '{n}' not found; create it with `gcr secret create {n} FILE` or see `gcr secret ls`"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker() {
        for ok in ["a", "db-pass", "x.y_z", "A1"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a b", "a/b", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn ids_are_25_base36_characters() {
        let a = random_id();
        assert_eq!(a.len(), 25);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
        assert_ne!(a, random_id());
    }
}
