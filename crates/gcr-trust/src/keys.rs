//! Ed25519 keys: generation, PEM encoding (private keys PKCS#8, encrypted with a password
//! as PKCS#8 PBES2 when one is given; public keys PKIX SubjectPublicKeyInfo), decoding with
//! a clear refusal of anything else (RSA, ECDSA, OpenSSH, damaged PEM, a wrong password),
//! and the key id.
//!
//! The key id is securesystemslib's: the lowercase hex SHA-256 of the canonical JSON of the
//! key's public metadata, `{"keytype":"ed25519","keyval":{"public":"<hex of the 32-byte
//! key>"},"scheme":"ed25519"}`. `SSlibKey.from_crypto` computes the same value for the
//! same PEM, and gcr puts it in the DSSE signature's `keyid` and the Sigstore bundle's
//! `publicKey.hint`.

use ed25519_dalek::pkcs8::{DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use pkcs8::der::pem::LineEnding;
use pkcs8::der::Decode;
use pkcs8::pkcs5::pbes2;
use pkcs8::{EncryptedPrivateKeyInfo, ObjectIdentifier, PrivateKeyInfo, SubjectPublicKeyInfoRef};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Result, TrustError};

const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_ED448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.113");
const OID_X25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.110");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.34");

/// The largest key file read (a PEM Ed25519 key is about 120 bytes).
pub const MAX_KEY_FILE: u64 = 64 * 1024;

/// An Ed25519 public key and its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    id: String,
}

/// An Ed25519 private key (zeroized on drop).
pub struct PrivateKey {
    key: SigningKey,
}

impl std::fmt::Debug for PrivateKey {
    /// Shows the public key id only, never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({})", self.public().id())
    }
}

/// The PEM label and DER body of `pem`; `what` names the file in errors.
fn decode_pem(what: &str, pem: &[u8]) -> Result<(String, Zeroizing<Vec<u8>>)> {
    let bad = |reason: String| TrustError::BadPem {
        what: what.to_string(),
        reason,
    };
    let text = std::str::from_utf8(pem).map_err(|_| bad("it is not text".into()))?;
    let start = text
        .find("-----BEGIN ")
        .ok_or_else(|| bad("no -----BEGIN line".into()))?;
    let (label, der) = pkcs8::der::pem::decode_vec(text[start..].trim_end().as_bytes())
        .map_err(|e| bad(e.to_string()))?;
    Ok((label.to_string(), Zeroizing::new(der)))
}

/// The name of a key algorithm other than Ed25519, for the refusal.
fn algorithm_name(oid: ObjectIdentifier, params: Option<ObjectIdentifier>) -> String {
    match oid {
        o if o == OID_RSA || o == OID_RSA_PSS => "an RSA".into(),
        o if o == OID_EC => match params {
            Some(p) if p == OID_P256 => "an ECDSA P-256".into(),
            Some(p) if p == OID_P384 => "an ECDSA P-384".into(),
            _ => "an ECDSA".into(),
        },
        o if o == OID_ED448 => "an Ed448".into(),
        o if o == OID_X25519 => "an X25519".into(),
        o => format!("a {o}"),
    }
}

fn wrong_algorithm(what: &str, alg: impl Into<String>) -> TrustError {
    TrustError::WrongAlgorithm {
        what: what.to_string(),
        alg: alg.into(),
    }
}

/// Refuses PEM labels of key formats gcr does not read, naming them.
fn refuse_label(what: &str, label: &str) -> TrustError {
    match label {
        "RSA PRIVATE KEY" | "RSA PUBLIC KEY" => wrong_algorithm(what, "an RSA"),
        "EC PRIVATE KEY" => wrong_algorithm(what, "an ECDSA"),
        "OPENSSH PRIVATE KEY" => TrustError::BadPem {
            what: what.to_string(),
            reason: "it is an OpenSSH key; convert it with `ssh-keygen -p -m PKCS8 -f FILE`".into(),
        },
        other => TrustError::BadPem {
            what: what.to_string(),
            reason: format!(
                "its label is '{other}', not PRIVATE KEY, ENCRYPTED PRIVATE KEY or PUBLIC KEY"
            ),
        },
    }
}

impl PublicKey {
    fn new(key: VerifyingKey) -> PublicKey {
        let id = key_id(&key.to_bytes());
        PublicKey { key, id }
    }

    /// Reads a PKIX `PUBLIC KEY` PEM, or the public half of an unencrypted PKCS#8 private
    /// key PEM.
    pub fn from_pem(what: &str, pem: &[u8]) -> Result<PublicKey> {
        let (label, der) = decode_pem(what, pem)?;
        match label.as_str() {
            "PUBLIC KEY" => {
                let spki =
                    SubjectPublicKeyInfoRef::from_der(&der).map_err(|e| TrustError::BadPem {
                        what: what.to_string(),
                        reason: e.to_string(),
                    })?;
                let oid = spki.algorithm.oid;
                if oid != OID_ED25519 {
                    let params = spki.algorithm.parameters_oid().ok();
                    return Err(wrong_algorithm(what, algorithm_name(oid, params)));
                }
                let key =
                    VerifyingKey::from_public_key_der(&der).map_err(|e| TrustError::BadPem {
                        what: what.to_string(),
                        reason: e.to_string(),
                    })?;
                Ok(PublicKey::new(key))
            }
            "PRIVATE KEY" => Ok(PrivateKey::from_pem(what, pem, None)?.public()),
            "ENCRYPTED PRIVATE KEY" => Err(TrustError::BadPem {
                what: what.to_string(),
                reason: "it is an encrypted private key, and verifying needs the public key; \
                         export it with `gcr key export` or `openssl pkey -pubout`"
                    .into(),
            }),
            other => Err(refuse_label(what, other)),
        }
    }

