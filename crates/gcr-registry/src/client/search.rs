//! `gcr search` / `docker search`: finding repositories in a registry, and listing a
//! repository's tags.
//!
//! Docker Hub is searched through its index (`index.docker.io/v1/search`, names,
//! descriptions, stars). Any other registry is searched through the distribution spec's
//! catalog (`/v2/_catalog`, followed page by page through its `Link` headers): the
//! repositories whose name contains the term, named with their registry so that the
//! result can be pulled as it is. (dockerd asks every registry for the v1 search, which
//! registries built on the distribution spec do not serve; a registry without a catalog
//! is still asked for it.) Tags come from `/v2/NAME/tags/list`, paged the same way.

use super::transport::{describe, header, ConnectOptions, ReqBody, Transport};
use crate::error::{RegistryError, Result};

/// Repositories a catalog search reads at most (`n` per page, a page per request).
const CATALOG_MAX: usize = 100_000;
/// Entries asked for per page of a catalog or tag list.
const PAGE: usize = 1000;
/// Largest JSON answer read from a search, catalog page or tag list.
const MAX_ANSWER: u64 = 16 << 20;

/// One search result, in Docker's shape.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SearchHit {
    /// The repository: `busybox`, `user/app` (Docker Hub) or `HOST[:PORT]/path/name`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub star_count: u64,
    #[serde(default)]
    pub is_official: bool,
    #[serde(default)]
    pub is_automated: bool,
}

/// A search term split into its registry and the text looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// `docker.io` or `HOST[:PORT]`.
    pub registry: String,
    /// The text to find in repository names (may be empty: every repository).
    pub text: String,
}

impl Term {
    /// `busybox` is Docker Hub's; `localhost:5000/busy` and `quay.io/org` name their
    /// registry, as a reference does (a first part with a `.` or `:`, or `localhost`).
    pub fn parse(term: &str) -> Result<Term> {
        let term = term.trim();
        if term.is_empty() || term.contains(char::is_whitespace) || term.contains("://") {
            return Err(RegistryError::Usage(format!(
                "'{term}' is not a search term; give TEXT or REGISTRY/TEXT, e.g. busybox or localhost:5000/busy"
            )));
        }
        match term.split_once('/') {
            Some((host, rest))
                if host.contains('.') || host.contains(':') || host == "localhost" =>
            {
                let registry = match host {
                    "index.docker.io" | "registry-1.docker.io" => "docker.io",
                    h => h,
                };
                Ok(Term {
                    registry: registry.to_string(),
                    text: rest.to_string(),
                })
            }
            _ => Ok(Term {
                registry: "docker.io".into(),
                text: term.to_string(),
            }),
        }
    }
}

/// Searches `term`'s registry; at most `limit` results.
pub fn search(term: &Term, limit: usize, opts: &ConnectOptions) -> Result<Vec<SearchHit>> {
    if term.registry == "docker.io" {
        let t = Transport::new("docker.io", Vec::new(), opts)?;
        return v1_search(&t, "https://index.docker.io", &term.text, limit)?.ok_or_else(|| {
            RegistryError::protocol("docker.io", "its index answered the search with 404")
        });
    }
    let t = Transport::new(&term.registry, vec!["registry:catalog:*".into()], opts)?;
    let needle = term.text.to_lowercase();
    let mut hits = Vec::new();
    let Some(()) = each_page(&t, "/v2/_catalog", "repositories", CATALOG_MAX, |names| {
        for n in names {
            if n.to_lowercase().contains(&needle) && hits.len() < limit {
                hits.push(SearchHit {
                    name: format!("{}/{n}", term.registry),
                    description: String::new(),
                    star_count: 0,
                    is_official: false,
                    is_automated: false,
                });
            }
        }
        hits.len() < limit
    })?
    else {
        // No catalog: the registry may still serve the v1 search (Quay, older ones).
        let base = t.base.clone();
        return v1_search(&t, &base, &term.text, limit)?.ok_or_else(|| {
            RegistryError::NotFound(format!(
                "registry {} offers neither a catalog (/v2/_catalog) nor a search (/v1/search) to search in; pull by name, or list a repository's tags with 'gcr search --list-tags {}/NAME'",
                term.registry, term.registry
            ))
        });
    };
    Ok(hits)
}

