//! gcr-registry speaks the OCI distribution spec (v2) both ways. The client (`client`)
//! pulls images into the store's blob CAS, verifying every byte against its digest and
//! committing nothing until a whole image is verified, and pushes stored images back
//! byte for byte; it handles anonymous, Basic and Bearer-token auth, image indexes with
//! platform selection, Docker schema2 and OCI media types, retries and timeouts. The
//! server (`server`) serves a registry from the same content-addressed store.
//! Credentials live in Docker's `config.json` (`auth`).

pub mod auth;
pub mod cas;
pub mod client;
mod error;
pub mod media;
pub mod server;

pub use client::pull::{pull, PullOptions, PullReport};
pub use client::push::{push, PushReport};
pub use client::search::{list_tags, search, SearchHit, Term as SearchTerm};
pub use client::transport::ConnectOptions;
pub use client::{check_login, login, NoProgress, Progress};
pub use error::{RegistryError, Result};
