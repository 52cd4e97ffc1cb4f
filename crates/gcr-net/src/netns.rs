//! Network namespaces for containers: a helper thread unshares a new namespace, keeps a
//! descriptor to it, and configures it (loopback, the container end of a veth pair, its
//! address and default route) with a netlink socket opened inside, while the host end is
//! created through the caller's host-namespace socket. A further interface (`eth1`, ...)
//! is added to an existing namespace the same way, by a helper thread that joins it
//! ([`attach_existing`]). The calling thread never changes namespace.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::netlink::Socket;
use crate::{link, NetError};

/// The container side of a bridge attachment.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Name of the host end of the veth pair.
    pub host_if: String,
    /// Index of the bridge the host end joins.
    pub bridge: u32,
    /// Name of the container end (e.g. `eth0`).
    pub peer_if: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// Whether the default route goes through `gateway` (the first interface only).
    pub default_route: bool,
    /// The network's MTU for both ends (None: 1500).
    pub mtu: Option<u32>,
    /// The host end is an isolated bridge port (the network's containers are kept apart).
    pub isolated: bool,
    /// The IPv6 side of a dual-stack network.
    pub v6: Option<V6>,
    /// A macvlan or ipvlan network: the interface is a sub-interface of this parent (its
    /// index on the host) instead of a veth pair on `bridge` (`host_if` is unused then).
    pub sub: Option<(u32, link::SubKind)>,
    /// The container end's hardware address (Docker's `02:42:<address>` unless given).
    pub mac: [u8; 6],
}

/// A container interface's IPv6 address on a dual-stack network.
#[derive(Debug, Clone, Copy)]
pub struct V6 {
    pub ip: Ipv6Addr,
    pub prefix: u8,
    /// The default route's next hop (with [`Endpoint::default_route`]).
    pub gateway: Ipv6Addr,
}

/// Creates a new network namespace wired to the bridge as `ep` says; returns a descriptor
/// to the namespace (close-on-exec). On failure the host end is removed again.
pub fn create_attached(host: &mut Socket, ep: &Endpoint) -> Result<OwnedFd, NetError> {
    std::thread::scope(|s| {
        s.spawn(|| in_new_netns(host, ep))
            .join()
            .unwrap_or_else(|_| Err(NetError::Invalid("the netns helper thread panicked".into())))
    })
}

/// Moves the calling (helper) thread into a new network namespace; returns a descriptor to it.
fn unshare_here() -> Result<OwnedFd, NetError> {
    // SAFETY: unshare with a constant flag affects only this helper thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(NetError::Os(
            "creating a network namespace".into(),
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: opening a constant, NUL-terminated path.
    let fd = unsafe {
        libc::open(
            c"/proc/thread-self/ns/net".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(NetError::Os(
            "opening the new network namespace".into(),
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: fd is fresh and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn in_new_netns(host: &mut Socket, ep: &Endpoint) -> Result<OwnedFd, NetError> {
    let ns = unshare_here()?;
    wire(host, ns.as_raw_fd(), ep, true).map(|()| ns)
}

/// Adds the interface `ep` describes to the existing namespace `ns` (a running
/// container's): the veth pair is made from the host socket with its peer in `ns`, then a
/// helper thread joins `ns` and configures the peer. On failure the pair is removed again.
pub fn attach_existing(
    host: &mut Socket,
    ns: BorrowedFd<'_>,
    ep: &Endpoint,
) -> Result<(), NetError> {
    in_netns(ns, || wire(host, ns.as_raw_fd(), ep, false))
}

/// Runs `f` on a helper thread that has joined the existing namespace `ns` (the calling
/// thread never changes namespace).
fn in_netns<T: Send>(
    ns: BorrowedFd<'_>,
    f: impl FnOnce() -> Result<T, NetError> + Send,
) -> Result<T, NetError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns on a namespace descriptor the caller keeps open for the call;
            // it moves only this helper thread, which ends right after.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(NetError::Os(
                    "joining the container's network namespace".into(),
                    std::io::Error::last_os_error(),
                ));
            }
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(NetError::Invalid("the netns helper thread panicked".into())))
    })
}

/// Deletes interface `ifname` inside namespace `ns` (a running container's macvlan or
/// ipvlan interface, which has no host end to delete).
pub fn delete_inside(ns: BorrowedFd<'_>, ifname: &str) -> Result<(), NetError> {
    in_netns(ns, || {
        let mut s = Socket::open().map_err(NetError::os("opening a netlink socket"))?;
        link::delete(&mut s, ifname).map_err(NetError::os(format!("deleting {ifname}")))
    })
}

/// The embedded DNS server's UDP and TCP sockets, bound at 127.0.0.11:53 inside namespace
/// `ns` (its loopback is up: every 127/8 address is local there) and served from this one.
pub fn bind_dns(ns: BorrowedFd<'_>) -> Result<(OwnedFd, OwnedFd), NetError> {
    in_netns(ns, || {
        let at = std::net::SocketAddr::from((crate::dns::ADDRESS, 53));
        let what = || format!("binding the embedded DNS server at {at}");
        let udp = std::net::UdpSocket::bind(at).map_err(NetError::os(what()))?;
        let tcp = std::net::TcpListener::bind(at).map_err(NetError::os(what()))?;
        Ok((udp.into(), tcp.into()))
    })
}

