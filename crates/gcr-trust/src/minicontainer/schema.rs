//! The consistency checks of a parsed manifest, beyond types: identifiers and their
//! uniqueness, key and hash syntax, statuses, that every reference (grant → artifact,
//! `grant://` → grant, provenance → signing slot, encrypted artifact → crypto slot) points
//! at something declared, ports, durations and the timestamp. The image reference's syntax
//! is checked by the engine (gcr-core owns it).

use std::collections::BTreeSet;

use super::error::McError;
use super::*;

/// The scheme of an environment value that names a grant.
pub const GRANT_SCHEME: &str = "grant://";

const STATUSES: &[&str] = &["active", "inactive", "revoked"];
const CIPHERS: &[&str] = &["xchacha20", "xchacha20-poly1305"];

/// An identifier: 1 to 128 of `[A-Za-z0-9._:-]`, starting with a letter or digit.
fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

fn id(path: &str, s: &str) -> Result<(), McError> {
    if is_id(s) {
        Ok(())
    } else {
        Err(McError::schema(
            path,
            format!("'{s}' is not an identifier; use 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"),
        ))
    }
}

/// A POSIX-portable environment variable name.
pub fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.as_bytes()[0].is_ascii_digit()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn unique<'a>(path: &str, what: &str, ids: impl Iterator<Item = &'a str>) -> Result<(), McError> {
    let mut seen = BTreeSet::new();
    for (i, id) in ids.enumerate() {
        if !seen.insert(id) {
            return Err(McError::schema(
                format!("{path}[{i}]"),
                format!("{what} '{id}' is declared twice"),
            ));
        }
    }
    Ok(())
}

fn status(path: String, s: &str) -> Result<(), McError> {
    if STATUSES.contains(&s) {
        Ok(())
    } else {
        Err(McError::schema(
            path,
            format!("status '{s}' is not one of {}", STATUSES.join(", ")),
        ))
    }
}

/// `blake3:` and 64 lowercase hex digits.
pub(super) fn is_blake3(s: &str) -> bool {
    s.strip_prefix("blake3:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// An ISO 8601 duration as the seed writes `ttl` (`P30D`, `PT12H`, `P1Y2M3DT4H5M6S`,
/// `P2W`), not zero.
pub(super) fn is_duration(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('P') else {
        return false;
    };
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return false,
        None => (rest, None),
    };
    fn units(s: &str, allowed: &str, nonzero: &mut bool) -> bool {
        let mut digits = String::new();
        let mut next = 0;
        for c in s.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let Some(pos) = allowed[next..].find(c) else {
                return false;
            };
            if digits.is_empty() || digits.len() > 9 {
                return false;
            }
            *nonzero |= digits.bytes().any(|b| b != b'0');
            digits.clear();
            next += pos + 1;
        }
        digits.is_empty()
    }
    let mut nonzero = false;
    let ok = units(date, "YMWD", &mut nonzero)
        && time.is_none_or(|t| units(t, "HMS", &mut nonzero))
        && (!date.is_empty() || time.is_some());
    ok && nonzero
}

/// An RFC 3339 UTC timestamp: `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
pub(super) fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 || b[b.len() - 1] != b'Z' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let num = |r: std::ops::Range<usize>| {
        std::str::from_utf8(&b[r])
            .ok()
            .and_then(|t| t.parse::<u32>().ok())
            .unwrap_or(99)
    };
    let shape = digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    let frac = &b[19..b.len() - 1];
    let frac_ok = frac.is_empty()
        || (frac.len() >= 2 && frac[0] == b'.' && frac[1..].iter().all(u8::is_ascii_digit));
    shape
        && frac_ok
        && (1..=12).contains(&num(5..7))
        && (1..=31).contains(&num(8..10))
        && num(11..13) < 24
        && num(14..16) < 60
        && num(17..19) < 61
}

