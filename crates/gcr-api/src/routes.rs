//! The routing table of the Docker Engine API (and of seed 002's `/v1`): a request's method
//! and path, its `/v1.NN` prefix split off and checked, to the endpoint that answers it;
//! what no endpoint serves is Docker's 404. The POSTs whose answer is whole go through
//! [`once`] (`Idempotency-Key`).

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use crate::errors::HttpError;
use crate::http::{self, Query, Resp};
use crate::idempotency::once;
use crate::server::Shared;
use crate::version::Prefix;
use crate::{
    admin, apply, archive, attach, build, changes, containers, df, exec, idempotency, images,
    images_io, metrics, networks, push, sse, stats, stream, system,
};

/// Answers one request (errors in Docker's shape), recording it for the swagger check.
pub(crate) async fn route(st: Shared, req: Request<Incoming>) -> Resp {
    st.served.store(true, std::sync::atomic::Ordering::Relaxed);
    let rec = crate::record::request(req.method().as_str(), req.uri().path());
    let resp = match crate::version::split(req.uri().path()) {
        // dockerd writes errors as text to clients before 1.24.
        Prefix::Refused { error, plain: true } => http::text(error.status, &error.message),
        Prefix::Refused { error, .. } => http::error(&error),
        Prefix::Ok(..) => match dispatch(st, req).await {
            Ok(r) => r,
            Err(e) => http::error(&e),
        },
    };
    crate::record::response(rec, resp)
}

