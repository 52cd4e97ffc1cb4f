//! The tag list of a repository without the referrers API, read once per pull: a referrer
//! whose `sha256-<hex>` fallback tag is not in it has no referrers of its own, so the walk
//! asks for no tag that does not exist (one request for a whole level instead of one per
//! referrer).

use crate::client::transport::{header, ReqBody, Transport};
use crate::media::MAX_MANIFEST;
use std::collections::HashSet;
use std::io::Read;

/// The repository's tags, or `None` when the registry does not give them whole in one
/// answer (an error, a paginated list, an oversized or unreadable one): the caller then
/// asks for each fallback tag instead.
pub(super) fn all_tags(t: &Transport, repo: &str) -> Option<HashSet<String>> {
    let mut resp = t
        .send(
            "GET",
            &format!("/v2/{repo}/tags/list"),
            &[("Accept", "application/json")],
            &ReqBody::Empty,
        )
        .ok()?;
    let complete = resp.status() == 200 && header(&resp, "link").is_none();
    let mut bytes = Vec::new();
    resp.body_mut()
        .as_reader()
        .take(MAX_MANIFEST + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    if !complete || bytes.len() as u64 > MAX_MANIFEST {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let tags = v.get("tags")?.as_array()?;
    Some(
        tags.iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
    )
}
