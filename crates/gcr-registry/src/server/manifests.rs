//! Manifest endpoints (GET/HEAD/PUT/DELETE by tag or digest), tag list, catalog and the
//! referrers API. A manifest is accepted only when it is valid JSON of a known type, at
//! most 4 MiB, matches the digest it is put under, and every blob or child manifest it
//! references is already in the repository.

use super::http::{body_error, paginate, Reply, Req};
use super::{db, Ctx};
use crate::cas;
use crate::error::Result;
use crate::media::{self, Parsed, MAX_MANIFEST};

fn unknown(repo: &str, reference: &str) -> Reply {
    Reply::error(
        404,
        "MANIFEST_UNKNOWN",
        &format!("manifest '{reference}' is not in repository '{repo}'"),
    )
}

pub(crate) fn get(ctx: &Ctx<'_>, repo: &str, reference: &str) -> Result<Reply> {
    let Some(m) = db::manifest(ctx.store, repo, reference)? else {
        return Ok(unknown(repo, reference));
    };
    let Ok(bytes) = ctx.store.read_blob(&m.digest) else {
        return Ok(unknown(repo, reference));
    };
    Ok(Reply::new(200)
        .header("Content-Type", m.media_type)
        .header("Docker-Content-Digest", m.digest)
        .bytes(bytes))
}

pub(crate) fn put(ctx: &Ctx<'_>, req: &mut Req, repo: &str, reference: &str) -> Result<Reply> {
    let is_digest = reference.contains(':');
    if is_digest && !media::valid_digest(reference) {
        return Ok(Reply::error(
            400,
            "DIGEST_INVALID",
            &format!("'{reference}' is not a sha256 digest"),
        ));
    }
    if !is_digest && !gcr_core::reference::is_valid_tag(reference) {
        return Ok(Reply::error(
            400,
            "TAG_INVALID",
            &format!("'{reference}' is not a valid tag"),
        ));
    }
    let bytes = match req.body_limited(MAX_MANIFEST) {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Ok(Reply::error(
                413,
                "SIZE_INVALID",
                "the manifest is over the 4 MiB limit",
            ));
        }
        Err(e) => return Ok(body_error(&e)),
    };
    let digest = media::sha256(&bytes);
    if is_digest && digest != reference {
        return Ok(Reply::error(
            400,
            "DIGEST_INVALID",
            &format!("the manifest hashes to {digest}, not {reference}"),
        ));
    }
    let ctype = req.header("Content-Type");
    let (media_type, parsed) = match media::parse_manifest(&bytes, ctype.as_deref()) {
        Ok(p) => p,
        Err(e) => return Ok(Reply::error(400, "MANIFEST_INVALID", &e)),
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let (subject, artifact_type) = match &parsed {
        Parsed::Image {
            config,
            layers,
            subject,
            artifact_type,
        } => {
            for d in std::iter::once(config).chain(layers) {
                if !db::has_blob(ctx.store, repo, &d.digest)? {
                    return Ok(Reply::error(
                        400,
                        "MANIFEST_BLOB_UNKNOWN",
                        &format!(
                            "blob {} is not in repository '{repo}'; upload it first",
                            d.digest
                        ),
                    ));
                }
            }
            let at = artifact_type
                .clone()
                .or_else(|| Some(config.media_type.clone()));
            (subject.as_ref().map(|s| s.digest.clone()), at)
        }
        Parsed::Index { manifests } => {
            for d in manifests {
                if db::manifest(ctx.store, repo, &d.digest)?.is_none() {
                    return Ok(Reply::error(
                        400,
                        "MANIFEST_UNKNOWN",
                        &format!(
                            "child manifest {} is not in repository '{repo}'; push it first",
                            d.digest
                        ),
                    ));
                }
            }
            let subject = v
                .get("subject")
                .and_then(|s| s.get("digest"))
                .and_then(|d| d.as_str())
                .map(str::to_string);
            let at = v
                .get("artifactType")
                .and_then(|s| s.as_str())
                .map(str::to_string);
            (subject, at)
        }
    };
    let annotations = v
        .get("annotations")
        .filter(|a| a.is_object())
        .map(|a| a.to_string());
    cas::put_bytes(ctx.store, &bytes, &digest)?;
    db::put_manifest(
        ctx.store,
        &db::NewManifest {
            repo,
            digest: &digest,
            media_type: &media_type,
            size: bytes.len() as u64,
            subject: subject.as_deref(),
            artifact_type: artifact_type.as_deref(),
            annotations,
            tag: (!is_digest).then_some(reference),
        },
    )?;
    let mut r = Reply::new(201)
        .header("Location", format!("/v2/{repo}/manifests/{digest}"))
        .header("Docker-Content-Digest", &digest);
    if let Some(s) = subject {
        r = r.header("OCI-Subject", s);
    }
    Ok(r)
}