async fn dispatch(st: Shared, req: Request<Incoming>) -> Result<Resp, HttpError> {
    let (version, path) = match crate::version::split(req.uri().path()) {
        Prefix::Ok(v, tail) => (v, tail.to_string()),
        Prefix::Refused { error, .. } => return Err(error),
    };
    let q = Query::parse(req.uri().query()).at_version(version);
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let m = req.method().clone();
    match (m.as_str(), segs.as_slice()) {
        ("GET" | "HEAD", ["_ping"]) => Ok(system::ping(m == Method::HEAD)),
        ("GET", ["version"]) => Ok(system::version()),
        ("GET", ["info"]) => system::info(&st, &q).await,
        ("GET", ["metrics"]) => metrics::metrics(&st).await,
        ("GET", ["events"]) => system::events(&st, &q).await,
        ("GET", ["v1", "events"]) if crate::ws::wanted(req.headers()) => {
            sse::events_ws(&st, &q, req).await
        }
        ("GET", ["v1", "events"]) => sse::events(&st, &q, req.headers()).await,
        ("GET", ["v1", "events", "poll"]) => sse::poll(&st, &q).await,
        ("POST", ["v1", "apply"]) => apply::apply(&st, &q, req).await,
        ("GET", ["system", "df"]) => df::system_df(&st).await,
        ("GET", ["containers", "json"]) => containers::list(&st, &q).await,
        ("POST", ["containers", "prune"]) => admin::prune_containers(&st, &q).await,
        ("POST", ["images", "prune"]) => admin::prune_images(&st, &q).await,
        ("POST", ["volumes", "prune"]) => admin::prune_volumes(&st, &q).await,
        ("POST", ["networks", "prune"]) => admin::prune_networks(&st, &q).await,
        ("GET", ["containers", id, "top"]) => admin::top(&st, id, &q).await,
        ("GET", ["containers", id, "stats"]) => stats::stats(&st, id, &q).await,
        ("POST", ["containers", id, "pause"]) => {
            let id = id.to_string();
            once(&st, req, move |st, _| async move {
                admin::pause(&st, &id, true).await
            })
            .await
        }
        ("POST", ["containers", id, "unpause"]) => {
            let id = id.to_string();
            once(&st, req, move |st, _| async move {
                admin::pause(&st, &id, false).await
            })
            .await
        }
        ("POST", ["containers", id, "rename"]) => {
            let (id, q) = (id.to_string(), q.clone());
            once(&st, req, move |st, _| async move {
                admin::rename(&st, &id, &q).await
            })
            .await
        }
        ("POST", ["containers", id, "update"]) => admin::update(&st, id, req, q.version()).await,
        ("GET", ["containers", id, "changes"]) => changes::changes(&st, id).await,
        ("GET", ["containers", id, "export"]) => changes::export(&st, id).await,
        ("POST", ["commit"]) => changes::commit(&st, &q, req).await,
        ("POST", ["containers", "create"]) => idempotency::create(&st, &q, req).await,
        ("GET", ["containers", id, "json"]) => {
            containers::inspect(&st, id, q.flag("size", false)).await
        }
        ("POST", ["containers", id, "start"]) => idempotency::start(&st, id, req).await,
        ("POST", ["containers", id, "stop"]) => {
            let (id, q) = (id.to_string(), q.clone());
            once(&st, req, move |st, _| async move {
                containers::stop(&st, &id, &q).await
            })
            .await
        }
        ("POST", ["containers", id, "restart"]) => {
            let (id, q) = (id.to_string(), q.clone());
            once(&st, req, move |st, _| async move {
                containers::restart(&st, &id, &q).await
            })
            .await
        }
        ("POST", ["containers", id, "kill"]) => {
            let (id, q) = (id.to_string(), q.clone());
            once(&st, req, move |st, _| async move {
                containers::kill(&st, &id, &q).await
            })
            .await
        }
        ("DELETE", ["containers", id]) => containers::remove(&st, id, &q).await,
        ("POST", ["containers", id, "wait"]) => stream::wait(&st, id, &q).await,
        ("GET", ["containers", id, "logs"]) => stream::logs(&st, id, &q).await,
        ("POST", ["containers", id, "attach"]) => attach::attach(&st, id, &q, req).await,
        ("GET", ["containers", id, "attach", "ws"]) => attach::attach_ws(&st, id, &q, req).await,
        ("POST", ["containers", id, "resize"]) => attach::resize(&st, id, &q).await,
        ("POST", ["containers", id, "exec"]) => {
            let id = id.to_string();
            once(&st, req, move |st, b| async move {
                exec::create(&st, &id, &b).await
            })
            .await
        }
        ("GET", ["containers", id, "archive"]) => archive::get(&st, id, &q, false).await,
        ("HEAD", ["containers", id, "archive"]) => archive::get(&st, id, &q, true).await,
        ("PUT", ["containers", id, "archive"]) => archive::put(&st, id, &q, req).await,
        ("POST", ["exec", id, "start"]) => exec::start(&st, id, req).await,
        ("GET", ["exec", id, "json"]) => exec::inspect(&st, id).await,
        ("POST", ["exec", id, "resize"]) => exec::resize(&st, id, &q).await,
        ("POST", ["build"]) => build::build(&st, &q, req).await,
        ("POST", ["build", "prune"]) => build::prune(&st, &q).await,
        ("GET", ["images", "json"]) => images::list(&st, &q).await,
        ("GET", ["images", "search"]) => {
            let creds = push::registry_auth(&req)?;
            images::search(&st, &q, creds).await
        }
        ("POST", ["images", "create"]) if q.get("fromSrc").is_some() => {
            images_io::import(&st, &q, req).await
        }
        ("POST", ["images", "create"]) => {
            let creds = push::registry_auth(&req)?;
            images::pull(&st, &q, creds).await
        }
        ("POST", ["images", "load"]) => images_io::load(&st, &q, req).await,
        ("GET", ["images", "get"]) => images_io::save(&st, None, &q).await,
        ("GET", ["images", name @ .., "get"]) if !name.is_empty() => {
            images_io::save(&st, Some(&name.join("/")), &q).await
        }
        ("GET", ["images", name @ .., "history"]) if !name.is_empty() => {
            images_io::history(&st, &name.join("/")).await
        }
        ("POST", ["images", name @ .., "push"]) if !name.is_empty() => {
            push::push(&st, &name.join("/"), &q, req).await
        }
        ("POST", ["auth"]) => push::auth(&st, req).await,
        ("GET", ["images", name @ .., "json"]) if !name.is_empty() => {
            images::inspect(&st, &name.join("/")).await
        }
        ("POST", ["images", name @ .., "tag"]) if !name.is_empty() => {
            let (name, q) = (name.join("/"), q.clone());
            once(&st, req, move |st, _| async move {
                images::tag(&st, &name, &q).await
            })
            .await
        }
        ("DELETE", ["images", name @ ..]) if !name.is_empty() => {
            images::remove(&st, &name.join("/"), &q).await
        }
        ("GET", ["volumes"]) => system::volumes(&st, &q).await,
        ("POST", ["volumes", "create"]) => {
            once(&st, req, |st, b| async move {
                system::volume_create(&st, &b).await
            })
            .await
        }
        ("GET", ["volumes", name]) => system::volume_inspect(&st, name).await,
        ("DELETE", ["volumes", name]) => system::volume_remove(&st, name).await,
        ("GET", ["networks"]) => system::networks(&st, &q).await,
        ("POST", ["networks", "create"]) => {
            once(&st, req, |st, b| async move {
                system::network_create(&st, &b).await
            })
            .await
        }
        ("GET", ["networks", name]) => system::network_inspect(&st, name).await,
        ("DELETE", ["networks", name]) => system::network_remove(&st, name).await,
        ("POST", ["networks", name, "connect"]) => {
            let name = name.to_string();
            once(&st, req, move |st, b| async move {
                networks::connect(&st, &name, &b).await
            })
            .await
        }
        ("POST", ["networks", name, "disconnect"]) => {
            let name = name.to_string();
            once(&st, req, move |st, b| async move {
                networks::disconnect(&st, &name, &b).await
            })
            .await
        }
        _ => Err(HttpError::new(
            StatusCode::NOT_FOUND,
            format!("page not found: {m} {path} is not served by gcr"),
        )),
    }
}
