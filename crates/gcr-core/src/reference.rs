//! Image references with Docker's normalization (`busybox` means
//! `docker.io/library/busybox:latest`) and the distribution-spec grammar:
//! `[registry[:port]/]path[:tag][@digest]`. The first path component is a registry when
//! it contains `.` or `:`, is `localhost`, or has uppercase letters (as in Docker).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::digest::Digest;

/// Docker Hub's canonical registry name.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The tag assumed when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LEN: usize = 255;

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format: reference is empty")]
    Empty,
    #[error("invalid reference format: repository name must be lowercase")]
    Uppercase,
    #[error("invalid reference format: '{0}' is not a valid repository name; use lowercase letters, digits and separators (. _ __ -) between '/'-separated components")]
    Name(String),
    #[error("invalid reference format: '{0}' is not a valid registry host; use host or host:port")]
    Registry(String),
    #[error("invalid reference format: '{0}' is not a valid tag; use up to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'")]
    Tag(String),
    #[error("invalid reference format: '{0}' is not a valid digest; use sha256:<64 lowercase hex characters>")]
    Digest(String),
    #[error("invalid reference format: repository name '{0}' is longer than 255 characters")]
    TooLong(String),
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
}

/// A normalized image reference. `tag` is `Some("latest")` when neither tag nor digest
/// was given; when only a digest was given `tag` is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// True when `s` is one distribution-spec path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Validates a repository path (`library/busybox`, `team/app`), without registry.
pub fn validate_repository(path: &str) -> Result<(), ReferenceError> {
    if path.is_empty() {
        return Err(ReferenceError::Name(path.to_string()));
    }
    if path.len() > MAX_NAME_LEN {
        return Err(ReferenceError::TooLong(path.to_string()));
    }
    if path.bytes().any(|c| c.is_ascii_uppercase()) {
        return Err(ReferenceError::Uppercase);
    }
    if !path.split('/').all(valid_component) {
        return Err(ReferenceError::Name(path.to_string()));
    }
    Ok(())
}

/// True when `tag` matches `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `host`, `host:port`, `[v6]:port`, where host labels are `[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?`.
fn valid_registry(s: &str) -> bool {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, tail)) => {
                if v6.is_empty() || !v6.bytes().all(|c| c.is_ascii_hexdigit() || c == b':') {
                    return false;
                }
                if tail.is_empty() {
                    (None, None)
                } else {
                    match tail.strip_prefix(':') {
                        Some(p) => (None, Some(p)),
                        None => return false,
                    }
                }
            }
            None => return false,
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(s), None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    match host {
        None => true,
        Some(h) => {
            !h.is_empty()
                && h.split('.').all(|label| {
                    let b = label.as_bytes();
                    !b.is_empty()
                        && b[0].is_ascii_alphanumeric()
                        && b[b.len() - 1].is_ascii_alphanumeric()
                        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                })
        }
    }
}

/// Docker's rule for the first component being a registry host.
fn looks_like_registry(first: &str) -> bool {
    first.contains('.')
        || first.contains(':')
        || first == "localhost"
        || first.bytes().any(|c| c.is_ascii_uppercase())
}

impl Reference {
    /// Parses and normalizes a reference the way `docker pull` does.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if input.len() == 64 && input.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(ReferenceError::HexName(input.to_string()));
        }
        let (name_tag, digest) = match input.split_once('@') {
            Some((n, d)) => {
                let digest = d
                    .parse::<Digest>()
                    .map_err(|_| ReferenceError::Digest(d.to_string()))?;
                (n, Some(digest))
            }
            None => (input, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&name_tag[..at], Some(&name_tag[at + 1..]))
            }
            None => (name_tag, None),
        };
        if let Some(t) = tag {
            if !is_valid_tag(t) {
                return Err(ReferenceError::Tag(t.to_string()));
            }
        }
        let (registry, mut repository) = match name.split_once('/') {
            Some((first, rest)) if looks_like_registry(first) => {
                if !valid_registry(first) {
                    return Err(ReferenceError::Registry(first.to_string()));
                }
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" {
            DEFAULT_REGISTRY.to_string()
        } else {
            registry
        };
        if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        validate_repository(&repository)?;
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(ReferenceError::TooLong(format!("{registry}/{repository}")));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// Registry host, e.g. `docker.io`, `localhost:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Repository path within the registry, e.g. `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, e.g. `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Full normalized form: `docker.io/library/busybox:latest`,
    /// `host:5000/ns/app@sha256:…`, `host/app:tag@sha256:…`.
    pub fn full(&self) -> String {
        let mut s = self.name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }

    /// The store key: `name:tag` when there is a tag (any digest is dropped),
    /// otherwise `name@digest`.
    pub fn name_tag(&self) -> String {
        match (&self.tag, &self.digest) {
            (Some(t), _) => format!("{}:{t}", self.name()),
            (None, Some(d)) => format!("{}@{d}", self.name()),
            (None, None) => self.name(),
        }
    }

    /// Docker's short form: `busybox:latest`, `user/app:1`, `host:5000/x:y`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }

    /// Docker's short repository name: `busybox`, `user/app`, `host:5000/x`.
    /// Unlike Docker, a Docker Hub repository whose first component looks like a
    /// registry (`docker.io/example.com/app`) keeps its `docker.io/` prefix, so the short
    /// form always parses back to the same reference.
    pub fn familiar_name(&self) -> String {
        if self.registry != DEFAULT_REGISTRY {
            return self.name();
        }
        match self.repository.strip_prefix("library/") {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => {
                let first = self.repository.split('/').next().unwrap_or("");
                if looks_like_registry(first) {
                    self.name()
                } else {
                    self.repository.clone()
                }
            }
        }
    }

    /// The same repository with another tag (digest removed).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !is_valid_tag(tag) {
            return Err(ReferenceError::Tag(tag.to_string()));
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository pinned to a digest (tag removed).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(s)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full())
    }
}

