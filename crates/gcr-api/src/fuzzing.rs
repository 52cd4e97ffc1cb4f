//! The service's request decoding, callable without a server or a store: what the fuzz
//! targets (fuzz/fuzz_targets/api_*.rs) drive. Each function decodes as the endpoint does
//! and returns the decoded value's summary or the endpoint's error (status and sentence);
//! none panics on any input.

use std::path::Path;

use serde_json::Value;

use crate::errors::HttpError;
use crate::http::Query;

/// A decoding error: Docker's status code and the sentence the client gets.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub message: String,
}

impl From<HttpError> for Refused {
    fn from(e: HttpError) -> Refused {
        Refused {
            status: e.status.as_u16(),
            message: e.message,
        }
    }
}

fn json_body(body: &[u8]) -> Result<Value, Refused> {
    if body.iter().all(|c| c.is_ascii_whitespace()) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| Refused {
        status: 400,
        message: format!("invalid JSON in the request body: {e}"),
    })
}

/// `POST /containers/create?name=`: the body (JSON bytes) mapped onto the engine's run
/// options; Ok with their Debug form.
pub fn create_body(body: &[u8], name: Option<&str>) -> Result<String, Refused> {
    let v = json_body(body)?;
    let o = crate::create::options(&v, name)?;
    Ok(format!("{o:?}"))
}

/// `POST /containers/{id}/update`: the body mapped onto the engine's update request.
pub fn update_body(body: &[u8]) -> Result<String, Refused> {
    let v = json_body(body)?;
    let u = crate::limits::update(&v)?;
    Ok(format!("{u:?}"))
}

/// `POST /networks/create`: the body mapped onto the engine's network request (its IPAM
/// configs sorted by address family); Ok with its Debug form.
pub fn network_create_body(body: &[u8]) -> Result<String, Refused> {
    let v = json_body(body)?;
    let c = crate::networks::create_request("fuzz", &v)?;
    Ok(format!("{c:?}"))
}

/// `POST /networks/{id}/connect`: the body mapped onto the engine's connect request.
pub fn network_connect_body(body: &[u8]) -> Result<String, Refused> {
    let v = json_body(body)?;
    let r = crate::networks::connect_request(&crate::networks::body_object(v)?)?;
    Ok(format!("{r:?}"))
}

/// A query string as every endpoint reads it: `filters`, booleans, numbers and repeated
/// keys; Ok with the decoded filters.
pub fn query(raw: &str) -> Result<Vec<(String, String)>, Refused> {
    let q = Query::parse(Some(raw));
    let _ = q.flag("all", false);
    let _ = q.all("names");
    q.number::<u32>("t")?;
    q.number::<i64>("since")?;
    Ok(q.filters()?)
}

/// `POST /build`'s query (tags, buildargs, labels, networkmode, platform, ...).
pub fn build_query(raw: &str) -> Result<String, Refused> {
    Ok(crate::build_params::parse_query(&Query::parse(Some(raw)))?)
}

/// The `X-Registry-Auth` header: Ok(true) when it names a user.
pub fn registry_auth(header: &str) -> Result<bool, Refused> {
    Ok(crate::push::decode_registry_auth(header)?.is_some())
}

/// A build's `X-Registry-Config` header: how many registries it gives credentials for.
pub fn registry_config(header: &str) -> Result<usize, Refused> {
    Ok(crate::push::decode_registry_config(header)?.len())
}

/// A request path with or without its `/v1.NN` prefix: the path routed.
pub fn versioned_path(path: &str) -> Result<String, Refused> {
    Ok(crate::server::unversioned(path)?.to_string())
}

/// The `X-Docker-Container-Path-Stat` an archive GET derives from the first bytes of a tar.
pub fn archive_stat(tar: &[u8]) -> Option<Value> {
    crate::archive::stat_of(tar)
}

/// `PUT /containers/{id}/archive?path=DEST&copyUIDGID=`: the tar body unpacked into
/// directory `DEST` of the tree rooted at the host directory `root` (standing for the
/// container's root), by the engine's copy, as the endpoint does.
pub fn archive_put(root: &Path, query: &str, tar: &[u8]) -> Result<(), Refused> {
    let q = Query::parse(Some(query));
    let (dest, o) = crate::archive::put_params(&q)?;
    let mut input = tar;
    gcr_engine::container::copy::unpack_in(root, &dest, &o, &mut input).map_err(HttpError::from)?;
    Ok(())
}
