//! The service's options as arguments, for the gcr binary to re-execute itself into a
//! process that serves without having run its command-line parser (`gcr __service ...`):
//! clap builds gcr's whole command tree, and the code pages that touches (about 3 MB)
//! would otherwise stay resident for the life of the daemon. The same pid, stdio and
//! environment carry on through the execve.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::errors::ApiError;
use crate::listen::Host;
use crate::server::ServiceOptions;
use crate::tls::TlsFiles;

/// How many arguments [`ServiceOptions::to_args`] makes.
const COUNT: usize = 13;

impl ServiceOptions {
    /// root, run dir, host, group, TLS CA, certificate and key, JSONL socket (empty: none),
    /// TLS CRL (empty: none), webhook URL, types (comma-separated) and secret file (empty:
    /// none), insecure registries (comma-separated).
    pub fn to_args(&self) -> Vec<OsString> {
        let host = match &self.host {
            Host::Unix(p) => {
                let mut s = OsString::from("unix://");
                s.push(p.as_os_str());
                s
            }
            Host::Tcp(a) => OsString::from(format!("tcp://{a}")),
        };
        let hook = self.webhook.as_ref();
        let tls = |f: fn(&TlsFiles) -> &PathBuf| {
            self.tls
                .as_ref()
                .map(|t| f(t).as_os_str().to_owned())
                .unwrap_or_default()
        };
        vec![
            self.root.clone().into_os_string(),
            self.run_dir.clone().into_os_string(),
            host,
            OsString::from(self.group.clone().unwrap_or_default()),
            tls(|t| &t.ca),
            tls(|t| &t.cert),
            tls(|t| &t.key),
            self.jsonl
                .clone()
                .map(PathBuf::into_os_string)
                .unwrap_or_default(),
            self.tls
                .as_ref()
                .and_then(|t| t.crl.clone())
                .map(PathBuf::into_os_string)
                .unwrap_or_default(),
            hook.map(|w| OsString::from(&w.url)).unwrap_or_default(),
            hook.map(|w| OsString::from(w.types.join(",")))
                .unwrap_or_default(),
            hook.and_then(|w| w.secret.clone())
                .map(PathBuf::into_os_string)
                .unwrap_or_default(),
            OsString::from(self.insecure_registries.join(",")),
        ]
    }

    /// The options [`ServiceOptions::to_args`] wrote.
    pub fn from_args(a: &[OsString]) -> Result<ServiceOptions, ApiError> {
        if a.len() != COUNT {
            return Err(ApiError::BadHost(format!(
                "gcr __service takes {COUNT} arguments (it is started by gcr system service)"
            )));
        }
        let path = |s: &OsString| PathBuf::from(s);
        let some = |s: &OsString| (!s.is_empty()).then(|| PathBuf::from(s));
        let tls = match (some(&a[4]), some(&a[5]), some(&a[6])) {
            (Some(ca), Some(cert), Some(key)) => Some(TlsFiles {
                ca,
                cert,
                key,
                crl: some(&a[8]),
            }),
            _ => None,
        };
        let raw = a[2].as_bytes();
        let host = match raw.strip_prefix(b"unix://") {
            Some(p) => Host::Unix(PathBuf::from(OsStr::from_bytes(p))),
            None => Host::parse(&String::from_utf8_lossy(raw), tls.is_some())?,
        };
        Ok(ServiceOptions {
            root: path(&a[0]),
            run_dir: path(&a[1]),
            host,
            group: Some(a[3].to_string_lossy().into_owned()).filter(|g| !g.is_empty()),
            tls,
            jsonl: some(&a[7]),
            webhook: (!a[9].is_empty()).then(|| crate::WebhookOptions {
                url: a[9].to_string_lossy().into_owned(),
                types: a[10]
                    .to_string_lossy()
                    .split(',')
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect(),
                secret: some(&a[11]),
            }),
            insecure_registries: a[12]
                .to_string_lossy()
                .split(',')
                .filter(|h| !h.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn options_round_trip() {
        let unix = ServiceOptions {
            root: PathBuf::from("/var/lib/gcr"),
            run_dir: PathBuf::from(OsString::from_vec(b"/run/g\xffcr".to_vec())),
            host: Host::Unix(PathBuf::from("/run/gcr/gcr.sock")),
            group: Some("docker".into()),
            tls: None,
            jsonl: Some(PathBuf::from("/run/gcr/gcr.jsonl.sock")),
            webhook: Some(crate::WebhookOptions {
                url: "https://hooks.example/gcr".into(),
                types: vec!["run_state".into(), "deploy.applied".into()],
                secret: Some("/etc/gcr/hook.key".into()),
            }),
            insecure_registries: vec!["10.0.0.5:5000".into(), "registry.lan".into()],
        };
        let tcp = ServiceOptions {
            host: Host::Tcp("0.0.0.0:2376".parse().unwrap()),
            group: None,
            tls: Some(TlsFiles {
                ca: "/c/ca.pem".into(),
                cert: "/c/cert.pem".into(),
                key: "/c/key.pem".into(),
                crl: Some("/c/crl.pem".into()),
            }),
            jsonl: None,
            webhook: None,
            insecure_registries: Vec::new(),
            ..unix.clone()
        };
        for o in [unix, tcp] {
            let back = ServiceOptions::from_args(&o.to_args()).unwrap();
            assert_eq!(format!("{back:?}"), format!("{o:?}"));
        }
        assert!(ServiceOptions::from_args(&[]).is_err());
    }
}