/// Checks everything that does not need a key or the image store.
pub(super) fn check(m: &Manifest) -> Result<(), McError> {
    let v = &m.version;
    let semver = v.split('.').collect::<Vec<_>>();
    if semver.len() != 3
        || semver
            .iter()
            .any(|p| p.is_empty() || p.len() > 9 || !p.bytes().all(|b| b.is_ascii_digit()))
        || semver[0] != "1"
    {
        return Err(McError::schema(
            "version",
            format!("'{v}' is not a 1.x.y version; ll.minicontainer.v1 manifests are version 1.MINOR.PATCH"),
        ));
    }
    id("owner.user_id", &m.owner.user_id)?;
    id("owner.tenant", &m.owner.tenant)?;
    check_slots(&m.slots)?;
    check_artifacts(m)?;
    check_grants(m)?;
    check_deploy(m)?;
    for (i, r) in m.ledger_refs.iter().enumerate() {
        if !r.split_once("://").is_some_and(|(s, rest)| {
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric()) && !rest.is_empty()
        }) {
            return Err(McError::schema(
                format!("ledger_refs[{i}]"),
                format!("'{r}' is not a URI (SCHEME://...)"),
            ));
        }
    }
    if !is_timestamp(&m.ts) {
        return Err(McError::schema(
            "ts",
            format!(
                "'{}' is not an RFC 3339 UTC time such as 2025-11-17T13:37:00Z",
                m.ts
            ),
        ));
    }
    if let Some(p) = &m.provenance {
        id("provenance.kid", &p.kid)?;
    }
    Ok(())
}

fn check_slots(s: &Slots) -> Result<(), McError> {
    for (i, k) in s.signing.iter().enumerate() {
        let p = format!("slots.signing[{i}]");
        id(&format!("{p}.kid"), &k.kid)?;
        status(format!("{p}.status"), &k.status)?;
        let raw = hex::decode(&k.pub_hex).ok().filter(|r| r.len() == 32);
        let valid = raw
            .and_then(|r| <[u8; 32]>::try_from(r).ok())
            .is_some_and(|r| ed25519_dalek::VerifyingKey::from_bytes(&r).is_ok());
        if !valid {
            return Err(McError::schema(
                format!("{p}.pub"),
                "is not an Ed25519 public key (64 hex digits of the raw 32-byte key)",
            ));
        }
    }
    unique(
        "slots.signing",
        "signing key",
        s.signing.iter().map(|k| k.kid.as_str()),
    )?;
    for (i, t) in s.api.iter().enumerate() {
        let p = format!("slots.api[{i}]");
        id(&format!("{p}.token_id"), &t.token_id)?;
        status(format!("{p}.status"), &t.status)?;
        if t.scopes.is_empty() {
            return Err(McError::schema(
                format!("{p}.scopes"),
                "is empty; give at least one scope such as deploy:*",
            ));
        }
        for (j, sc) in t.scopes.iter().enumerate() {
            scope(&format!("{p}.scopes[{j}]"), sc)?;
        }
    }
    unique(
        "slots.api",
        "token",
        s.api.iter().map(|t| t.token_id.as_str()),
    )?;
    for (i, c) in s.crypto.iter().enumerate() {
        let p = format!("slots.crypto[{i}]");
        id(&format!("{p}.kid"), &c.kid)?;
        status(format!("{p}.status"), &c.status)?;
        if !CIPHERS.contains(&c.alg.as_str()) {
            return Err(McError::schema(
                format!("{p}.alg"),
                format!("'{}' is not a supported cipher; use xchacha20", c.alg),
            ));
        }
    }
    unique(
        "slots.crypto",
        "crypto key",
        s.crypto.iter().map(|c| c.kid.as_str()),
    )
}

/// A scope: `*`, or `area:action` of identifier characters with `*` allowed.
fn scope(path: &str, s: &str) -> Result<(), McError> {
    let part = |p: &str| {
        !p.is_empty()
            && p.len() <= 64
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-*".contains(&b))
    };
    let ok = s == "*" || s.split_once(':').is_some_and(|(a, b)| part(a) && part(b));
    if ok {
        Ok(())
    } else {
        Err(McError::schema(
            path,
            format!("'{s}' is not a scope such as runtime:read or deploy:*"),
        ))
    }
}

fn check_artifacts(m: &Manifest) -> Result<(), McError> {
    for (i, a) in m.artifacts.iter().enumerate() {
        let p = format!("artifacts[{i}]");
        id(&format!("{p}.id"), &a.id)?;
        let versioned = a.kind.rsplit_once(".v").is_some_and(|(name, n)| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
        });
        if !versioned {
            return Err(McError::schema(
                format!("{p}.type"),
                format!("'{}' is not a versioned type such as secret.url.v1", a.kind),
            ));
        }
        if !is_blake3(&a.hash) {
            return Err(McError::schema(
                format!("{p}.hash"),
                "is not blake3: and 64 lowercase hex digits",
            ));
        }
        if !CIPHERS.contains(&a.enc.as_str()) {
            return Err(McError::schema(
                format!("{p}.enc"),
                format!(
                    "'{}' is not a supported cipher; artifacts are encrypted with xchacha20",
                    a.enc
                ),
            ));
        }
        if !m
            .slots
            .crypto
            .iter()
            .any(|c| c.alg == a.enc && c.status == "active")
        {
            return Err(McError::schema(
                format!("{p}.enc"),
                format!(
                    "no active crypto slot has alg '{}'; declare one under slots.crypto",
                    a.enc
                ),
            ));
        }
    }
    unique(
        "artifacts",
        "artifact",
        m.artifacts.iter().map(|a| a.id.as_str()),
    )
}

