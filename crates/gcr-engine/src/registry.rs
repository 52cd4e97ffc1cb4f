//! Registry commands in the engine: `pull`, `push`, `login`, `logout` and `registry serve`,
//! delegated to gcr-registry on the engine's store. The CLI uses the types re-exported here.

use crate::{Engine, EngineError};

pub use gcr_registry::auth::Credentials;
pub use gcr_registry::media::Platform;
pub use gcr_registry::server::ServeOptions;
pub use gcr_registry::{
    ConnectOptions, NoProgress, Progress, PullOptions, PullReport, PushReport, SearchHit,
};

fn err(e: gcr_registry::RegistryError) -> EngineError {
    if matches!(
        e,
        gcr_registry::RegistryError::Unauthorized { .. }
            | gcr_registry::RegistryError::LoginRefused { .. }
    ) {
        EngineError::Unauthorized(e.to_string())
    } else if e.is_usage() {
        EngineError::Usage(e.to_string())
    } else if e.is_not_found() {
        EngineError::NotFound(e.to_string())
    } else {
        EngineError::Internal(e.to_string())
    }
}

/// The registry part of a reference the user typed as a login target
/// (`localhost:5000`, `https://host/`, `docker.io`).
pub fn login_host(server: &str) -> Result<String, EngineError> {
    let s = server
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(EngineError::Usage(format!(
            "'{server}' is not a registry host; give HOST[:PORT]"
        )));
    }
    Ok(match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        h => h.to_string(),
    })
}

impl Engine {
    /// `gcr pull`.
    pub fn pull(
        &self,
        reference: &str,
        opts: &PullOptions,
        progress: &dyn Progress,
    ) -> Result<PullReport, EngineError> {
        // The policy first: a rejected reference fetches nothing.
        if !self.gate_pull_before(reference)? {
            let report =
                gcr_registry::pull(self.store()?, reference, opts, progress).map_err(err)?;
            self.record_fetch(&report)?;
            return Ok(report);
        }
        // sigstoreSigned: the signatures come along and are checked once the image is in;
        // a refused image is taken out again (its name goes back to what it named before).
        let before = self.store()?.resolve_image(reference).ok().map(|r| r.id);
        let opts = PullOptions {
            no_referrers: false,
            ..opts.clone()
        };
        let report = gcr_registry::pull(self.store()?, reference, &opts, progress).map_err(err)?;
        self.record_fetch(&report)?;
        if let Err(e) = self.gate_pull_after(reference, &report.id) {
            if before.as_deref() != Some(report.id.as_str()) {
                let store = self.store()?;
                match &before {
                    Some(old) => {
                        let _ = store.tag(old, &report.reference);
                        let _ = store.remove_image(&report.id, false);
                    }
                    None => {
                        // An image the store had under other names keeps them (a pull by
                        // digest names no tag: then only an image with no name goes).
                        let tags = store.image_tags(&report.id).unwrap_or_default();
                        if tags.iter().all(|t| *t == report.reference) {
                            let _ = store.remove_image(&report.id, true);
                        } else if tags.contains(&report.reference) {
                            let _ = store.remove_image(&report.reference, false);
                        }
                    }
                }
            }
            return Err(e);
        }
        Ok(report)
    }

    /// Records the bytes a pull downloaded (an image `fetch` event whose cause is
    /// `fetch: N bytes`; `/metrics`' `gcr_pull_bytes_total` sums them). A pull that
    /// downloaded nothing records nothing.
    fn record_fetch(&self, report: &PullReport) -> Result<(), EngineError> {
        if report.bytes == 0 {
            return Ok(());
        }
        crate::container::record::event(
            self.store()?.conn(),
            "image",
            &report.id,
            &report.reference,
            None,
            Some("fetch"),
            &format!("fetch: {} bytes", report.bytes),
        )
    }

    /// `gcr push`.
    pub fn push(
        &self,
        image: &str,
        dest: Option<&str>,
        opts: &ConnectOptions,
        progress: &dyn Progress,
    ) -> Result<PushReport, EngineError> {
        let store = self.store()?;
        let report = gcr_registry::push(store, image, dest, opts, progress).map_err(err)?;
        // The audit ledger records the push (the reference and digest the registry holds).
        crate::container::record::event(
            store.conn(),
            "image",
            &report.digest,
            &report.reference,
            None,
            Some("push"),
            image,
        )?;
        Ok(report)
    }

