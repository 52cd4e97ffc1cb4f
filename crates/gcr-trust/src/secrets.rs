//! Secrets at rest: the store's secrets key and the AEAD that seals values under it.
//!
//! The key is 32 random bytes (getrandom) in `<root>/secrets.key`, a regular file owned by
//! the caller with mode 0600 inside the 0700 store root, made at first use: written to a
//! temporary name, fsynced and hard-linked into place, so concurrent first uses agree on
//! one key. A key file that others could read (any group or other bit), that another user
//! owns, that is a symlink or that is not exactly 32 bytes is refused, never repaired.
//!
//! A value is sealed with XChaCha20-Poly1305 (RustCrypto): a fresh random 24-byte nonce per
//! seal, the secret's name and id as associated data (so a sealed value moved to another
//! row does not open), stored as `nonce || ciphertext || tag`. Opened values and the key
//! are [`Zeroizing`] buffers, wiped when dropped. [`SecretsKey::keyed_digest`] is a BLAKE3
//! keyed hash under a key derived from the secrets key: it changes when a value changes
//! but reveals nothing about a low-entropy value (a plain digest would).

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

/// The key file's name in the store root.
pub const KEY_FILE: &str = "secrets.key";
/// Bytes of the nonce that starts a sealed value.
pub const NONCE_LEN: usize = 24;
/// Bytes of the Poly1305 tag that ends it.
pub const TAG_LEN: usize = 16;

/// What can go wrong with the secrets key or a sealed value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the secrets key {} is readable by other users (mode {mode:04o}); it must be mode 0600: run `chmod 600 {}` if nobody else read it, else remove it and create the secrets again", path.display(), path.display())]
    KeyOpen { path: PathBuf, mode: u32 },
    #[error("the secrets key {} belongs to uid {owner}, not to this user (uid {me}); run gcr as the store's owner", path.display())]
    KeyOwner { path: PathBuf, owner: u32, me: u32 },
    #[error("the secrets key {} is not a regular file of 32 bytes; restore it from a backup, or remove it and create the secrets again", path.display())]
    KeyDamaged { path: PathBuf },
    #[error("cannot {action} {}: {source}; check its permissions and the free space", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the value of secret '{0}' does not decrypt with this store's secrets key: the key or the database was changed; remove the secret and create it again")]
    Open(String),
    #[error("cannot encrypt secret '{0}'; try again")]
    Seal(String),
}

fn io(action: &'static str, path: &Path, source: std::io::Error) -> SecretError {
    SecretError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The store's secrets key, wiped from memory when dropped.
pub struct SecretsKey {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(..)")
    }
}

/// The associated data of a sealed value: a domain tag, the name and the id.
fn associated_data(name: &str, id: &str) -> Vec<u8> {
    let mut ad = Vec::with_capacity(16 + name.len() + id.len());
    ad.extend_from_slice(b"gcr-secret-v1\0");
    ad.extend_from_slice(name.as_bytes());
    ad.push(0);
    ad.extend_from_slice(id.as_bytes());
    ad
}

impl SecretsKey {
    /// A key from its 32 bytes (tests, and callers holding a key already).
    pub fn from_bytes(bytes: [u8; 32]) -> SecretsKey {
        SecretsKey {
            key: Zeroizing::new(bytes),
        }
    }

    /// The key of the store at `root`, made (0600, random) when there is none yet.
    pub fn open_or_create(root: &Path) -> Result<SecretsKey, SecretError> {
        let path = root.join(KEY_FILE);
        match SecretsKey::open(&path) {
            Err(SecretError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                SecretsKey::create(root, &path)?;
                SecretsKey::open(&path)
            }
            r => r,
        }
    }

    /// Reads and checks the key file at `path`.
    pub fn open(path: &Path) -> Result<SecretsKey, SecretError> {
        let mut f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => SecretError::KeyDamaged {
                    path: path.to_path_buf(),
                },
                _ => io("read the secrets key", path, e),
            })?;
        let md = f
            .metadata()
            .map_err(|e| io("read the secrets key", path, e))?;
        // SAFETY: geteuid has no failure mode.
        let me = unsafe { libc::geteuid() };
        if md.uid() != me {
            return Err(SecretError::KeyOwner {
                path: path.to_path_buf(),
                owner: md.uid(),
                me,
            });
        }
        if md.mode() & 0o077 != 0 {
            return Err(SecretError::KeyOpen {
                path: path.to_path_buf(),
                mode: md.mode() & 0o7777,
            });
        }
        if !md.is_file() || md.len() != 32 {
            return Err(SecretError::KeyDamaged {
                path: path.to_path_buf(),
            });
        }
        let mut key = Zeroizing::new([0u8; 32]);
        f.read_exact(&mut key[..])
            .map_err(|e| io("read the secrets key", path, e))?;
        Ok(SecretsKey { key })
    }

    /// Writes a new random key to `path` unless another process made one meanwhile.
    fn create(root: &Path, path: &Path) -> Result<(), SecretError> {
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.try_fill_bytes(&mut key[..]).map_err(|e| {
            io(
                "get random bytes for",
                path,
                std::io::Error::other(e.to_string()),
            )
        })?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tmp = root.join(format!(".{KEY_FILE}-{}-{nanos}", std::process::id()));
        let written = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&tmp)?;
            f.write_all(&key[..])?;
            f.sync_all()?;
            match fs::hard_link(&tmp, path) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
                _ => Ok(()),
            }
        })();
        let _ = fs::remove_file(&tmp);
        written.map_err(|e| io("write the secrets key", path, e))?;
        if let Ok(d) = fs::File::open(root) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&*self.key).into())
    }

    /// Seals `value` of the secret `name` with id `id`: `nonce || ciphertext || tag`.
    pub fn seal(&self, name: &str, id: &str, value: &[u8]) -> Result<Vec<u8>, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|_| SecretError::Seal(name.to_string()))?;
        let ad = associated_data(name, id);
        let ct = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value,
                    aad: &ad,
                },
            )
            .map_err(|_| SecretError::Seal(name.to_string()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens a value sealed by [`SecretsKey::seal`] for the same name and id.
    pub fn open_sealed(
        &self,
        name: &str,
        id: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SecretError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(SecretError::Open(name.to_string()));
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let ad = associated_data(name, id);
        self.cipher()
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &ad })
            .map(Zeroizing::new)
            .map_err(|_| SecretError::Open(name.to_string()))
    }

    /// A keyed BLAKE3 hash of `value` for `purpose` (e.g. a build cache key): equal values
    /// give equal digests under one store's key, and the digest tells nothing about the value.
    pub fn keyed_digest(&self, purpose: &str, value: &[u8]) -> String {
        let context = format!("gcr secrets keyed digest v1 {purpose}");
        let sub = Zeroizing::new(blake3::derive_key(&context, &self.key[..]));
        format!("blake3-keyed:{}", blake3::keyed_hash(&sub, value).to_hex())
    }
}

#[cfg(test)]
#[path = "secrets_tests.rs"]
mod tests;
