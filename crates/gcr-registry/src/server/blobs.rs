//! Blob endpoints: GET/HEAD/DELETE of blobs linked to a repository, and uploads —
//! monolithic (`POST ?digest=`), chunked (`POST`, `PATCH`..., `PUT ?digest=`) and
//! cross-repository mounts (`POST ?mount=&from=`). Upload data is hashed as it arrives
//! into a staged file and enters the CAS only when the final digest matches. At most 256
//! uploads are open at once.

use super::http::{body_error, Reply, Req};
use super::{db, Ctx};
use crate::cas::Staged;
use crate::error::Result;
use crate::media::valid_digest;
use std::io::Read;

/// Uploads in progress at most (each holds an open temp file); more are refused with 429
/// until some finish or expire.
const MAX_UPLOADS: usize = 256;
/// When the upload table is full, uploads untouched this long are dropped (with their
/// staged data) to make room.
const UPLOAD_EXPIRY: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// An upload in progress.
pub(crate) struct Upload {
    repo: String,
    staged: Staged,
    touched: std::time::Instant,
}

type Uploads = std::collections::HashMap<String, Upload>;

fn uploads<'a>(ctx: &'a Ctx<'_>) -> std::sync::MutexGuard<'a, Uploads> {
    ctx.shared.uploads.lock().unwrap_or_else(|e| e.into_inner())
}

fn new_id() -> String {
    let mut b = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    crate::media::sha256(&[&b[..], &t.to_le_bytes()].concat())[7..39].to_string()
}

fn blob_unknown(d: &str) -> Reply {
    Reply::error(
        404,
        "BLOB_UNKNOWN",
        &format!("blob {d} is not in this repository"),
    )
}

fn created(repo: &str, digest: &str) -> Reply {
    Reply::new(201)
        .header("Location", format!("/v2/{repo}/blobs/{digest}"))
        .header("Docker-Content-Digest", digest)
}

fn accepted(repo: &str, id: &str, size: u64) -> Reply {
    let range = if size == 0 {
        "0-0".to_string()
    } else {
        format!("0-{}", size - 1)
    };
    Reply::new(202)
        .header("Location", format!("/v2/{repo}/blobs/uploads/{id}"))
        .header("Range", range)
        .header("Docker-Upload-UUID", id)
}

/// Parses `bytes=START-[END]` against a blob of `size` bytes: `(start, len)`.
fn parse_range(h: &str, size: u64) -> Option<(u64, u64)> {
    let (a, b) = h.trim().strip_prefix("bytes=")?.split_once('-')?;
    let start: u64 = a.trim().parse().ok()?;
    let end: u64 = match b.trim() {
        "" => size.checked_sub(1)?,
        e => e.parse::<u64>().ok()?.min(size.checked_sub(1)?),
    };
    (start <= end).then(|| (start, end - start + 1))
}

pub(crate) fn get(ctx: &Ctx<'_>, req: &Req, repo: &str, digest: &str) -> Result<Reply> {
    if !valid_digest(digest) {
        return Ok(Reply::error(
            400,
            "DIGEST_INVALID",
            &format!("'{digest}' is not a sha256 digest"),
        ));
    }
    if !db::has_blob(ctx.store, repo, digest)? {
        return Ok(blob_unknown(digest));
    }
    let mut f = match ctx.store.open_blob(digest) {
        Ok(f) => f,
        Err(_) => return Ok(blob_unknown(digest)),
    };
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    if let Some(h) = req.header("Range").filter(|_| req.method == "GET") {
        let Some((start, len)) = parse_range(&h, size) else {
            return Ok(Reply::error(
                416,
                "BLOB_UNKNOWN",
                &format!("range '{h}' is not within the blob's {size} bytes"),
            )
            .header("Content-Range", format!("bytes */{size}")));
        };
        use std::io::Seek;
        f.seek(std::io::SeekFrom::Start(start))
            .map_err(|e| crate::error::RegistryError::io("cannot seek in blob", digest, e))?;
        let mut r = Reply::new(206)
            .header("Content-Type", "application/octet-stream")
            .header("Docker-Content-Digest", digest)
            .header(
                "Content-Range",
                format!("bytes {start}-{}/{size}", start + len - 1),
            );
        r.body = super::http::Body::Part(f.take(len), len as usize);
        return Ok(r);
    }
    Ok(Reply::new(200)
        .header("Content-Type", "application/octet-stream")
        .header("Docker-Content-Digest", digest)
        .file(f))
}

pub(crate) fn delete(ctx: &Ctx<'_>, repo: &str, digest: &str) -> Result<Reply> {
    if db::unlink_blob(ctx.store, repo, digest)? {
        Ok(Reply::new(202).header("Docker-Content-Digest", digest))
    } else {
        Ok(blob_unknown(digest))
    }
}

/// Appends the request body to a staged blob; Err(reply) when the body cannot be read
/// (cut short, too slow, too large or malformed).
fn append(req: &mut Req, s: &mut Staged) -> Result<std::result::Result<(), Reply>> {
    let body = req.body();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => return Ok(Ok(())),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Ok(Err(body_error(&e))),
        };
        s.write(&buf[..n])?;
    }
}

/// Checks and commits a finished upload.
fn complete(ctx: &Ctx<'_>, repo: &str, s: Staged, digest: &str) -> Result<Reply> {
    let actual = s.digest();
    if actual != digest {
        return Ok(Reply::error(
            400,
            "DIGEST_INVALID",
            &format!("the uploaded content hashes to {actual}, not {digest}; nothing was stored"),
        ));
    }
    s.commit(ctx.store, digest)?;
    db::link_blob(ctx.store, repo, digest)?;
    Ok(created(repo, digest))
}