impl Serialize for Reference {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Reference, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().full()
    }

    #[test]
    fn docker_normalization() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            full("docker.io/busybox:1.36"),
            "docker.io/library/busybox:1.36"
        );
        assert_eq!(
            full("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("host:5000/ns/app:tag"), "host:5000/ns/app:tag");
        assert_eq!(full("localhost/app"), "localhost/app:latest");
        assert_eq!(full("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(full("quay.io/coreos/etcd:v3.5"), "quay.io/coreos/etcd:v3.5");
        assert_eq!(full("a/b/c/d"), "docker.io/a/b/c/d:latest");
        assert_eq!(full("[::1]:5000/app"), "[::1]:5000/app:latest");
        assert_eq!(full("Registry/app"), "Registry/app:latest");
    }

    #[test]
    fn digests() {
        let r = Reference::parse(&format!("host:5000/ns/app@sha256:{HEX}")).unwrap();
        assert_eq!(r.registry(), "host:5000");
        assert_eq!(r.repository(), "ns/app");
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().hex, HEX);
        assert_eq!(r.full(), format!("host:5000/ns/app@sha256:{HEX}"));
        assert_eq!(r.name_tag(), format!("host:5000/ns/app@sha256:{HEX}"));
        let both = Reference::parse(&format!("busybox:1@sha256:{HEX}")).unwrap();
        assert_eq!(
            both.full(),
            format!("docker.io/library/busybox:1@sha256:{HEX}")
        );
        assert_eq!(both.name_tag(), "docker.io/library/busybox:1");
        assert_eq!(both.familiar(), format!("busybox:1@sha256:{HEX}"));
    }

    #[test]
    fn accessors_and_familiar() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("docker.io", "library/busybox", Some("latest"))
        );
        assert_eq!(r.familiar(), "busybox:latest");
        assert_eq!(r.name_tag(), "docker.io/library/busybox:latest");
        assert_eq!(
            Reference::parse("user/app:1").unwrap().familiar(),
            "user/app:1"
        );
        assert_eq!(
            Reference::parse("host:5000/x:y").unwrap().familiar(),
            "host:5000/x:y"
        );
        assert_eq!(
            Reference::parse("library/a/b").unwrap().familiar(),
            "library/a/b:latest"
        );
        assert_eq!(
            r.with_tag("2").unwrap().full(),
            "docker.io/library/busybox:2"
        );
        assert!(r.with_tag("-x").is_err());
        let d = Digest::sha256_of(b"x");
        assert_eq!(
            r.with_digest(d.clone()).full(),
            format!("docker.io/library/busybox@{d}")
        );
        assert_eq!(r.to_string(), r.full());
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Reference>(&j).unwrap(), r);
    }

    #[test]
    fn errors() {
        let e = |s: &str| Reference::parse(s).unwrap_err().to_string();
        assert_eq!(
            e("Busybox"),
            "invalid reference format: repository name must be lowercase"
        );
        assert_eq!(
            e("user/App"),
            "invalid reference format: repository name must be lowercase"
        );
        assert_eq!(e(""), "invalid reference format: reference is empty");
        assert!(e("busybox:-bad").contains("'-bad' is not a valid tag"));
        assert!(e("busybox:").contains("'' is not a valid tag"));
        assert!(e("busybox@sha256:abc").contains("'sha256:abc' is not a valid digest"));
        assert!(e("a//b").contains("is not a valid repository name"));
        assert!(e("a b").contains("is not a valid repository name"));
        assert!(e("-a").contains("is not a valid repository name"));
        assert!(e("a..b").contains("is not a valid repository name"));
        assert!(e("a___b").contains("is not a valid repository name"));
        assert!(e("host:port/app").contains("'host:port' is not a valid registry host"));
        assert!(e("-host.com/app").contains("is not a valid registry host"));
        assert!(e(HEX).contains("cannot specify 64-byte hexadecimal strings"));
        assert!(e(&format!("a/{}", "b".repeat(300))).contains("longer than 255"));
        assert!(e(&format!("busybox:{}", "t".repeat(129))).contains("not a valid tag"));
        assert!(Reference::parse("a__b-c--d.e_f").is_ok());
    }

    #[test]
    fn grammar_helpers() {
        assert!(is_valid_tag("v1.0.0-rc_1"));
        assert!(is_valid_tag("_x"));
        assert!(!is_valid_tag(".x"));
        assert!(!is_valid_tag("a+b"));
        assert!(validate_repository("library/busybox").is_ok());
        assert!(validate_repository("library/").is_err());
    }
}
