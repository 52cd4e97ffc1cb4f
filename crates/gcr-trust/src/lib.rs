//! gcr-trust: what makes an image trustworthy, in the ecosystem's own formats. It owns
//! Ed25519 keys (PKCS#8 and PKIX PEM, optionally password-encrypted, with
//! securesystemslib-compatible key ids) and their store under `<root>/keys/`, DSSE
//! envelopes (the pre-authentication encoding, signing and verification), in-toto
//! Statement v1 payloads, Sigstore bundles v0.3 that wrap them, and the check that a
//! bundle is a valid signature by a given key over an exact manifest. Every signed payload
//! is canonical JSON (RFC 8785). It does no I/O outside the key store: the engine reads
//! images and referrers from gcr-store and hands the bytes here.

pub mod bundle;
pub mod canonical;
pub mod dsse;
mod error;
pub mod keys;
pub mod keystore;
pub mod ledger;
pub mod minicontainer;
pub mod policy;
pub mod secrets;
pub mod statement;
pub mod verify;

pub use bundle::{BUNDLE_MEDIA_TYPE, DSSE_MEDIA_TYPE};
pub use error::{Result, TrustError};
pub use keys::{PrivateKey, PublicKey};
pub use keystore::{KeyInfo, KeyStore};
pub use secrets::{SecretError, SecretsKey};
pub use statement::{Subject, STATEMENT_V1};
pub use verify::Verified;
