//! TLS for a TCP address (`--tls`): the service presents its certificate and requires a
//! client certificate signed by the given CA, as `dockerd --tlsverify` does — the only way
//! the API is served beyond loopback. rustls with the ring provider; files in PEM (the
//! layout `docker --tlsverify` and `dockerd` use: ca.pem, cert.pem, key.pem).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::errors::ApiError;

/// The service's TLS files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificates that client certificates must chain to (`--tlscacert`).
    pub ca: PathBuf,
    /// The service's certificate chain (`--tlscert`).
    pub cert: PathBuf,
    /// The service's private key (`--tlskey`).
    pub key: PathBuf,
    /// Certificate revocation lists of the CA (`--tlscrl`, PEM): a client certificate
    /// listed there is refused.
    pub crl: Option<PathBuf>,
}

impl TlsFiles {
    /// Docker's defaults: `ca.pem`, `cert.pem` and `key.pem` in `dir` (`$DOCKER_CERT_PATH`
    /// or `~/.docker`).
    pub fn in_dir(dir: &Path) -> TlsFiles {
        TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            crl: None,
        }
    }
}

fn bad(file: &Path, what: &str, reason: impl std::fmt::Display) -> ApiError {
    ApiError::Tls(format!("{} ({what}): {reason}", file.display()))
}

fn certs(file: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, ApiError> {
    let all = CertificateDer::pem_file_iter(file)
        .map_err(|e| bad(file, what, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(file, what, e))?;
    if all.is_empty() {
        return Err(bad(file, what, "no PEM CERTIFICATE block in it"));
    }
    Ok(all)
}

/// The acceptor a TCP listener with TLS uses, made again from its files on SIGHUP (a renewed
/// certificate, a new CRL) without a restart; a reload that fails keeps the one in use.
pub(crate) struct Reloadable {
    files: TlsFiles,
    current: std::sync::RwLock<TlsAcceptor>,
}

impl Reloadable {
    pub(crate) fn new(files: &TlsFiles) -> Result<Reloadable, ApiError> {
        Ok(Reloadable {
            current: std::sync::RwLock::new(acceptor(files)?),
            files: files.clone(),
        })
    }

    /// The acceptor for the next connection.
    pub(crate) fn get(&self) -> TlsAcceptor {
        match self.current.read() {
            Ok(a) => a.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Reads the files again; on success the next connections use them.
    pub(crate) fn reload(&self) -> Result<(), ApiError> {
        let fresh = acceptor(&self.files)?;
        match self.current.write() {
            Ok(mut a) => *a = fresh,
            Err(p) => *p.into_inner() = fresh,
        }
        Ok(())
    }
}

/// Reads the files and makes the acceptor: TLS 1.2 and 1.3, ALPN `http/1.1`, a client
/// certificate required and verified against the CA.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, ApiError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in certs(&files.ca, "--tlscacert")? {
        roots.add(c).map_err(|e| bad(&files.ca, "--tlscacert", e))?;
    }
    let mut verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    if let Some(crl) = &files.crl {
        let crls = CertificateRevocationListDer::pem_file_iter(crl)
            .map_err(|e| bad(crl, "--tlscrl", e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(crl, "--tlscrl", e))?;
        if crls.is_empty() {
            return Err(bad(crl, "--tlscrl", "no PEM X509 CRL block in it"));
        }
        verifier = verifier.with_crls(crls);
    }
    let verifier = verifier.build().map_err(|e| {
        bad(
            files.crl.as_ref().unwrap_or(&files.ca),
            "--tlscacert/--tlscrl",
            e,
        )
    })?;
    let chain = certs(&files.cert, "--tlscert")?;
    let key =
        PrivateKeyDer::from_pem_file(&files.key).map_err(|e| bad(&files.key, "--tlskey", e))?;
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ApiError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| bad(&files.key, "--tlskey does not match --tlscert", e))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files_are_named() {
        let d = tempfile::tempdir().unwrap();
        let files = TlsFiles::in_dir(d.path());
        let e = acceptor(&files).err().unwrap().to_string();
        assert!(e.contains("ca.pem") && e.contains("--tlscacert"), "{e}");
        std::fs::write(&files.ca, "not pem\n").unwrap();
        let e = acceptor(&files).err().unwrap().to_string();
        assert!(e.contains("no PEM CERTIFICATE"), "{e}");
    }
}
