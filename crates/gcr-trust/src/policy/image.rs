//! The image policy: containers-policy.json (`default`, `transports` → scope →
//! requirements), parsed strictly and compiled into [`ImagePolicy`]. gcr enforces
//! `insecureAcceptAnything`, `reject` and `sigstoreSigned` (`keyPath` or `keyData` holding
//! an Ed25519 PKIX PEM, `signedIdentity`); `signedBy` (GPG simple signing) is refused when
//! the file is read. Transports: `docker` (images pulled from a registry) and `gcr`
//! (images built, imported or loaded into gcr's store); the scopes of other containers
//! transports are accepted (so one file serves skopeo and gcr) and never consulted.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::dockerref::DockerRef;
use super::{parse_json, PolicyError};
use crate::keys::PublicKey;
use crate::statement::Subject;

/// Transports containers/image knows (their scopes are kept, not used), plus gcr's own.
const KNOWN_TRANSPORTS: &[&str] = &[
    "atomic",
    "containers-storage",
    "dir",
    "docker",
    "docker-archive",
    "docker-daemon",
    "oci",
    "oci-archive",
    "ostree",
    "sif",
    "tarball",
    "gcr",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    default: Vec<ReqDoc>,
    #[serde(default)]
    transports: BTreeMap<String, BTreeMap<String, Vec<ReqDoc>>>,
}

#[derive(Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
enum ReqDoc {
    #[serde(rename = "insecureAcceptAnything")]
    InsecureAcceptAnything {},
    #[serde(rename = "reject")]
    Reject {},
    #[serde(rename = "signedBy")]
    SignedBy(#[allow(dead_code)] BTreeMap<String, serde_json::Value>),
    #[serde(rename = "sigstoreSigned", rename_all = "camelCase")]
    SigstoreSigned {
        key_path: Option<String>,
        key_data: Option<String>,
        signed_identity: Option<Identity>,
    },
}

/// `signedIdentity`: what identity a signature must claim.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum Identity {
    #[serde(rename = "matchExact")]
    MatchExact {},
    #[serde(rename = "matchRepoDigestOrExact")]
    MatchRepoDigestOrExact {},
    #[serde(rename = "matchRepository")]
    MatchRepository {},
    #[serde(rename = "exactReference", rename_all = "camelCase")]
    ExactReference { docker_reference: String },
    #[serde(rename = "exactRepository", rename_all = "camelCase")]
    ExactRepository { docker_repository: String },
    #[serde(rename = "remapIdentity", rename_all = "camelCase")]
    RemapIdentity {
        prefix: String,
        signed_prefix: String,
    },
}

/// One compiled requirement.
#[derive(Debug, Clone)]
pub enum Requirement {
    InsecureAcceptAnything,
    Reject,
    SigstoreSigned {
        key: Box<PublicKey>,
        identity: Identity,
    },
}

impl Requirement {
    /// A short description for `gcr policy check`.
    pub fn describe(&self) -> String {
        match self {
            Requirement::InsecureAcceptAnything => "insecureAcceptAnything".into(),
            Requirement::Reject => "reject".into(),
            Requirement::SigstoreSigned { key, identity } => {
                let id = serde_json::to_value(identity)
                    .ok()
                    .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
                    .unwrap_or_default();
                format!("sigstoreSigned(key {}, signedIdentity {id})", key.id())
            }
        }
    }
}

/// A compiled containers-policy.json.
#[derive(Debug, Clone)]
pub struct ImagePolicy {
    default: Vec<Requirement>,
    transports: BTreeMap<String, BTreeMap<String, Vec<Requirement>>>,
}

/// The requirements that apply to an image, and where they come from.
#[derive(Debug, Clone)]
pub struct Matched<'a> {
    /// `policy.default` or `policy.transports.<transport>.<scope>` (`""` for the
    /// transport's default).
    pub rule: String,
    pub requirements: &'a [Requirement],
}

/// What the image policy decided about one image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageDecision {
    pub allowed: bool,
    pub transport: String,
    /// The identity looked up (`host/repo:tag`), or empty for an unnamed local image.
    pub reference: String,
    pub rule: String,
    pub requirements: Vec<String>,
    pub reason: String,
    /// Key ids whose signatures satisfied a `sigstoreSigned` requirement.
    pub signers: Vec<String>,
}

