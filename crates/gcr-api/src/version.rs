//! API versions: the `/v1.NN` prefix of a request, refused outside 1.24–1.41 as dockerd
//! refuses it (400, "too old" in plain text as dockerd's error handler writes errors for
//! clients before 1.24, "too new" as JSON), and the version a handler asks about to give
//! an older client the shape it knows (what dockerd 20.10 changes for versions older than
//! 1.41, in its API routers):
//!
//! | before | endpoint | an older client gets |
//! |---|---|---|
//! | 1.25 | `GET /info` | `ExecutionDriver`, bare `SecurityOptions` names |
//! | 1.25 | `POST /containers/create` | `HostConfig.AutoRemove` ignored (the client removes) |
//! | 1.28 | `GET /networks` | each network's `Containers` filled in (1.28+: `{}`) |
//! | 1.30 | `POST /containers/{id}/wait` | `condition` ignored; the answer only at the exit |
//! | 1.30 | `POST /build` | no `aux` message with the image ID |
//! | 1.40 | `POST /containers/{id}/update` | `PidsLimit` ignored |
//! | 1.41 | `GET /containers/{id}/stats` | `one-shot` ignored |
//! | 1.41 | `GET /images/json` | the legacy `filter=PATTERN` (a reference filter) |
//!
//! A path without a version is the newest.

use crate::errors::HttpError;

/// The minor number of a 1.x API version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32);

impl ApiVersion {
    pub const NEWEST: ApiVersion = ApiVersion(41);
    pub const OLDEST: ApiVersion = ApiVersion(24);

    /// True when the client speaks a version older than 1.`minor`.
    pub fn before(self, minor: u32) -> bool {
        self.0 < minor
    }
}

impl Default for ApiVersion {
    fn default() -> Self {
        ApiVersion::NEWEST
    }
}

/// What a request path's version prefix says.
pub(crate) enum Prefix<'a> {
    /// Served: the version and the path without the prefix.
    Ok(ApiVersion, &'a str),
    /// Refused with this error (`plain`: as text, for clients before 1.24).
    Refused { error: HttpError, plain: bool },
}

/// Splits off `/v1.NN`. A first segment that is not a version (`/v1/events`,
/// `/volumes`) is part of the path.
pub(crate) fn split(path: &str) -> Prefix<'_> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Prefix::Ok(ApiVersion::NEWEST, path);
    };
    let (ver, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Some((major, minor)) = ver.split_once('.') else {
        return Prefix::Ok(ApiVersion::NEWEST, path);
    };
    let (Ok(major), Ok(minor)) = (major.parse::<u32>(), minor.parse::<u32>()) else {
        return Prefix::Ok(ApiVersion::NEWEST, path);
    };
    let v = ApiVersion(minor);
    if major < 1 || (major == 1 && v < ApiVersion::OLDEST) {
        return Prefix::Refused {
            error: HttpError::bad_request(format!(
                "client version {ver} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
                crate::MIN_API_VERSION
            )),
            plain: true,
        };
    }
    if major > 1 || v > ApiVersion::NEWEST {
        return Prefix::Refused {
            error: HttpError::bad_request(format!(
                "client version {ver} is too new. Maximum supported API version is {}",
                crate::API_VERSION
            )),
            plain: false,
        };
    }
    Prefix::Ok(v, tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: &str) -> (u32, &str) {
        match split(p) {
            Prefix::Ok(v, t) => (v.0, t),
            Prefix::Refused { error, .. } => panic!("{p}: {}", error.message),
        }
    }

    #[test]
    fn prefixes() {
        assert_eq!(ok("/v1.41/containers/json"), (41, "/containers/json"));
        assert_eq!(ok("/v1.24/_ping"), (24, "/_ping"));
        assert_eq!(ok("/_ping"), (41, "/_ping"));
        assert_eq!(ok("/volumes"), (41, "/volumes"));
        assert_eq!(ok("/v1/events"), (41, "/v1/events"));
        assert!(ApiVersion(29).before(30) && !ApiVersion(30).before(30));
        for (p, plain, says) in [
            ("/v1.12/info", true, "too old"),
            ("/v0.99/info", true, "too old"),
            ("/v1.43/info", false, "too new"),
            ("/v2.0/info", false, "too new"),
        ] {
            match split(p) {
                Prefix::Refused { error, plain: pl } => {
                    assert_eq!(pl, plain, "{p}");
                    assert!(error.message.contains(says), "{p}: {}", error.message);
                    assert_eq!(error.status, hyper::StatusCode::BAD_REQUEST);
                }
                Prefix::Ok(..) => panic!("{p} served"),
            }
        }
    }
}
