//! gcr-api: the Docker Engine API (version 1.41, negotiated down to 1.24) served by
//! `gcr system service` on a root-only unix socket or a loopback TCP port. Every endpoint
//! calls the same gcr-engine functions as the CLI (blocking, on tokio's blocking threads),
//! so the `docker` CLI, docker-py and other SDKs drive the same containers and images as
//! `gcr` does. Modules: `listen` (addresses, socket permissions, peer credentials), `tls` (`--tls`: client
//! certificates required),
//! `server` (connections, the engine pool), `routes` (the routing table), `build_params` (the build query), `containers` and `create` (container
//! endpoints; Docker's create body mapped onto run options), `stream` (wait, logs),
//! `attach` (the hijacked attach, resize), `exec`, `archive` (docker cp), `stats`, `metrics` (`/metrics`,
//! Prometheus text), `admin` (top, pause,
//! rename, prunes),
//! `images`, `images_io` (save, load, history), `push` (push, auth), `system` (ping, version, info, events, volumes, networks),
//! `networks` (network connect and disconnect, the filters and labels of networks and
//! volumes), `jsonl` (the JSONL protocol's socket: connections, lines, overlapping
//! requests, cancel), `jsonl_ops` (its requests, on the endpoints' functions), `jsonl_run`
//! (its `run` and `logs`), `record` (responses recorded for the swagger check), `http`
//! (request and response helpers), `errors`, `fuzzing` (the request decoding, public for
//! fuzz/fuzz_targets/api_*.rs); and
//! the MiniContainer endpoints of seed 002: `sse` (`GET /v1/events` as Server-Sent Events
//! and its polling form) with `live` (engine events as run_state/deploy/grant/
//! minicontainer events), `webhook` (the same events POSTed to a URL, signed), `apply`
//! (`POST /v1/apply`), `idempotency` (`Idempotency-Key` on the POSTs whose answer is whole).

mod admin;
mod apply;
mod archive;
mod attach;
mod build;
mod build_params;
mod buildsteps;
mod changes;
mod containers;
mod create;
mod df;
mod errors;
mod exec;
pub mod fuzzing;
mod http;
mod idempotency;
mod images;
mod images_io;
pub mod insecure;
mod jsonl;
mod jsonl_ops;
mod jsonl_run;
mod limits;
mod listen;
mod live;
mod metrics;
mod networks;
mod push;
mod record;
mod reexec;
mod routes;
mod server;
mod sse;
mod stats;
mod stream;
mod system;
mod tls;
mod version;
mod webhook;
mod ws;
pub use webhook::WebhookOptions;

pub use errors::ApiError;
pub use listen::Host;
pub use server::{serve, ServiceOptions};
pub use tls::TlsFiles;

/// The newest API version served.
pub const API_VERSION: &str = "1.41";
/// The oldest API version a client may ask for.
pub const MIN_API_VERSION: &str = "1.24";
