//! The key store: named Ed25519 keys under `<root>/keys/` (a 0700 directory). A key NAME is
//! `NAME.pub` (PKIX PEM) and, unless only its public half was imported, `NAME.key`
//! (PKCS#8 PEM, encrypted when it was made or imported with a password), both mode 0600.
//! Files are written to a temporary name, fsynced and linked into place (never over an
//! existing key), so a failed or concurrent command leaves either a whole key or nothing.
//! Everything is checked before the first write: a refused key writes nothing.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::{Result, TrustError};
use crate::keys::{is_encrypted, PrivateKey, PublicKey, MAX_KEY_FILE};

/// A key as `gcr key list` shows it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyInfo {
    pub name: String,
    #[serde(rename = "KeyID")]
    pub key_id: String,
    pub algorithm: &'static str,
    /// True when the private key is stored (the key can sign).
    pub private: bool,
    /// True when the stored private key is password-encrypted.
    pub encrypted: bool,
}

/// The key store of one gcr root.
pub struct KeyStore {
    dir: PathBuf,
}

/// Checks a key name: 1 to 64 of `[A-Za-z0-9._-]`, starting with a letter or digit.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(TrustError::BadKeyName(name.to_string()))
    }
}

/// Reads a key file of at most [`MAX_KEY_FILE`] bytes.
pub fn read_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    use std::io::Read;
    let f = fs::File::open(path).map_err(|e| TrustError::io("read key file", path, e))?;
    let mut buf = Zeroizing::new(Vec::new());
    f.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| TrustError::io("read key file", path, e))?;
    if buf.len() as u64 > MAX_KEY_FILE {
        return Err(TrustError::BadPem {
            what: format!("key file {}", path.display()),
            reason: "it is larger than 64 KiB".into(),
        });
    }
    Ok(buf)
}

impl KeyStore {
    /// The key store of the gcr root `root` (nothing is created until a key is written).
    pub fn new(root: &Path) -> KeyStore {
        KeyStore {
            dir: root.join("keys"),
        }
    }

    fn path(&self, name: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{name}.{ext}"))
    }

    /// True when a key of this name exists.
    pub fn exists(&self, name: &str) -> bool {
        check_name(name).is_ok() && self.path(name, "pub").exists()
    }

    /// Makes a new key; encrypts its private half with `password` when given.
    pub fn generate(&self, name: &str, password: Option<&[u8]>) -> Result<KeyInfo> {
        check_name(name)?;
        if password.is_some_and(<[u8]>::is_empty) {
            return Err(TrustError::EmptyPassword(format!("key '{name}'")));
        }
        self.refuse_existing(name)?;
        let key = PrivateKey::generate();
        let pem = key.to_pem(name, password)?;
        let public = key.public();
        self.write_pair(name, Some(pem.as_bytes()), &public)?;
        Ok(self.info(name, &public, true, password.is_some()))
    }

    /// Imports a PEM key file's bytes (`what` names the file): an Ed25519 PKCS#8 private
    /// key (encrypted ones need `password`, which must open them) or a PKIX public key.
    pub fn import(
        &self,
        name: &str,
        what: &str,
        pem: &[u8],
        password: Option<&[u8]>,
    ) -> Result<KeyInfo> {
        check_name(name)?;
        self.refuse_existing(name)?;
        let text = String::from_utf8_lossy(pem);
        let is_private = text.contains("PRIVATE KEY-----");
        let encrypted = is_encrypted(pem);
        if password.is_some() && !encrypted {
            return Err(TrustError::PasswordUnused(what.to_string()));
        }
        if password.is_some_and(<[u8]>::is_empty) {
            return Err(TrustError::EmptyPassword(what.to_string()));
        }
        if is_private {
            let key = PrivateKey::from_pem(what, pem, password)?;
            let public = key.public();
            // A plain key is stored in gcr's own form; an encrypted one as it came (it
            // opened with the password, and re-encrypting would change its parameters).
            let stored = if encrypted {
                Zeroizing::new(String::from_utf8_lossy(pem).into_owned())
            } else {
                key.to_pem(name, None)?
            };
            self.write_pair(name, Some(stored.as_bytes()), &public)?;
            Ok(self.info(name, &public, true, encrypted))
        } else {
            let public = PublicKey::from_pem(what, pem)?;
            self.write_pair(name, None, &public)?;
            Ok(self.info(name, &public, false, false))
        }
    }

    /// The public key of NAME.
    pub fn public(&self, name: &str) -> Result<PublicKey> {
        check_name(name)?;
        let p = self.path(name, "pub");
        let pem = match read_key_file(&p) {
            Err(TrustError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(TrustError::KeyNotFound(name.to_string()))
            }
            other => other?,
        };
        PublicKey::from_pem(&format!("public key '{name}'"), &pem)
    }