    /// `gcr login`: checks the credentials against the registry, then saves them; returns
    /// the credentials file.
    pub fn login(
        &self,
        server: &str,
        creds: Credentials,
        insecure: bool,
    ) -> Result<std::path::PathBuf, EngineError> {
        let host = login_host(server)?;
        gcr_registry::login(&host, creds, insecure).map_err(err)
    }

    /// `POST /auth` (docker login through the API): checks the credentials against the
    /// registry's `/v2/` as [`Engine::login`] does, and saves nothing (the client keeps
    /// them). Refused credentials are [`EngineError::Unauthorized`] with Docker's sentence.
    pub fn check_login(&self, server: &str, creds: &Credentials) -> Result<(), EngineError> {
        let host = login_host(server)?;
        gcr_registry::check_login(&host, creds, false).map_err(|e| match e {
            gcr_registry::RegistryError::Unauthorized { host, reason } => {
                EngineError::Unauthorized(format!("login attempt to {host} failed: {reason}"))
            }
            e => err(e),
        })
    }

    /// `gcr logout`: false when no credentials were saved for the host.
    pub fn logout(&self, server: &str) -> Result<bool, EngineError> {
        let host = login_host(server)?;
        gcr_registry::auth::remove(&host).map_err(err)
    }
}

/// What a search keeps (Docker's filters `stars`, `is-official`, `is-automated`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFilter {
    pub min_stars: u64,
    pub official: Option<bool>,
    pub automated: Option<bool>,
}

impl SearchFilter {
    /// From `KEY=VALUE` pairs; an unknown key or a bad value is a usage error naming it.
    pub fn parse(pairs: &[(String, String)]) -> Result<SearchFilter, EngineError> {
        let mut f = SearchFilter::default();
        let boolean = |k: &str, v: &str| match v {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(EngineError::Usage(format!(
                "invalid filter '{k}={v}': use {k}=true or {k}=false"
            ))),
        };
        for (k, v) in pairs {
            match k.as_str() {
                "stars" => {
                    f.min_stars = v.parse().map_err(|_| {
                        EngineError::Usage(format!(
                            "invalid filter 'stars={v}': give a number of stars, e.g. stars=3"
                        ))
                    })?
                }
                "is-official" => f.official = Some(boolean(k, v)?),
                "is-automated" => f.automated = Some(boolean(k, v)?),
                _ => {
                    return Err(EngineError::Usage(format!(
                    "invalid filter '{k}': a search filters by stars, is-official and is-automated"
                )))
                }
            }
        }
        Ok(f)
    }

    fn keeps(&self, h: &SearchHit) -> bool {
        h.star_count >= self.min_stars
            && self.official.is_none_or(|o| o == h.is_official)
            && self.automated.is_none_or(|a| a == h.is_automated)
    }
}

/// The registry a search term names (`docker.io` for a bare text); empty for a bad term.
pub fn search_registry(term: &str) -> String {
    gcr_registry::SearchTerm::parse(term)
        .map(|t| t.registry)
        .unwrap_or_default()
}

/// The default and largest number of search results (Docker's).
pub const SEARCH_LIMIT: (usize, usize) = (25, 100);

impl Engine {
    /// `gcr search` / `GET /images/search`: the repositories of a registry whose name
    /// holds the term (`busybox` searches Docker Hub, `localhost:5000/busy` that
    /// registry), at most `limit` (1 to 100), filtered. Reads nothing from the store.
    pub fn search(
        &self,
        term: &str,
        limit: usize,
        filter: &SearchFilter,
        opts: &ConnectOptions,
    ) -> Result<Vec<SearchHit>, EngineError> {
        if !(1..=SEARCH_LIMIT.1).contains(&limit) {
            return Err(EngineError::Usage(format!(
                "limit {limit} is outside the range of [1, {}]; give --limit between 1 and {}",
                SEARCH_LIMIT.1, SEARCH_LIMIT.1
            )));
        }
        let term = gcr_registry::SearchTerm::parse(term).map_err(err)?;
        let mut hits = gcr_registry::search(&term, limit, opts).map_err(err)?;
        hits.retain(|h| filter.keeps(h));
        Ok(hits)
    }

    /// `gcr search --list-tags REPOSITORY`: its tags, at most `limit`.
    pub fn list_tags(
        &self,
        repository: &str,
        limit: usize,
        opts: &ConnectOptions,
    ) -> Result<Vec<String>, EngineError> {
        gcr_registry::list_tags(repository, limit.max(1), opts).map_err(err)
    }
}

/// `gcr registry serve`: runs until killed.
pub fn serve(opts: &ServeOptions) -> Result<(), EngineError> {
    gcr_registry::server::serve(opts).map_err(err)
}
