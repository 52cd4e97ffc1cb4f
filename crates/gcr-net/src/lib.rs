//! gcr-net: container networking primitives with no engine knowledge. In-process rtnetlink
//! over a raw socket (bridges, veth pairs, addresses, routes), network namespace creation,
//! IPv4 and IPv6 subnets and leases arithmetic, port specifications, the userland port proxy,
//! the firewall rules of a bridge network (nftables, iptables fallback) and the text of the
//! per-container `/etc/hosts` and `/etc/resolv.conf`.

pub mod addr;
pub mod addr6;
pub mod dnat;
pub mod dns;
pub mod firewall;
pub mod link;
pub mod netlink;
pub mod netns;
pub mod ports;
pub mod proxy;
pub mod resolv;

pub use addr::Subnet;
pub use addr6::Subnet6;
pub use ports::{PortSpec, Proto};

/// Errors of network operations.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A user-given value (subnet, port, name) is malformed.
    #[error("{0}")]
    Invalid(String),
    /// A kernel request failed: what was being done, and the OS error.
    #[error("{0}: {1}")]
    Os(String, #[source] std::io::Error),
}

impl NetError {
    pub(crate) fn os(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetError {
        let w = what.into();
        move |e| NetError::Os(w, e)
    }

    /// The raw OS error number, when this is an OS error.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetError::Os(_, e) => e.raw_os_error(),
            NetError::Invalid(_) => None,
        }
    }
}