pub(crate) fn delete(ctx: &Ctx<'_>, repo: &str, reference: &str) -> Result<Reply> {
    if db::delete_manifest(ctx.store, repo, reference)? {
        Ok(Reply::new(202))
    } else {
        Ok(unknown(repo, reference))
    }
}

fn link_next(path: &str, n: usize, last: &str) -> String {
    format!("<{path}?n={n}&last={last}>; rel=\"next\"")
}

pub(crate) fn tags(ctx: &Ctx<'_>, req: &Req, repo: &str) -> Result<Reply> {
    let Some(all) = db::tags(ctx.store, repo)? else {
        return Ok(Reply::error(
            404,
            "NAME_UNKNOWN",
            &format!("repository '{repo}' is not known"),
        ));
    };
    let (page, next) = paginate(all, req);
    let n = page.len();
    let body = serde_json::json!({"name": repo, "tags": page});
    let mut r = Reply::json(200, serde_json::to_vec(&body).unwrap_or_default());
    if let Some(l) = next {
        r = r.header("Link", link_next(&format!("/v2/{repo}/tags/list"), n, &l));
    }
    Ok(r)
}

pub(crate) fn catalog(ctx: &Ctx<'_>, req: &Req) -> Reply {
    let all = match db::repositories(ctx.store) {
        Ok(v) => v,
        Err(e) => return Reply::error(500, "UNKNOWN", &e.to_string()),
    };
    let all: Vec<String> = all.into_iter().filter(|r| ctx.may_read(r)).collect();
    let (page, next) = paginate(all, req);
    let n = page.len();
    let body = serde_json::json!({"repositories": page});
    let mut r = Reply::json(200, serde_json::to_vec(&body).unwrap_or_default());
    if let Some(l) = next {
        r = r.header("Link", link_next("/v2/_catalog", n, &l));
    }
    r
}

pub(crate) fn referrers(ctx: &Ctx<'_>, req: &Req, repo: &str, digest: &str) -> Result<Reply> {
    if !media::valid_digest(digest) {
        return Ok(Reply::error(
            400,
            "DIGEST_INVALID",
            &format!("'{digest}' is not a sha256 digest"),
        ));
    }
    let filter = req.query("artifactType").map(str::to_string);
    let mut list = Vec::new();
    for m in db::referrers(ctx.store, repo, digest)? {
        if filter.is_some() && m.artifact_type != filter {
            continue;
        }
        let mut d =
            serde_json::json!({"mediaType": m.media_type, "digest": m.digest, "size": m.size});
        if let Some(a) = &m.artifact_type {
            d["artifactType"] = serde_json::Value::String(a.clone());
        }
        if let Some(a) = m
            .annotations
            .as_deref()
            .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
        {
            d["annotations"] = a;
        }
        // A small referrer (a signature) travels in the listing itself (descriptor
        // `data`): a client then needs no request for its manifest.
        if m.size <= gcr_store::MAX_EMBEDDED as u64 {
            if let Some(data) = ctx
                .store
                .read_blob(&m.digest)
                .ok()
                .and_then(|b| gcr_store::embed(&b))
            {
                d["data"] = serde_json::Value::String(data);
            }
        }
        list.push(d);
    }
    let body =
        serde_json::json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": list});
    let mut r = Reply::new(200)
        .header("Content-Type", media::OCI_INDEX)
        .bytes(serde_json::to_vec(&body).unwrap_or_default());
    if filter.is_some() {
        r = r.header("OCI-Filters-Applied", "artifactType");
    }
    Ok(r)
}