/// The tags of `repository` (`HOST[:PORT]/path/name` or a Docker Hub name): the first
/// `limit` the registry lists, sorted (the spec asks registries for lexical order; Debian's
/// docker-registry answers in its own).
pub fn list_tags(repository: &str, limit: usize, opts: &ConnectOptions) -> Result<Vec<String>> {
    let r = gcr_core::Reference::parse(repository).map_err(|e| {
        RegistryError::Usage(format!(
            "'{repository}' is not a repository name ({e}); give REGISTRY/NAME, e.g. localhost:5000/busybox"
        ))
    })?;
    let (registry, repo) = (r.registry().to_string(), r.repository().to_string());
    let t = Transport::new(&registry, vec![format!("repository:{repo}:pull")], opts)?;
    let mut tags = Vec::new();
    let found = each_page(
        &t,
        &format!("/v2/{repo}/tags/list"),
        "tags",
        limit,
        |page| {
            tags.extend(page.take(limit - tags.len()));
            tags.len() < limit
        },
    )?;
    match found {
        Some(()) => {
            tags.sort_unstable();
            Ok(tags)
        }
        None => Err(RegistryError::NotFound(format!(
            "repository {repo} is not in registry {registry}; check the name"
        ))),
    }
}

/// GETs a paged list (`path?n=PAGE`, then each `Link: <...>; rel="next"`), giving `each`
/// the strings of field `key` page by page until it returns false, `max` entries were
/// read, or the pages end. None when the registry answers the first page with 404.
fn each_page(
    t: &Transport,
    path: &str,
    key: &str,
    max: usize,
    mut each: impl FnMut(&mut dyn Iterator<Item = String>) -> bool,
) -> Result<Option<()>> {
    let mut url = format!("{path}?n={PAGE}");
    let mut read = 0usize;
    let mut first = true;
    loop {
        let mut resp = get(t, &url)?;
        let status = resp.status().as_u16();
        if first && status == 404 {
            return Ok(None);
        }
        first = false;
        if status != 200 {
            return Err(RegistryError::protocol(
                &t.host,
                format!("listing {path} failed with {}", describe(&mut resp)),
            ));
        }
        let next = header(&resp, "link").and_then(next_link);
        let mut v = read_json(&mut resp, &t.host, path)?;
        let list = match v.get_mut(key).map(serde_json::Value::take) {
            Some(serde_json::Value::Array(a)) => a,
            Some(serde_json::Value::Null) | None => Vec::new(),
            Some(_) => {
                return Err(RegistryError::protocol(
                    &t.host,
                    format!("its answer to {path} has a '{key}' that is not a list"),
                ))
            }
        };
        let n = list.len();
        read += n;
        let mut names = list
            .into_iter()
            .filter_map(|x| x.as_str().map(str::to_string));
        let more = each(&mut names);
        match next {
            Some(u) if more && n > 0 && read < max => url = u,
            _ => return Ok(Some(())),
        }
    }
}

/// The URL of a `Link` header's `rel="next"` entry.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        let url = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| url.to_string())
    })
}

/// A GET asking for JSON.
fn get(t: &Transport, url: &str) -> Result<ureq::http::Response<ureq::Body>> {
    t.send(
        "GET",
        url,
        &[("Accept", "application/json")],
        &ReqBody::Empty,
    )
}

fn read_json(
    resp: &mut ureq::http::Response<ureq::Body>,
    host: &str,
    what: &str,
) -> Result<serde_json::Value> {
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_vec()
        .map_err(|e| RegistryError::protocol(host, format!("reading its answer to {what}: {e}")))?;
    serde_json::from_slice(&body).map_err(|e| {
        RegistryError::protocol(host, format!("its answer to {what} is not JSON ({e})"))
    })
}

/// The v1 search (`GET BASE/v1/search?q=TEXT&n=LIMIT`); None on 404.
fn v1_search(
    t: &Transport,
    base: &str,
    text: &str,
    limit: usize,
) -> Result<Option<Vec<SearchHit>>> {
    let url = format!(
        "{base}/v1/search?q={}&n={}",
        percent_encode(text),
        limit.clamp(1, 100)
    );
    let mut resp = get(t, &url)?;
    match resp.status().as_u16() {
        404 => return Ok(None),
        200 => {}
        _ => {
            return Err(RegistryError::protocol(
                &t.host,
                format!("its search failed with {}", describe(&mut resp)),
            ))
        }
    }
    let v = read_json(&mut resp, &t.host, "/v1/search")?;
    let results = v.get("results").cloned().unwrap_or_default();
    let mut hits: Vec<SearchHit> = serde_json::from_value(results).map_err(|e| {
        RegistryError::protocol(&t.host, format!("its search results do not decode ({e})"))
    })?;
    hits.truncate(limit);
    Ok(Some(hits))
}