/// One signature artifact of the image: where it came from and its bytes.
pub struct Signature<'a> {
    pub source: &'a str,
    pub bytes: &'a [u8],
}

/// The facts about an image the policy needs.
pub struct ImageFacts<'a> {
    /// `docker` or `gcr`.
    pub transport: &'a str,
    pub reference: Option<&'a DockerRef>,
    /// The image manifest's bytes (what the signatures must cover).
    pub manifest: &'a [u8],
    pub signatures: &'a [Signature<'a>],
}

fn invalid(file: &str, msg: String) -> PolicyError {
    PolicyError::Invalid {
        file: file.to_string(),
        msg,
    }
}

fn compile_req(file: &str, at: &str, r: ReqDoc) -> Result<Requirement, PolicyError> {
    Ok(match r {
        ReqDoc::InsecureAcceptAnything {} => Requirement::InsecureAcceptAnything,
        ReqDoc::Reject {} => Requirement::Reject,
        ReqDoc::SignedBy(_) => {
            return Err(invalid(
                file,
                format!("{at}: requirement type signedBy (GPG simple signing) is not supported by gcr; use sigstoreSigned with an Ed25519 public key (`gcr key export NAME`)"),
            ))
        }
        ReqDoc::SigstoreSigned {
            key_path,
            key_data,
            signed_identity,
        } => {
            let (what, pem) = match (key_path, key_data) {
                (Some(p), None) => {
                    let pem = super::read_file(Path::new(&p))?;
                    (format!("keyPath {p} ({at})"), pem)
                }
                (None, Some(d)) => {
                    let pem = base64::engine::general_purpose::STANDARD
                        .decode(d.trim())
                        .map_err(|e| {
                            invalid(file, format!("{at}: keyData is not base64 ({e}); give the base64 of the PEM public key"))
                        })?;
                    (format!("keyData ({at})"), pem)
                }
                _ => {
                    return Err(invalid(
                        file,
                        format!("{at}: sigstoreSigned needs exactly one of keyPath and keyData"),
                    ))
                }
            };
            let key = PublicKey::from_pem(&what, &pem)
                .map_err(|e| invalid(file, e.to_string()))?;
            let identity = signed_identity.unwrap_or(Identity::MatchRepoDigestOrExact {});
            check_identity(file, at, &identity)?;
            Requirement::SigstoreSigned {
                key: Box::new(key),
                identity,
            }
        }
    })
}