fn check_grants(m: &Manifest) -> Result<(), McError> {
    for (i, g) in m.grants.iter().enumerate() {
        let p = format!("grants[{i}]");
        id(&format!("{p}.id"), &g.id)?;
        if m.artifact(&g.artifact_id).is_none() {
            return Err(McError::schema(
                format!("{p}.artifact_id"),
                format!(
                    "names artifact '{}', which the manifest does not declare under artifacts",
                    g.artifact_id
                ),
            ));
        }
        if g.scope.is_empty() {
            return Err(McError::schema(
                format!("{p}.scope"),
                "is empty; give at least one scope such as runtime:read",
            ));
        }
        for (j, sc) in g.scope.iter().enumerate() {
            scope(&format!("{p}.scope[{j}]"), sc)?;
        }
        if !is_duration(&g.ttl) {
            return Err(McError::schema(
                format!("{p}.ttl"),
                format!(
                    "'{}' is not a non-zero ISO 8601 duration such as P30D or PT12H",
                    g.ttl
                ),
            ));
        }
        id(&format!("{p}.aud"), &g.aud)?;
        if g.sig.as_ref().is_some_and(|s| !s.starts_with("ed25519:")) {
            return Err(McError::schema(
                format!("{p}.sig"),
                "is not ed25519:<base64 signature>; sign the manifest with `gcr manifest sign`",
            ));
        }
    }
    unique("grants", "grant", m.grants.iter().map(|g| g.id.as_str()))
}

fn check_deploy(m: &Manifest) -> Result<(), McError> {
    let d = &m.deploy;
    if d.engine != "container" {
        return Err(McError::schema(
            "deploy.engine",
            format!("is '{}'; gcr deploys engine 'container' only", d.engine),
        ));
    }
    if d.image.is_empty() {
        return Err(McError::schema(
            "deploy.image",
            "is empty; name the image to run",
        ));
    }
    for (i, a) in d.entrypoint.iter().enumerate() {
        if a.is_empty() && i == 0 {
            return Err(McError::schema(
                "deploy.entrypoint[0]",
                "is empty; name the program to run",
            ));
        }
    }
    for (k, v) in &d.env {
        let p = format!("deploy.env.{k}");
        if !is_env_name(k) {
            return Err(McError::schema(
                p,
                "is not a variable name; use letters, digits and '_', not starting with a digit",
            ));
        }
        if let Some(gid) = v.strip_prefix(GRANT_SCHEME) {
            if m.grant(gid).is_none() {
                return Err(McError::schema(
                    p,
                    format!(
                        "refers to grant '{gid}', which the manifest does not declare under grants"
                    ),
                ));
            }
        }
    }
    let mut hosts = BTreeSet::new();
    let mut containers = BTreeSet::new();
    for (i, port) in d.ports.iter().enumerate() {
        let p = format!("deploy.ports[{i}]");
        if port.container == 0 {
            return Err(McError::schema(
                format!("{p}.container"),
                "must be a port from 1 to 65535",
            ));
        }
        if !containers.insert(port.container) {
            return Err(McError::schema(
                format!("{p}.container"),
                format!("port {} is published twice", port.container),
            ));
        }
        if port.host != 0 && !hosts.insert(port.host) {
            return Err(McError::schema(
                format!("{p}.host"),
                format!("host port {} is used twice", port.host),
            ));
        }
    }
    if let Some(mem) = d.memory_bytes {
        if mem < 6 * 1024 * 1024 {
            return Err(McError::schema(
                "deploy.resources.memory_bytes",
                format!("{mem} bytes is below the 6 MiB a container needs"),
            ));
        }
    }
    for (i, t) in d.targets.iter().enumerate() {
        let p = format!("deploy.targets[{i}]");
        id(&format!("{p}.provider"), &t.provider)?;
        if let Some(x) = &t.project_id {
            id(&format!("{p}.project_id"), x)?;
        }
        if let Some(x) = &t.service {
            id(&format!("{p}.service"), x)?;
        }
    }
    Ok(())
}
