//! Small private helpers: sha256 digests, Docker-style reference normalization, canonical JSON,
//! RFC 3339 time formatting. (Stand-ins until gcr-core's versions are used.)

use crate::error::{Result, StoreError};
use sha2::{Digest as _, Sha256};
use std::io::{self, Read, Write};

/// `sha256:<hex>` of bytes.
pub(crate) fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Checks `sha256:<64 lowercase hex>` and returns the hex part.
pub(crate) fn digest_hex(d: &str) -> Result<&str> {
    match d.strip_prefix("sha256:") {
        Some(h) if is_hex(h) && h.len() == 64 => Ok(h),
        _ => Err(StoreError::InvalidDigest(d.to_string())),
    }
}

pub(crate) fn is_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A reader that hashes everything read through it and counts bytes.
pub(crate) struct HashReader<R> {
    pub inner: R,
    pub hasher: Sha256,
    pub count: u64,
}

impl<R: Read> HashReader<R> {
    pub fn new(inner: R) -> Self {
        HashReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts everything written through it.
pub(crate) struct HashWriter<W> {
    pub inner: W,
    pub hasher: Sha256,
    pub count: u64,
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    /// `docker.io/library/busybox`
    pub repo: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// `repo:tag` (tag defaults to latest).
    pub fn tagged(&self) -> String {
        format!("{}:{}", self.repo, self.tag.as_deref().unwrap_or("latest"))
    }
}

/// Docker-style normalization (`busybox` → `docker.io/library/busybox` + tag `latest`), by
/// gcr-core's reference parser so every crate agrees on names.
pub(crate) fn parse_reference(s: &str) -> Result<Reference> {
    let r = gcr_core::reference::Reference::parse(s).map_err(|e| StoreError::InvalidReference {
        reference: s.to_string(),
        reason: e.to_string(),
    })?;
    Ok(Reference {
        repo: r.name(),
        tag: r.tag().map(str::to_string),
        digest: r.digest().map(|d| d.to_string()),
    })
}

/// Docker's short form: `docker.io/library/busybox:latest` → `busybox:latest`.
pub(crate) fn familiar(full: &str) -> String {
    gcr_core::reference::Reference::parse(full)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| full.to_string())
}

/// Canonical JSON (sorted keys, no whitespace), independent of serde_json's map feature.
pub(crate) fn canonical_json(v: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push(b'{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(serde_json::to_string(k).unwrap_or_default().as_bytes());
                out.push(b':');
                write_canonical(&m[k.as_str()], out);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(x, out);
            }
            out.push(b']');
        }
        other => out.extend_from_slice(serde_json::to_string(other).unwrap_or_default().as_bytes()),
    }
}

/// RFC 3339 UTC time of unix seconds: `1970-01-01T00:00:00Z`.
pub(crate) fn rfc3339(secs: i64) -> String {
    gcr_core::time::format_rfc3339(secs)
}

/// Parses an RFC 3339 time into unix seconds.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    gcr_core::time::Timestamp::parse(s).ok().map(|t| t.unix)
}

pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// True if the bytes start with the gzip magic.
pub(crate) fn is_gzip(head: &[u8]) -> bool {
    head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b
}

/// Wraps a buffered reader in a gzip decoder when it starts with the gzip magic.
pub(crate) fn maybe_gunzip<'a, R: io::BufRead + 'a>(mut r: R) -> io::Result<Box<dyn Read + 'a>> {
    let gz = is_gzip(r.fill_buf()?);
    Ok(if gz {
        Box::new(flate2::bufread::MultiGzDecoder::new(r))
    } else {
        Box::new(r)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_references() {
        let r = parse_reference("busybox").unwrap();
        assert_eq!(r.tagged(), "docker.io/library/busybox:latest");
        let r = parse_reference("host:5000/ns/app:v1").unwrap();
        assert_eq!(r.tagged(), "host:5000/ns/app:v1");
        let r = parse_reference("user/app").unwrap();
        assert_eq!(r.tagged(), "docker.io/user/app:latest");
        assert!(parse_reference("Busybox").is_err());
        assert!(parse_reference("a:b:c").is_err());
        assert_eq!(
            familiar("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
    }

    #[test]
    fn time_round_trips() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.123Z"),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn canonical_sorts_keys() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"b":1,"a":{"d":[1,"x"],"c":null}}"#).unwrap();
        assert_eq!(canonical_json(&v), br#"{"a":{"c":null,"d":[1,"x"]},"b":1}"#);
    }
}
