//! Downloading one blob: streamed into a staged file in the store's `tmp/`, size and
//! sha256 checked as it arrives; a broken or truncated transfer is retried from the start,
//! a wrong digest or an over-long body is final. Nothing reaches the CAS from here.

use super::transport::{describe, header, ReqBody, Transport};
use super::{short, Progress};
use crate::cas::Staged;
use crate::error::{RegistryError, Result};
use crate::media::Descriptor;
use std::io::Read;
use std::path::Path;

/// A progress sink for blobs not worth a bar (the config).
pub(crate) struct NoBar;
impl Progress for NoBar {
    fn begin(&self, _: &str, _: u64) {}
    fn advance(&self, _: &str, _: u64) {}
    fn end(&self, _: &str, _: &str) {}
    fn message(&self, _: &str) {}
}

/// Downloads one blob into a staged file, verifying size and digest; a broken transfer is
/// resumed with a `Range` request (or restarted when the registry ignores ranges).
pub(crate) fn fetch_blob(
    t: &Transport,
    tmp: &Path,
    repo: &str,
    d: &Descriptor,
    progress: &dyn Progress,
) -> Result<Staged> {
    let id = short(&d.digest);
    let mut attempt = 0;
    let mut partial: Option<Staged> = None;
    loop {
        if progress.cancelled() {
            return Err(cancelled(&d.digest));
        }
        progress.begin(&id, d.size);
        match fetch_once(t, tmp, repo, d, &id, progress, &mut partial) {
            Err(Retry(reason)) if attempt < 2 => {
                progress.message(&format!("{id}: {reason}; retrying"));
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(300 << attempt));
            }
            Err(Retry(reason)) => {
                return Err(RegistryError::protocol(
                    &t.host,
                    format!("downloading blob {} failed: {reason}", d.digest),
                ))
            }
            Ok(r) => return r,
        }
    }
}

struct Retry(String);

/// A download stopped because whoever asked for it left (an API client): nothing of it is
/// stored (its staged file goes).
fn cancelled(digest: &str) -> RegistryError {
    RegistryError::Cancelled(format!(
        "the download of blob {digest} was cancelled: its client left"
    ))
}

fn fetch_once(
    t: &Transport,
    tmp: &Path,
    repo: &str,
    d: &Descriptor,
    id: &str,
    progress: &dyn Progress,
    partial: &mut Option<Staged>,
) -> std::result::Result<Result<Staged>, Retry> {
    let have = partial.as_ref().map_or(0, |s| s.size);
    let range = format!("bytes={have}-");
    let headers: Vec<(&str, &str)> = if have > 0 {
        vec![("Range", range.as_str())]
    } else {
        Vec::new()
    };
    let mut resp = match t.send(
        "GET",
        &format!("/v2/{repo}/blobs/{}", d.digest),
        &headers,
        &ReqBody::Empty,
    ) {
        Ok(r) => r,
        Err(e) => return Ok(Err(e)),
    };
    if resp.status() == 404 {
        return Ok(Err(RegistryError::NotFound(format!(
            "blob {} not found in {}/{repo}; the image is incomplete on the registry",
            d.digest, t.host
        ))));
    }
    if !resp.status().is_success() {
        let m = describe(&mut resp);
        return Ok(Err(RegistryError::protocol(
            &t.host,
            format!("fetching blob {} failed with {m}", d.digest),
        )));
    }
    let resumed = have > 0
        && resp.status() == 206
        && header(&resp, "content-range").is_some_and(|r| r.starts_with(&format!("bytes {have}-")));
    if !resumed {
        *partial = None;
    }
    let offset = if resumed { have } else { 0 };
    if let Some(n) = resp.body().content_length() {
        if n + offset != d.size {
            return Ok(Err(RegistryError::protocol(
                &t.host,
                format!(
                    "blob {} is announced as {n} bytes but the manifest says {}",
                    d.digest, d.size
                ),
            )));
        }
    }
    if partial.is_none() {
        match Staged::new(tmp) {
            Ok(s) => *partial = Some(s),
            Err(e) => return Ok(Err(e)),
        }
    }
    let Some(staged) = partial.as_mut() else {
        return Ok(Err(RegistryError::Usage("no staging file".into())));
    };
    progress.advance(id, offset);
    let mut rd = resp.body_mut().as_reader();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        if progress.cancelled() {
            return Ok(Err(cancelled(&d.digest)));
        }
        let n = match rd.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                return Err(Retry(format!(
                    "the transfer broke after {} of {} bytes ({e})",
                    staged.size, d.size
                )))
            }
        };
        if staged.size + n as u64 > d.size {
            return Ok(Err(RegistryError::protocol(
                &t.host,
                format!(
                    "blob {} is longer than the {} bytes its manifest says; nothing was stored",
                    d.digest, d.size
                ),
            )));
        }
        if let Err(e) = staged.write(&buf[..n]) {
            return Ok(Err(e));
        }
        progress.advance(id, n as u64);
    }
    if staged.size < d.size {
        return Err(Retry(format!(
            "the blob was truncated at {} of {} bytes",
            staged.size, d.size
        )));
    }
    let actual = staged.digest();
    let staged = partial.take();
    if actual != d.digest {
        return Ok(Err(RegistryError::Digest {
            what: format!("blob from {}/{repo}", t.host),
            expected: d.digest.clone(),
            actual,
        }));
    }
    match staged {
        Some(s) => Ok(Ok(s)),
        None => Ok(Err(RegistryError::Usage("no staging file".into()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testreg::mock;
    use crate::client::transport::ConnectOptions;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Progress whose client leaves once the first bytes arrived.
    struct Leaves(AtomicBool);

    impl Progress for Leaves {
        fn begin(&self, _: &str, _: u64) {}
        fn advance(&self, _: &str, bytes: u64) {
            if bytes > 0 {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        fn end(&self, _: &str, _: &str) {}
        fn message(&self, _: &str) {}
        fn cancelled(&self) -> bool {
            self.0.load(Ordering::Relaxed)
        }
    }

    #[test]
    fn a_download_whose_client_leaves_stops_and_keeps_nothing() {
        let blob = vec![7u8; 4 << 20];
        let digest = crate::media::sha256(&blob);
        let path = format!("/v2/r/blobs/{digest}");
        let m = mock([(path, ("application/octet-stream".to_string(), blob.clone()))].into());
        let t = Transport::new(&m.host, vec![], &ConnectOptions::default()).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let d = Descriptor {
            media_type: "application/octet-stream".into(),
            digest: digest.clone(),
            size: blob.len() as u64,
            platform: None,
            artifact_type: None,
            annotations: None,
            data: None,
        };
        let left = Leaves(AtomicBool::new(false));
        let e = fetch_blob(&t, tmp.path(), "r", &d, &left)
            .err()
            .expect("cancelled");
        assert!(e.to_string().contains("cancelled"), "{e}");
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            0,
            "a staged file stayed"
        );
        // A client that stays gets the whole blob.
        let got = fetch_blob(&t, tmp.path(), "r", &d, &crate::client::NoProgress).unwrap();
        assert_eq!(got.size, blob.len() as u64);
    }
}