fn check_identity(file: &str, at: &str, id: &Identity) -> Result<(), PolicyError> {
    let bad = |what: &str, v: &str| {
        invalid(
            file,
            format!("{at}: signedIdentity {what} '{v}' is not a fully expanded docker reference (host/path)"),
        )
    };
    match id {
        Identity::ExactReference { docker_reference } => {
            DockerRef::parse(docker_reference)
                .filter(|r| r.identity().is_some())
                .ok_or_else(|| bad("dockerReference", docker_reference))?;
        }
        Identity::ExactRepository { docker_repository } => {
            DockerRef::parse(docker_repository)
                .filter(|r| r.identity().is_none())
                .ok_or_else(|| bad("dockerRepository", docker_repository))?;
        }
        Identity::RemapIdentity {
            prefix,
            signed_prefix,
        } => {
            for (k, v) in [("prefix", prefix), ("signedPrefix", signed_prefix)] {
                DockerRef::parse(v)
                    .filter(|r| r.identity().is_none())
                    .ok_or_else(|| bad(k, v))?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn compile_list(file: &str, at: &str, list: Vec<ReqDoc>) -> Result<Vec<Requirement>, PolicyError> {
    if list.is_empty() {
        return Err(invalid(
            file,
            format!("{at}: the list of requirements is empty; use [{{\"type\":\"insecureAcceptAnything\"}}] to accept anything"),
        ));
    }
    list.into_iter().map(|r| compile_req(file, at, r)).collect()
}

impl ImagePolicy {
    /// Parses and compiles a policy file's bytes (`file` names it in errors; `keyPath`s are
    /// read now).
    pub fn parse(file: &str, bytes: &[u8]) -> Result<ImagePolicy, PolicyError> {
        let doc: FileDoc = parse_json(file, bytes)?;
        let default = compile_list(file, "default", doc.default)?;
        let mut transports = BTreeMap::new();
        for (t, scopes) in doc.transports {
            if !KNOWN_TRANSPORTS.contains(&t.as_str()) {
                return Err(invalid(
                    file,
                    format!("unknown transport '{t}' under transports; use docker, gcr or another containers transport"),
                ));
            }
            let mut compiled = BTreeMap::new();
            for (scope, list) in scopes {
                if (t == "docker" || t == "gcr") && !scope.is_empty() {
                    let ok = match scope.strip_prefix("*.") {
                        Some(d) => !d.is_empty() && !d.contains(['/', ':', '*']),
                        None => DockerRef::parse(&scope).is_some() && !scope.contains('*'),
                    };
                    if !ok {
                        return Err(invalid(
                            file,
                            format!("transports.{t}: scope '{scope}' is not host[:port][/path][:tag|@digest] or *.domain"),
                        ));
                    }
                }
                let at = format!("transports.{t}.\"{scope}\"");
                compiled.insert(scope, compile_list(file, &at, list)?);
            }
            transports.insert(t, compiled);
        }
        Ok(ImagePolicy {
            default,
            transports,
        })
    }

    /// Number of scopes (for `gcr policy check`).
    pub fn scope_count(&self) -> usize {
        self.transports.values().map(|s| s.len()).sum()
    }

    /// The most specific requirements for `reference` in `transport`.
    pub fn lookup(&self, transport: &str, reference: Option<&DockerRef>) -> Matched<'_> {
        if let Some(scopes) = self.transports.get(transport) {
            if let Some(r) = reference {
                for s in r.scopes() {
                    if let Some(reqs) = scopes.get(&s) {
                        return Matched {
                            rule: format!("policy.transports.{transport}.{s}"),
                            requirements: reqs,
                        };
                    }
                }
            }
            if let Some(reqs) = scopes.get("") {
                return Matched {
                    rule: format!("policy.transports.{transport}.\"\""),
                    requirements: reqs,
                };
            }
        }
        Matched {
            rule: "policy.default".into(),
            requirements: &self.default,
        }
    }

    /// The decision that needs no signature: Some(deny) when a requirement rejects the
    /// image outright; None when the image may be fetched (a `sigstoreSigned`
    /// requirement is checked once its signatures are there).
    pub fn precheck(&self, transport: &str, reference: &DockerRef) -> Option<ImageDecision> {
        let m = self.lookup(transport, Some(reference));
        m.requirements
            .iter()
            .any(|r| matches!(r, Requirement::Reject))
            .then(|| {
                decision(
                    transport,
                    Some(reference),
                    &m,
                    false,
                    reject_reason(&m.rule),
                    vec![],
                )
            })
    }

    /// Evaluates every requirement that applies to the image.
    pub fn evaluate(&self, facts: &ImageFacts<'_>) -> ImageDecision {
        let m = self.lookup(facts.transport, facts.reference);
        let mut signers = Vec::new();
        for req in m.requirements {
            match req {
                Requirement::InsecureAcceptAnything => {}
                Requirement::Reject => {
                    return decision(
                        facts.transport,
                        facts.reference,
                        &m,
                        false,
                        reject_reason(&m.rule),
                        signers,
                    )
                }
                Requirement::SigstoreSigned { key, identity } => {
                    match check_signed(facts, key, identity) {
                        Ok(()) => signers.push(key.id().to_string()),
                        Err(why) => {
                            return decision(
                                facts.transport,
                                facts.reference,
                                &m,
                                false,
                                why,
                                signers,
                            )
                        }
                    }
                }
            }
        }
        decision(
            facts.transport,
            facts.reference,
            &m,
            true,
            "every requirement is satisfied".into(),
            signers,
        )
    }
}

fn reject_reason(rule: &str) -> String {
    format!("the requirements of {rule} reject this image")
}

fn decision(
    transport: &str,
    reference: Option<&DockerRef>,
    m: &Matched<'_>,
    allowed: bool,
    reason: String,
    signers: Vec<String>,
) -> ImageDecision {
    ImageDecision {
        allowed,
        transport: transport.to_string(),
        reference: reference
            .map(|r| r.identity().unwrap_or_else(|| r.name.clone()))
            .unwrap_or_default(),
        rule: m.rule.clone(),
        requirements: m.requirements.iter().map(Requirement::describe).collect(),
        reason,
        signers,
    }
}

/// Ok when one signature verifies with `key` over the manifest and claims an identity
/// `identity` accepts; else why not.
fn check_signed(
    facts: &ImageFacts<'_>,
    key: &PublicKey,
    identity: &Identity,
) -> Result<(), String> {
    if facts.signatures.is_empty() {
        return Err(format!(
            "the image has no signature, and sigstoreSigned requires one by key {}",
            key.id()
        ));
    }
    let want = Subject::for_manifest("", facts.manifest);
    let mut why = Vec::new();
    for s in facts.signatures {
        let what = format!("signature {}", s.source);
        match crate::verify::verify(&what, s.bytes, key, &want) {
            Ok(v) => match identity_ok(identity, facts.reference, &v.subject_name) {
                Ok(()) => return Ok(()),
                Err(e) => why.push(e),
            },
            Err(e) => why.push(e.to_string()),
        }
    }
    Err(format!(
        "no signature satisfies sigstoreSigned with key {}: {}",
        key.id(),
        why.join("; ")
    ))
}

/// Whether a signature claiming `signed` satisfies `identity` for the image `image`.
pub fn identity_ok(
    identity: &Identity,
    image: Option<&DockerRef>,
    signed: &str,
) -> Result<(), String> {
    let sig = DockerRef::parse(signed)
        .ok_or_else(|| format!("the signature's identity '{signed}' is not a docker reference"))?;
    let need_image = || {
        image.ok_or_else(|| {
            "the image has no name to compare the signature's identity with".to_string()
        })
    };
    let exact = |img: &DockerRef| -> Result<(), String> {
        match (img.identity(), sig.identity()) {
            (Some(a), Some(b)) if a == b => Ok(()),
            (Some(a), _) => Err(format!("the signature claims '{signed}', not '{a}' (signatures made by gcr and cosign name a repository only: use signedIdentity matchRepository or exactRepository)")),
            (None, _) => Err("the image reference has no tag or digest".into()),
        }
    };
    let repo_digest_or_exact = |img: &DockerRef| -> Result<(), String> {
        if img.digest.is_some() {
            return same_repo(&img.name, &sig, signed);
        }
        exact(img)
    };
    match identity {
        Identity::MatchExact {} => exact(need_image()?),
        Identity::MatchRepoDigestOrExact {} => repo_digest_or_exact(need_image()?),
        Identity::MatchRepository {} => same_repo(&need_image()?.name, &sig, signed),
        Identity::ExactReference { docker_reference } => {
            if sig.identity().as_deref() == Some(docker_reference.as_str()) {
                Ok(())
            } else {
                Err(format!(
                    "the signature claims '{signed}', not '{docker_reference}'"
                ))
            }
        }
        Identity::ExactRepository { docker_repository } => {
            same_repo(docker_repository, &sig, signed)
        }
        Identity::RemapIdentity {
            prefix,
            signed_prefix,
        } => {
            let img = need_image()?;
            let mapped = if img.name_has_prefix(prefix) {
                DockerRef {
                    name: format!("{signed_prefix}{}", &img.name[prefix.len()..]),
                    ..img.clone()
                }
            } else {
                img.clone()
            };
            repo_digest_or_exact(&mapped)
        }
    }
}

fn same_repo(want: &str, sig: &DockerRef, signed: &str) -> Result<(), String> {
    if sig.name == want {
        Ok(())
    } else {
        Err(format!(
            "the signature claims '{signed}', not repository '{want}'"
        ))
    }
}