/// A query parameter's value, percent-encoded (unreserved characters kept).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_name_their_registry_like_references() {
        let t = |s: &str| Term::parse(s).unwrap();
        assert_eq!(t("busybox").registry, "docker.io");
        assert_eq!(t("library/busybox").text, "library/busybox");
        assert_eq!(t("library/busybox").registry, "docker.io");
        let l = t("localhost:5000/busy");
        assert_eq!(
            (l.registry.as_str(), l.text.as_str()),
            ("localhost:5000", "busy")
        );
        assert_eq!(t("quay.io/org/app").text, "org/app");
        assert_eq!(t("localhost/").text, "");
        assert_eq!(t("index.docker.io/nginx").registry, "docker.io");
        for bad in ["", "  ", "a b", "http://x/y"] {
            assert!(Term::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn next_links_are_found() {
        assert_eq!(
            next_link("</v2/_catalog?last=b&n=2>; rel=\"next\"").as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(
            next_link("<https://x/a?n=1>; rel=\"prev\", <https://x/b?n=1>; rel=\"next\"")
                .as_deref(),
            Some("https://x/b?n=1")
        );
        assert_eq!(next_link("</v2/x>; rel=\"prev\""), None);
        assert_eq!(next_link("garbage"), None);
    }

    fn routes(list: &[(&str, &str)]) -> std::collections::HashMap<String, (String, Vec<u8>)> {
        list.iter()
            .map(|(path, body)| {
                // The mock writes the content type as given: a Link header rides along.
                let (path, ctype) = match path.split_once(" LINK ") {
                    Some((p, next)) => (
                        p.to_string(),
                        format!("application/json\r\nLink: <{next}>; rel=\"next\""),
                    ),
                    None => (path.to_string(), "application/json".to_string()),
                };
                (path, (ctype, body.as_bytes().to_vec()))
            })
            .collect()
    }

    fn term(host: &str, text: &str) -> Term {
        Term::parse(&format!("{host}/{text}")).unwrap()
    }

    #[test]
    fn a_catalog_is_searched_page_by_page() {
        let m = super::super::testreg::mock(routes(&[
            (
                "/v2/_catalog?n=1000 LINK /v2/_catalog?last=b%2Fx&n=1000",
                r#"{"repositories":["a/busy","b/x"]}"#,
            ),
            (
                "/v2/_catalog?last=b%2Fx&n=1000",
                r#"{"repositories":["c/BusyBox","d/y"]}"#,
            ),
        ]));
        let o = ConnectOptions::default();
        let hits = search(&term(&m.host, "busy"), 25, &o).unwrap();
        let names: Vec<&str> = hits.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            [
                format!("{}/a/busy", m.host),
                format!("{}/c/BusyBox", m.host)
            ]
        );
        assert_eq!(hits[0].star_count, 0);
        assert!(!hits[0].is_official);
        // Every repository for an empty text; a limit met stops the paging.
        assert_eq!(search(&term(&m.host, ""), 25, &o).unwrap().len(), 4);
        m.log.lock().unwrap().clear();
        assert_eq!(search(&term(&m.host, ""), 1, &o).unwrap().len(), 1);
        assert_eq!(*m.log.lock().unwrap(), ["/v2/_catalog?n=1000"]);
    }

    #[test]
    fn without_a_catalog_the_v1_search_is_asked() {
        let m = super::super::testreg::mock(routes(&[(
            "/v1/search?q=web&n=2",
            r#"{"num_results":3,"query":"web","results":[
                {"name":"org/web","description":"A web app","star_count":7,"is_official":true},
                {"name":"org/app","star_count":1},
                {"name":"org/more"}]}"#,
        )]));
        let hits = search(&term(&m.host, "web"), 2, &ConnectOptions::default()).unwrap();
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].name, "org/web");
        assert_eq!(hits[0].description, "A web app");
        assert_eq!((hits[0].star_count, hits[0].is_official), (7, true));
        let none = super::super::testreg::mock(routes(&[]));
        let e = search(&term(&none.host, "x"), 5, &ConnectOptions::default()).unwrap_err();
        assert!(e.to_string().contains("neither a catalog"), "{e}");
    }

    #[test]
    fn tags_are_listed_and_a_missing_repository_named() {
        let m = super::super::testreg::mock(routes(&[
            (
                "/v2/app/tags/list?n=1000 LINK /v2/app/tags/list?last=2&n=1000",
                r#"{"name":"app","tags":["1","2"]}"#,
            ),
            (
                "/v2/app/tags/list?last=2&n=1000",
                r#"{"name":"app","tags":["3"]}"#,
            ),
        ]));
        let o = ConnectOptions::default();
        let repo = format!("{}/app", m.host);
        assert_eq!(list_tags(&repo, 100, &o).unwrap(), ["1", "2", "3"]);
        assert_eq!(list_tags(&repo, 2, &o).unwrap(), ["1", "2"]);
        let e = list_tags(&format!("{}/nope", m.host), 9, &o).unwrap_err();
        assert!(
            e.to_string().contains("repository nope is not in registry"),
            "{e}"
        );
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(percent_encode("a b/c&d"), "a%20b%2Fc%26d");
        assert_eq!(percent_encode("busy-box_1.0~"), "busy-box_1.0~");
    }
}