    /// The PKIX PEM form.
    pub fn to_pem(&self) -> String {
        // Encoding a 32-byte key into a fixed structure cannot fail; an empty string would
        // make any later parse fail loudly rather than panic here.
        self.key
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// The securesystemslib key id (see the module documentation).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The raw 32-byte key in hex, as securesystemslib's `keyval.public`.
    pub fn raw_hex(&self) -> String {
        hex::encode(self.key.to_bytes())
    }

    /// True when `sig` is a valid Ed25519 signature of `msg` by this key (strict: no small
    /// order keys, canonical `s`).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(sig) else {
            return false;
        };
        self.key.verify_strict(msg, &sig).is_ok()
    }
}

/// securesystemslib's key id of a raw Ed25519 public key.
pub fn key_id(raw: &[u8; 32]) -> String {
    let meta = serde_json::json!({
        "keytype": "ed25519",
        "scheme": "ed25519",
        "keyval": { "public": hex::encode(raw) },
    });
    // Strings and objects only: canonicalization cannot fail.
    let bytes = crate::canonical::to_vec("key metadata", &meta).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

impl PrivateKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> PrivateKey {
        PrivateKey {
            key: SigningKey::generate(&mut rand_core::OsRng),
        }
    }

    /// Reads a PKCS#8 PEM private key, decrypting an `ENCRYPTED PRIVATE KEY` with
    /// `password` (refused without one; a password for a plain key is ignored here).
    pub fn from_pem(what: &str, pem: &[u8], password: Option<&[u8]>) -> Result<PrivateKey> {
        let (label, der) = decode_pem(what, pem)?;
        let plain: Zeroizing<Vec<u8>> = match label.as_str() {
            "PRIVATE KEY" => der,
            "ENCRYPTED PRIVATE KEY" => {
                let Some(password) = password else {
                    return Err(TrustError::PasswordNeeded(what.to_string()));
                };
                let info =
                    EncryptedPrivateKeyInfo::from_der(&der).map_err(|e| TrustError::BadPem {
                        what: what.to_string(),
                        reason: e.to_string(),
                    })?;
                let doc = info
                    .decrypt(password)
                    .map_err(|_| TrustError::WrongPassword(what.to_string()))?;
                Zeroizing::new(doc.as_bytes().to_vec())
            }
            "PUBLIC KEY" => {
                return Err(TrustError::BadPem {
                    what: what.to_string(),
                    reason: "it holds only a public key, and signing needs the private key".into(),
                })
            }
            other => return Err(refuse_label(what, other)),
        };
        let info = PrivateKeyInfo::from_der(&plain).map_err(|e| TrustError::BadPem {
            what: what.to_string(),
            reason: e.to_string(),
        })?;
        if info.algorithm.oid != OID_ED25519 {
            let params = info.algorithm.parameters_oid().ok();
            return Err(wrong_algorithm(
                what,
                algorithm_name(info.algorithm.oid, params),
            ));
        }
        let key = SigningKey::try_from(info).map_err(|e| TrustError::BadPem {
            what: what.to_string(),
            reason: e.to_string(),
        })?;
        Ok(PrivateKey { key })
    }

    /// The PKCS#8 PEM form: `PRIVATE KEY`, or `ENCRYPTED PRIVATE KEY` (PBES2: scrypt
    /// log2 N = 14, r = 8, p = 1, and AES-256-CBC) when a password is given. `name` names
    /// the key in errors.
    pub fn to_pem(&self, name: &str, password: Option<&[u8]>) -> Result<Zeroizing<String>> {
        let enc = |e: pkcs8::Error| TrustError::Encrypt {
            name: name.to_string(),
            reason: e.to_string(),
        };
        // A version-1 structure (no public key inside), as `openssl genpkey` writes.
        let bytes = KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        };
        let doc = bytes.to_pkcs8_der().map_err(enc)?;
        let pem = match password {
            None => doc.to_pem("PRIVATE KEY", LineEnding::LF),
            Some(pw) => {
                use rand_core::RngCore;
                let info = PrivateKeyInfo::from_der(doc.as_bytes()).map_err(|e| enc(e.into()))?;
                let mut salt = [0u8; 16];
                let mut iv = [0u8; 16];
                rand_core::OsRng.fill_bytes(&mut salt);
                rand_core::OsRng.fill_bytes(&mut iv);
                let params = pbes2::Parameters::scrypt_aes256cbc(scrypt_params(), &salt, &iv)
                    .map_err(|e| enc(e.into()))?;
                info.encrypt_with_params(params, pw)
                    .map_err(enc)?
                    .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
            }
        };
        pem.map_err(|e| enc(e.into()))
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey::new(self.key.verifying_key())
    }

    /// The Ed25519 signature of `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }
}

/// scrypt's cost for encrypted keys: 16 MiB of memory, tens of milliseconds. (N = 2^15
/// would need 32 MiB, just above OpenSSL's default limit, and OpenSSL could not open it.)
fn scrypt_params() -> pkcs8::pkcs5::scrypt::Params {
    pkcs8::pkcs5::scrypt::Params::new(14, 8, 1, 32)
        .unwrap_or_else(|_| pkcs8::pkcs5::scrypt::Params::recommended())
}

/// True when `pem` is an encrypted PKCS#8 private key (by its label).
pub fn is_encrypted(pem: &[u8]) -> bool {
    pem.windows(29)
        .any(|w| w == b"BEGIN ENCRYPTED PRIVATE KEY--")
}

#[cfg(test)]
mod tests;
