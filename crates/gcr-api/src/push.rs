//! Registry endpoints: `POST /images/{name}/push?tag=` (docker push: Docker's progress lines,
//! the `TAG: digest: … size: N` line and the `aux` result) and `POST /auth` (docker login:
//! the credentials checked against the registry's `/v2/`, nothing saved, as dockerd does).
//! A push uses the `X-Registry-Auth` header's credentials when it names a user, else the
//! credentials `gcr login` saved.

use std::collections::BTreeMap;
use std::sync::Mutex;

use base64::Engine as _;
use gcr_engine::registry::{ConnectOptions, Credentials};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::errors::HttpError;
use crate::http::{self, Query, Resp};
use crate::images::{no_such_image, Lines};
use crate::server::Shared;

/// Credentials from Docker's auth config (`username`/`password`, or `auth` as base64
/// `user:pass`); None when it names no user.
pub(crate) fn credentials(v: &Value) -> Option<Credentials> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (mut username, mut password) = (s("username"), s("password"));
    if username.is_empty() {
        let auth = s("auth");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
        if let Some((u, p)) = decoded.split_once(':') {
            (username, password) = (u.to_string(), p.to_string());
        }
    }
    (!username.is_empty()).then_some(Credentials { username, password })
}

/// The `X-Registry-Auth` header: base64url JSON (padded or not); absent, empty or naming no
/// user is None.
pub(crate) fn registry_auth(req: &Request<Incoming>) -> Result<Option<Credentials>, HttpError> {
    match req.headers().get("x-registry-auth") {
        Some(raw) => decode_registry_auth(raw.to_str().unwrap_or("")),
        None => Ok(None),
    }
}

/// The `X-Registry-Config` header of a build: base64url JSON, an object of auth configs by
/// registry (`https://index.docker.io/v1/`, `localhost:5000`, ...); the credentials by
/// registry host as `gcr login` names them (entries naming no user are left out).
pub(crate) fn registry_config(
    req: &Request<Incoming>,
) -> Result<std::collections::BTreeMap<String, Credentials>, HttpError> {
    match req.headers().get("x-registry-config") {
        Some(raw) => decode_registry_config(raw.to_str().unwrap_or("")),
        None => Ok(Default::default()),
    }
}

/// [`registry_config`] of the header's text.
pub(crate) fn decode_registry_config(
    raw: &str,
) -> Result<std::collections::BTreeMap<String, Credentials>, HttpError> {
    let mut out = std::collections::BTreeMap::new();
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(out);
    }
    let v = decode_json("X-Registry-Config", raw)?;
    let Value::Object(m) = v else {
        return Err(HttpError::bad_request(
            "invalid X-Registry-Config header: expected a JSON object of auth configs by registry",
        ));
    };
    for (server, auth) in m {
        if let (Ok(host), Some(c)) = (
            gcr_engine::registry::login_host(&server),
            credentials(&auth),
        ) {
            out.insert(host, c);
        }
    }
    Ok(out)
}

/// A header's base64url (padded or not, or standard) JSON.
fn decode_json(header: &str, raw: &str) -> Result<Value, HttpError> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let bytes = URL_SAFE
        .decode(raw)
        .or_else(|_| URL_SAFE_NO_PAD.decode(raw))
        .or_else(|_| STANDARD.decode(raw))
        .map_err(|_| {
            HttpError::bad_request(format!(
                "invalid {header} header: it is not base64url-encoded JSON"
            ))
        })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        HttpError::bad_request(format!(
            "invalid {header} header: its JSON is invalid ({e})"
        ))
    })
}

pub(crate) fn decode_registry_auth(raw: &str) -> Result<Option<Credentials>, HttpError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let v = decode_json("X-Registry-Auth", raw)?;
    Ok(credentials(&v))
}

/// The local images `name` (a repository) pushes: `name:tag`, or with no tag every tag of
/// the repository (docker push --all-tags).
async fn targets(st: &Shared, name: &str, tag: Option<&str>) -> Result<Vec<String>, HttpError> {
    let name = name.to_string();
    let tag = tag.map(str::to_string);
    st.engine(move |e| {
        let missing = || {
            HttpError::not_found(format!(
                "An image does not exist locally with the tag: {name}"
            ))
        };
        if let Some(t) = tag {
            let r = format!("{name}:{t}");
            return match e.store()?.resolve_image(&r) {
                Ok(_) => Ok(vec![r]),
                Err(err) => {
                    let h = no_such_image(&r, err.into());
                    Err(if h.status == StatusCode::NOT_FOUND {
                        missing()
                    } else {
                        h
                    })
                }
            };
        }
        let want = gcr_engine::Reference::parse(&name)
            .map(|r| r.familiar_name())
            .unwrap_or_else(|_| name.clone());
        let tags: Vec<String> = e
            .images()?
            .into_iter()
            .filter(|r| r.repository == want)
            .map(|r| format!("{}:{}", r.repository, r.tag))
            .collect();
        if tags.is_empty() {
            return Err(missing());
        }
        Ok(tags)
    })
    .await
}