/// Points the default routes of the existing namespace `ns` (a running container's)
/// through `gateway` (and `gateway6`, on a dual-stack network) on its interface `ifname`
/// (the container's new first network, after it left the one that had the default
/// route), replacing any default route left.
pub fn set_default_route(
    ns: BorrowedFd<'_>,
    ifname: &str,
    gateway: Ipv4Addr,
    gateway6: Option<Ipv6Addr>,
) -> Result<(), NetError> {
    in_netns(ns, || {
        let mut sock = Socket::open().map_err(NetError::os("opening a netlink socket"))?;
        let idx = link::index(ifname).ok_or_else(|| {
            NetError::Invalid(format!("interface {ifname} is not in the container"))
        })?;
        let _ = link::delete_default_route(&mut sock);
        let _ = link::delete_default_route6(&mut sock);
        link::add_default_route(&mut sock, gateway, idx).map_err(NetError::os(format!(
            "adding the default route via {gateway}"
        )))?;
        if let Some(gw) = gateway6 {
            link::add_default_route6(&mut sock, gw, idx).map_err(NetError::os(format!(
                "adding the IPv6 default route via {gw}"
            )))?;
        }
        Ok(())
    })
}

/// Makes the veth pair of `ep` with its peer in `ns` (the calling thread's namespace) and
/// configures the peer; `lo` is brought up too when `with_lo`.
fn wire(host: &mut Socket, ns: RawFd, ep: &Endpoint, with_lo: bool) -> Result<(), NetError> {
    if let Some((parent, kind)) = ep.sub {
        let v = link::Sub {
            parent,
            kind,
            name: &ep.peer_if,
            ns: Some(ns),
            mac: ep.mac,
            mtu: ep.mtu,
        };
        link::create_sub(host, &v).map_err(NetError::os(format!(
            "creating {} on the parent interface (index {parent})",
            ep.peer_if
        )))?;
        let r = configure_inside(ep, with_lo);
        if r.is_err() {
            // This thread is in the container's namespace: the interface is removed there.
            if let Ok(mut s) = Socket::open() {
                let _ = link::delete(&mut s, &ep.peer_if);
            }
        }
        return r;
    }
    let v = link::Veth {
        host: &ep.host_if,
        master: ep.bridge,
        peer: &ep.peer_if,
        peer_mac: ep.mac,
        peer_ns: ns,
        mtu: ep.mtu,
    };
    let mut made = link::create_veth(host, &v);
    if made
        .as_ref()
        .is_err_and(|e| e.raw_os_error() == Some(libc::EEXIST))
    {
        // The same container's previous veth: its old namespace is still being torn down
        // by the kernel (restart right after stop). The name is ours; remove it and retry.
        let _ = link::delete(host, &ep.host_if);
        made = link::create_veth(host, &v);
    }
    made.map_err(NetError::os(format!("creating veth pair {}", ep.host_if)))?;
    let r = isolate(host, ep).and_then(|()| configure_inside(ep, with_lo));
    if r.is_err() {
        let _ = link::delete(host, &ep.host_if);
    }
    r
}

fn isolate(host: &mut Socket, ep: &Endpoint) -> Result<(), NetError> {
    if !ep.isolated {
        return Ok(());
    }
    // By name through the host's socket: this thread is in the container's namespace.
    link::set_isolated(host, &ep.host_if).map_err(NetError::os(format!(
        "isolating bridge port {} (enable_icc=false)",
        ep.host_if
    )))
}

fn configure_inside(ep: &Endpoint, with_lo: bool) -> Result<(), NetError> {
    let mut s = Socket::open().map_err(NetError::os("opening a netlink socket"))?;
    if with_lo {
        link::set_up(&mut s, 1).map_err(NetError::os("bringing up lo"))?;
    }
    let idx = link::index(&ep.peer_if).ok_or_else(|| {
        NetError::Invalid(format!(
            "interface {} did not appear in the container namespace",
            ep.peer_if
        ))
    })?;
    // No router advertisements: another container on the bridge could send one to take
    // this one's IPv6 traffic (this thread is in the namespace: the file is its own).
    let _ = std::fs::write(
        format!("/proc/sys/net/ipv6/conf/{}/accept_ra", ep.peer_if),
        "0",
    );
    link::set_up(&mut s, idx).map_err(NetError::os(format!("bringing up {}", ep.peer_if)))?;
    link::add_addr(&mut s, idx, ep.ip, ep.prefix)
        .map_err(NetError::os(format!("adding address {}", ep.ip)))?;
    if ep.default_route {
        link::add_default_route(&mut s, ep.gateway, idx).map_err(NetError::os(format!(
            "adding the default route via {}",
            ep.gateway
        )))?;
    }
    if let Some(v6) = &ep.v6 {
        link::add_addr6(&mut s, idx, v6.ip, v6.prefix)
            .map_err(NetError::os(format!("adding address {}", v6.ip)))?;
        if ep.default_route {
            link::add_default_route6(&mut s, v6.gateway, idx).map_err(NetError::os(format!(
                "adding the IPv6 default route via {}",
                v6.gateway
            )))?;
        }
    }
    Ok(())
}
