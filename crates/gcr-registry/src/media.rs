//! Manifest formats: OCI and Docker schema2 media types, strict parsing of manifests and
//! indexes received from anywhere (size-limited, digests checked for shape), and platform
//! selection in an index. Pure functions, fuzzed by `fuzz/fuzz_targets/registry_manifest.rs`.

use serde::{Deserialize, Serialize};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The `Accept` header for manifest requests: every format gcr understands.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// The largest manifest or index accepted (the distribution spec's recommended limit).
pub const MAX_MANIFEST: u64 = 4 * 1024 * 1024;

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
    /// The content itself, base64 (image spec 1.1 `data`): small content embedded so that
    /// no request fetches it. Used only after [`Descriptor::embedded`] checked it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

impl Descriptor {
    /// The embedded content, when the descriptor has some and it is exactly what the
    /// digest and size name; `None` otherwise (the content is then fetched as usual).
    pub fn embedded(&self) -> Option<Vec<u8>> {
        embedded(self.data.as_deref()?, &self.digest, self.size)
    }
}

/// Decodes embedded `data` (base64) and returns it if it has `size` bytes and `digest`.
pub fn embedded(data: &str, digest: &str, size: u64) -> Option<Vec<u8>> {
    use base64::Engine as _;
    // Base64 is 4/3 of the bytes: a longer string cannot be `size` bytes (and is not decoded).
    if size > MAX_MANIFEST || data.len() as u64 > size.div_ceil(3) * 4 {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()?;
    (bytes.len() as u64 == size && sha256(&bytes) == digest).then_some(bytes)
}

/// A platform (`os/arch[/variant]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The host's platform in OCI terms (`linux/amd64`, `linux/arm64`, ...).
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "arm" => "arm",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: None,
        }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Option<Platform> {
        let mut it = s.split('/');
        let os = it.next().filter(|x| !x.is_empty())?;
        let arch = it.next().filter(|x| !x.is_empty())?;
        let variant = it.next().map(str::to_string);
        if it.next().is_some() {
            return None;
        }
        Some(Platform {
            os: os.into(),
            architecture: arch.into(),
            variant,
        })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A parsed manifest or index.
#[allow(clippy::large_enum_variant)] // short-lived, one per document
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// An image index / manifest list.
    Index { manifests: Vec<Descriptor> },
    /// An image (or artifact) manifest.
    Image {
        config: Descriptor,
        layers: Vec<Descriptor>,
        subject: Option<Descriptor>,
        artifact_type: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<u64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
}

/// True when `d` is `sha256:<64 lowercase hex>` (the only algorithm the CAS stores).
pub fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    })
}

/// Parses manifest bytes; `content_type` is the HTTP Content-Type, used when the document
/// has no `mediaType`. Returns the effective media type and the parsed document.
pub fn parse_manifest(
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<(String, Parsed), String> {
    if bytes.len() as u64 > MAX_MANIFEST {
        return Err(format!(
            "the manifest is {} bytes, over the 4 MiB limit",
            bytes.len()
        ));
    }
    let raw: Raw = serde_json::from_slice(bytes)
        .map_err(|e| format!("the manifest is not valid JSON ({e})"))?;
    let ct = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "application/octet-stream");
    let mt = raw.media_type.clone().or(ct.map(str::to_string));
    if raw.schema_version == Some(1)
        || matches!(
            mt.as_deref(),
            Some(DOCKER_SCHEMA1) | Some(DOCKER_SCHEMA1_SIGNED)
        )
    {
        return Err(
            "Docker schema 1 manifests are not supported; push the image again with a current tool"
                .into(),
        );
    }
    if raw.schema_version != Some(2) {
        return Err("the manifest has no schemaVersion 2".into());
    }
    let check = |d: &Descriptor| -> Result<(), String> {
        if valid_digest(&d.digest) {
            Ok(())
        } else {
            Err(format!(
                "the manifest names an invalid digest '{}'",
                d.digest.chars().take(80).collect::<String>()
            ))
        }
    };
    let is_index = match mt.as_deref() {
        Some(OCI_INDEX) | Some(DOCKER_LIST) => true,
        Some(OCI_MANIFEST) | Some(DOCKER_MANIFEST) => false,
        _ => raw.manifests.is_some() && raw.config.is_none(),
    };
    if is_index {
        let manifests = raw.manifests.ok_or("the index has no 'manifests' list")?;
        manifests.iter().try_for_each(check)?;
        let mt = mt.unwrap_or_else(|| OCI_INDEX.to_string());
        return Ok((mt, Parsed::Index { manifests }));
    }
    let config = raw.config.ok_or("the manifest has no 'config'")?;
    let layers = raw.layers.unwrap_or_default();
    check(&config)?;
    layers.iter().try_for_each(check)?;
    if let Some(s) = &raw.subject {
        check(s)?;
    }
    let mt = mt.unwrap_or_else(|| OCI_MANIFEST.to_string());
    Ok((
        mt,
        Parsed::Image {
            config,
            layers,
            subject: raw.subject,
            artifact_type: raw.artifact_type,
        },
    ))
}

/// Picks the manifest for `want` from an index: os and architecture must match; the
/// variant too when `want` names one (else the first listed variant wins).
pub fn select_platform<'a>(manifests: &'a [Descriptor], want: &Platform) -> Option<&'a Descriptor> {
    manifests.iter().find(|d| {
        d.platform.as_ref().is_some_and(|p| {
            p.os == want.os
                && p.architecture == want.architecture
                && (want.variant.is_none() || p.variant == want.variant)
        })
    })
}

/// The platforms an index offers, for error messages.
pub fn platforms(manifests: &[Descriptor]) -> String {
    let v: Vec<String> = manifests
        .iter()
        .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// The sha256 digest of bytes.
pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn parses_manifest_and_index() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"x","digest":"{D}","size":5}},"layers":[{{"mediaType":"y","digest":"{D}","size":5}}]}}"#
        );
        let (mt, p) = parse_manifest(m.as_bytes(), None).unwrap();
        assert_eq!(mt, DOCKER_MANIFEST);
        assert!(matches!(p, Parsed::Image { ref layers, .. } if layers.len() == 1));
        let i = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"digest":"{D}","size":5,"platform":{{"os":"linux","architecture":"arm64"}}}},{{"digest":"{D}","size":6,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
        );
        let (mt, p) = parse_manifest(i.as_bytes(), Some(DOCKER_LIST)).unwrap();
        assert_eq!(mt, DOCKER_LIST);
        let Parsed::Index { manifests } = p else {
            panic!()
        };
        let amd = Platform::parse("linux/amd64").unwrap();
        assert_eq!(select_platform(&manifests, &amd).unwrap().size, 6);
        assert!(select_platform(&manifests, &Platform::parse("linux/s390x").unwrap()).is_none());
        assert_eq!(platforms(&manifests), "linux/arm64, linux/amd64");
    }

    #[test]
    fn rejects_bad_manifests() {
        for bad in [
            &b"{"[..],
            br#"{"schemaVersion":1,"fsLayers":[]}"#,
            br#"{"schemaVersion":2,"config":{"digest":"sha256:zz","size":1},"layers":[]}"#,
            br#"{"schemaVersion":2,"config":{"digest":"sha256:00","size":-1},"layers":[]}"#,
            br#"{"schemaVersion":2}"#,
            br#"[]"#,
        ] {
            assert!(
                parse_manifest(bad, None).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let big = vec![b' '; (MAX_MANIFEST + 1) as usize];
        assert!(parse_manifest(&big, None).unwrap_err().contains("4 MiB"));
    }
}