/// What a push names: the repository line's registry and repository, and the local images
/// it pushes (`name:tag`, or every tag of the repository).
pub(crate) async fn push_plan(
    st: &Shared,
    name: &str,
    tag: Option<&str>,
) -> Result<(String, String, Vec<String>), HttpError> {
    let parsed = gcr_engine::Reference::parse(name)
        .map_err(|e| HttpError::bad_request(format!("invalid repository name '{name}': {e}")))?;
    let repo = parsed.repository().to_string();
    let registry = parsed.registry().to_string();
    let images = targets(st, name, tag).await?;
    Ok((registry, repo, images))
}

/// Pushes `images` with the engine, sending dockerd's progress lines (an `aux` line per
/// tag) into `lines`; stops at the first failure.
pub(crate) fn push_with(
    e: &gcr_engine::Engine,
    (registry, repo, images): &(String, String, Vec<String>),
    opts: ConnectOptions,
    lines: &Lines,
) -> Result<Vec<gcr_engine::registry::PushReport>, gcr_engine::EngineError> {
    lines.send(json!({
        "status": format!("The push refers to repository [{registry}/{repo}]")
    }));
    let mut out = Vec::new();
    for image in images {
        let r = e.push(image, None, &opts, lines)?;
        let (_, tag) = gcr_engine::images::split_familiar(&r.reference);
        lines.send(json!({
            "progressDetail": {},
            "aux": { "Tag": tag, "Digest": r.digest, "Size": r.size },
        }));
        out.push(r);
    }
    Ok(out)
}

/// `POST /images/{name}/push?tag=`: pushes, streaming Docker's progress lines; a failure
/// after the stream began is an `error` line.
pub async fn push(
    st: &Shared,
    name: &str,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Resp, HttpError> {
    let credentials = registry_auth(&req)?;
    let tag = q.get("tag").filter(|t| !t.is_empty());
    let plan = push_plan(st, name, tag).await?;
    let connect = st.connect(&plan.0, credentials);
    let (tx, rx) = mpsc::channel(64);
    let st2 = st.clone();
    tokio::spawn(async move {
        let lines = Lines {
            tx,
            totals: Mutex::new(BTreeMap::new()),
            push: true,
        };
        let _ = st2
            .engine(move |e| {
                if let Err(err) = push_with(e, &plan, connect, &lines) {
                    let m = err.to_string();
                    lines.send(json!({ "errorDetail": { "message": m }, "error": m }));
                }
                Ok(())
            })
            .await;
    });
    Ok(http::stream("application/json", rx))
}

/// `POST /auth`: `{"username", "password", "serveraddress"}` checked against the registry;
/// `{"Status": "Login Succeeded", "IdentityToken": ""}`, or 401 with Docker's sentence.
pub async fn auth(st: &Shared, req: Request<Incoming>) -> Result<Resp, HttpError> {
    let body = http::read_json(req.into_body()).await?;
    if !body.is_object() {
        return Err(HttpError::bad_request(
            "the body must be a JSON object with username, password and serveraddress",
        ));
    }
    let server = body
        .get("serveraddress")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("docker.io")
        .to_string();
    let creds = credentials(&body)
        .filter(|c| !c.password.is_empty())
        .ok_or_else(|| HttpError::bad_request("the user name and password must not be empty"))?;
    st.engine(move |e| Ok(e.check_login(&server, &creds)?))
        .await?;
    Ok(http::json(
        StatusCode::OK,
        &json!({ "Status": "Login Succeeded", "IdentityToken": "" }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_builds_registry_config_is_credentials_by_host() {
        use base64::Engine as _;
        let cfg = json!({
            "https://index.docker.io/v1/": {"username": "hub", "password": "p1"},
            "localhost:5000": {"auth": base64::engine::general_purpose::STANDARD.encode("al:pw")},
            "nobody.example": {"serveraddress": "nobody.example"},
        });
        let raw = base64::engine::general_purpose::URL_SAFE.encode(cfg.to_string());
        let m = decode_registry_config(&raw).unwrap();
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(m["docker.io"].username, "hub");
        assert_eq!(
            (
                m["localhost:5000"].username.as_str(),
                m["localhost:5000"].password.as_str()
            ),
            ("al", "pw")
        );
        assert!(decode_registry_config("").unwrap().is_empty());
        for bad in ["%%%", "W10="] {
            let e = decode_registry_config(bad).unwrap_err();
            assert!(e.message.contains("X-Registry-Config"), "{}", e.message);
        }
    }

    #[test]
    fn auth_configs() {
        let c = credentials(&json!({"username": "a", "password": "b"})).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("a", "b"));
        let c = credentials(&json!({"auth": "YTpiOmM="})).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("a", "b:c"));
        assert!(credentials(&json!({"serveraddress": "h"})).is_none());
        assert!(credentials(&json!({})).is_none());
    }

    #[test]
    fn registry_auth_headers() {
        use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
        // "?>" makes base64url differ from standard base64.
        let doc = r#"{"username":"u?>","password":"p","serveraddress":"h"}"#;
        for enc in [URL_SAFE.encode(doc), URL_SAFE_NO_PAD.encode(doc)] {
            let c = decode_registry_auth(&enc).unwrap().unwrap();
            assert_eq!((c.username.as_str(), c.password.as_str()), ("u?>", "p"));
        }
        assert!(decode_registry_auth("").unwrap().is_none());
        assert!(decode_registry_auth("e30=").unwrap().is_none());
        assert_eq!(
            decode_registry_auth("%%%").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert!(decode_registry_auth(&URL_SAFE.encode("not json")).is_err());
    }
}