    /// True when NAME's private key is stored encrypted (a password is needed to sign).
    pub fn is_encrypted(&self, name: &str) -> Result<bool> {
        Ok(is_encrypted(&self.private_pem(name)?))
    }

    fn private_pem(&self, name: &str) -> Result<Zeroizing<Vec<u8>>> {
        check_name(name)?;
        match read_key_file(&self.path(name, "key")) {
            Err(TrustError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                if self.path(name, "pub").exists() {
                    Err(TrustError::NoPrivateKey(name.to_string()))
                } else {
                    Err(TrustError::KeyNotFound(name.to_string()))
                }
            }
            other => other,
        }
    }

    /// The private key of NAME, decrypted with `password` if it is encrypted.
    pub fn private(&self, name: &str, password: Option<&[u8]>) -> Result<PrivateKey> {
        let pem = self.private_pem(name)?;
        PrivateKey::from_pem(&format!("private key '{name}'"), &pem, password)
    }

    /// Every key, by name.
    pub fn list(&self) -> Result<Vec<KeyInfo>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(TrustError::io("read the key directory", &self.dir, e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter_map(|n| n.strip_suffix(".pub").map(str::to_string))
            .filter(|n| check_name(n).is_ok())
            .collect();
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let public = self.public(&name)?;
            let (private, encrypted) = match self.private_pem(&name) {
                Ok(pem) => (true, is_encrypted(&pem)),
                Err(_) => (false, false),
            };
            out.push(self.info(&name, &public, private, encrypted));
        }
        Ok(out)
    }

    /// The name of the stored key with this id, if any.
    pub fn name_of(&self, key_id: &str) -> Option<String> {
        self.list()
            .ok()?
            .into_iter()
            .find(|k| k.key_id == key_id)
            .map(|k| k.name)
    }

    /// Removes NAME (both halves).
    pub fn remove(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let mut found = false;
        for ext in ["key", "pub"] {
            let p = self.path(name, ext);
            match fs::remove_file(&p) {
                Ok(()) => found = true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(TrustError::io("remove", p, e)),
            }
        }
        if !found {
            return Err(TrustError::KeyNotFound(name.to_string()));
        }
        sync_dir(&self.dir);
        Ok(())
    }

    fn info(&self, name: &str, public: &PublicKey, private: bool, encrypted: bool) -> KeyInfo {
        KeyInfo {
            name: name.to_string(),
            key_id: public.id().to_string(),
            algorithm: "ed25519",
            private,
            encrypted,
        }
    }

    fn refuse_existing(&self, name: &str) -> Result<()> {
        if self.path(name, "pub").exists() || self.path(name, "key").exists() {
            return Err(TrustError::KeyExists(name.to_string()));
        }
        Ok(())
    }

    /// Makes the 0700 key directory (tightening an existing one).
    fn make_dir(&self) -> Result<()> {
        match fs::DirBuilder::new().mode(0o700).create(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let meta = fs::metadata(&self.dir)
                    .map_err(|e| TrustError::io("read the key directory", &self.dir, e))?;
                if meta.permissions().mode() & 0o077 != 0 {
                    fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
                        .map_err(|e| TrustError::io("restrict the key directory", &self.dir, e))?;
                }
                Ok(())
            }
            Err(e) => Err(TrustError::io("create the key directory", &self.dir, e)),
        }
    }

    /// Writes the private half (if any), then the public half; a key that cannot be
    /// completed is removed again.
    fn write_pair(&self, name: &str, private: Option<&[u8]>, public: &PublicKey) -> Result<()> {
        self.make_dir()?;
        if let Some(pem) = private {
            self.write_new(name, "key", pem)?;
        }
        if let Err(e) = self.write_new(name, "pub", public.to_pem().as_bytes()) {
            if private.is_some() {
                let _ = fs::remove_file(self.path(name, "key"));
            }
            return Err(e);
        }
        sync_dir(&self.dir);
        Ok(())
    }

    /// Writes `data` as NAME.EXT, mode 0600, refusing to replace an existing file.
    fn write_new(&self, name: &str, ext: &str, data: &[u8]) -> Result<()> {
        let dest = self.path(name, ext);
        let tmp = self
            .dir
            .join(format!(".{name}.{ext}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(data)?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(TrustError::io("write key file", &dest, e));
        }
        let linked = fs::hard_link(&tmp, &dest);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(TrustError::KeyExists(name.to_string()))
            }
            Err(e) => Err(TrustError::io("write key file", &dest, e)),
        }
    }
}

/// Makes the directory's entries durable (best effort: the files themselves are synced).
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests;