pub(crate) fn start(ctx: &Ctx<'_>, req: &mut Req, repo: &str) -> Result<Reply> {
    if let (Some(d), Some(from)) = (req.query("mount"), req.query("from")) {
        let (d, from) = (d.to_string(), from.to_string());
        if valid_digest(&d)
            && ctx.may_read(&from)
            && db::has_blob(ctx.store, &from, &d)?
            && ctx.store.has_blob(&d)
        {
            db::link_blob(ctx.store, repo, &d)?;
            return Ok(created(repo, &d));
        }
    }
    let mut s = Staged::new(&ctx.shared.tmp)?;
    if let Some(d) = req.query("digest").map(str::to_string) {
        if !valid_digest(&d) {
            return Ok(Reply::error(
                400,
                "DIGEST_INVALID",
                &format!("'{d}' is not a sha256 digest"),
            ));
        }
        if let Err(r) = append(req, &mut s)? {
            return Ok(r);
        }
        return complete(ctx, repo, s, &d);
    }
    {
        let mut g = uploads(ctx);
        if g.len() >= MAX_UPLOADS {
            g.retain(|_, u| u.touched.elapsed() < UPLOAD_EXPIRY);
        }
        if g.len() >= MAX_UPLOADS {
            return Ok(Reply::error(
                429,
                "TOOMANYREQUESTS",
                &format!("{MAX_UPLOADS} uploads are in progress; finish or cancel some first"),
            ));
        }
    }
    // A POST may carry a first chunk (ignored by most clients); keep it.
    if let Err(r) = append(req, &mut s)? {
        return Ok(r);
    }
    let id = new_id();
    let size = s.size;
    put_back(
        ctx,
        &id,
        Upload {
            repo: repo.to_string(),
            staged: s,
            touched: std::time::Instant::now(),
        },
    );
    Ok(accepted(repo, &id, size))
}

fn take(ctx: &Ctx<'_>, repo: &str, id: &str) -> Option<Upload> {
    let mut g = uploads(ctx);
    match g.get(id) {
        Some(u) if u.repo == repo => g.remove(id),
        _ => None,
    }
}

fn put_back(ctx: &Ctx<'_>, id: &str, mut u: Upload) {
    u.touched = std::time::Instant::now();
    uploads(ctx).insert(id.to_string(), u);
}

fn upload_unknown(id: &str) -> Reply {
    Reply::error(
        404,
        "BLOB_UPLOAD_UNKNOWN",
        &format!("upload '{id}' is unknown or in use; start a new upload"),
    )
}

pub(crate) fn patch(ctx: &Ctx<'_>, req: &mut Req, repo: &str, id: &str) -> Result<Reply> {
    let Some(mut u) = take(ctx, repo, id) else {
        return Ok(upload_unknown(id));
    };
    if let Some(range) = req.header("Content-Range") {
        let start = range
            .trim()
            .trim_start_matches("bytes ")
            .split('-')
            .next()
            .and_then(|s| s.trim().parse::<u64>().ok());
        if start != Some(u.staged.size) {
            let size = u.staged.size;
            put_back(ctx, id, u);
            return Ok(Reply::error(
                416,
                "BLOB_UPLOAD_INVALID",
                &format!("chunk must start at byte {size}"),
            )
            .header("Location", format!("/v2/{repo}/blobs/uploads/{id}"))
            .header(
                "Range",
                if size == 0 {
                    "0-0".into()
                } else {
                    format!("0-{}", size - 1)
                },
            ));
        }
    }
    if let Err(r) = append(req, &mut u.staged)? {
        return Ok(r);
    }
    let size = u.staged.size;
    put_back(ctx, id, u);
    Ok(accepted(repo, id, size))
}

pub(crate) fn finish(ctx: &Ctx<'_>, req: &mut Req, repo: &str, id: &str) -> Result<Reply> {
    let Some(d) = req.query("digest").map(str::to_string) else {
        return Ok(Reply::error(
            400,
            "DIGEST_INVALID",
            "the final PUT of an upload needs ?digest=",
        ));
    };
    if !valid_digest(&d) {
        return Ok(Reply::error(
            400,
            "DIGEST_INVALID",
            &format!("'{d}' is not a sha256 digest"),
        ));
    }
    let Some(mut u) = take(ctx, repo, id) else {
        return Ok(upload_unknown(id));
    };
    if let Err(r) = append(req, &mut u.staged)? {
        return Ok(r);
    }
    complete(ctx, repo, u.staged, &d)
}

pub(crate) fn status(ctx: &Ctx<'_>, repo: &str, id: &str) -> Result<Reply> {
    let Some(u) = take(ctx, repo, id) else {
        return Ok(upload_unknown(id));
    };
    let size = u.staged.size;
    put_back(ctx, id, u);
    let mut r = accepted(repo, id, size);
    r.status = 204;
    Ok(r)
}

pub(crate) fn cancel(ctx: &Ctx<'_>, repo: &str, id: &str) -> Result<Reply> {
    match take(ctx, repo, id) {
        Some(_) => Ok(Reply::new(204)),
        None => Ok(upload_unknown(id)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ranges() {
        assert_eq!(super::parse_range("bytes=0-", 10), Some((0, 10)));
        assert_eq!(super::parse_range("bytes=4-5", 10), Some((4, 2)));
        assert_eq!(super::parse_range("bytes=4-100", 10), Some((4, 6)));
        assert_eq!(super::parse_range("bytes=10-", 10), None);
        assert_eq!(super::parse_range("bytes=0-", 0), None);
        assert_eq!(super::parse_range("items=0-1", 10), None);
    }
}
