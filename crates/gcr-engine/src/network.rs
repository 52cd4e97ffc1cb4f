//! Container networking as the engine sees it: which network namespace a container joins,
//! the files it gets (/etc/hosts, /etc/resolv.conf, /etc/hostname), and cleanup.
//!
//! Until bridge networking lands, `bridge` (the default) gives a private namespace with only
//! loopback; `none` the same; `host` shares the host's namespace.

use oci_spec::runtime::Mount;

use crate::container::config::RunOptions;
use crate::container::record::Record;
use crate::{Engine, EngineError};

/// What the runtime needs to place a container on its network.
pub struct NetAttachment {
    pub network: gcr_runtime::Network,
    pub mounts: Vec<Mount>,
}

impl Engine {
    /// Checks `--network` and publish flags at create time; returns the network name to store.
    pub(crate) fn net_validate(
        &self,
        opts: &RunOptions,
        _image_config: &serde_json::Value,
    ) -> Result<String, EngineError> {
        match opts.network.as_deref() {
            None | Some("bridge" | "default") => Ok("bridge".into()),
            Some("none") => Ok("none".into()),
            Some("host") => Ok("host".into()),
            Some(other) => Err(EngineError::NotFound(format!(
                "network {other} not found; use none, host or bridge"
            ))),
        }
    }

    /// Prepares the container's network right before launch.
    pub(crate) fn net_attach(&self, r: &Record) -> Result<NetAttachment, EngineError> {
        let network = match r.config.resolved.network.as_str() {
            "host" => gcr_runtime::Network::Host,
            _ => gcr_runtime::Network::NewLoopback,
        };
        Ok(NetAttachment {
            network,
            mounts: Vec::new(),
        })
    }

    /// Releases whatever `net_attach` set up. Idempotent; never fails.
    pub(crate) fn net_detach(&self, _r: &Record) {}
}
