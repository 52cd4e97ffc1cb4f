//! Link, address and route operations on top of [`crate::netlink`]: bridges, veth pairs
//! whose peer lands directly in a container's namespace, IPv4 and IPv6 addresses and
//! default routes.

use std::ffi::CString;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::RawFd;

use crate::netlink::{Msg, Socket, NLM_F_CREATE, NLM_F_EXCL};
use crate::netlink::{RTM_DELLINK, RTM_DELROUTE, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE};

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINK: u16 = 5;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_INFO_SLAVE_KIND: u16 = 4;
const IFLA_INFO_SLAVE_DATA: u16 = 5;
const IFLA_BRPORT_ISOLATED: u16 = 33;
const VETH_INFO_PEER: u16 = 1;
const IFLA_MACVLAN_MODE: u16 = 1;
const IFLA_IPVLAN_MODE: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
/// No duplicate address detection: the address is usable at once (not `tentative`).
const IFA_F_NODAD: u32 = 0x02;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const IFF_UP: u32 = libc::IFF_UP as u32;

/// The index of interface `name` in the calling thread's namespace, if it exists.
pub fn index(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// Whether `name` is a valid interface name (1..=15 bytes, no '/', whitespace or ':').
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Creates bridge `name`, up, with `mtu` when given (else the kernel's 1500).
pub fn create_bridge(s: &mut Socket, name: &str, mtu: Option<u32>) -> io::Result<()> {
    let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    m.ifinfo(0, IFF_UP, IFF_UP).attr_str(IFLA_IFNAME, name);
    if let Some(mtu) = mtu {
        m.attr_u32(IFLA_MTU, mtu);
    }
    m.begin(IFLA_LINKINFO)
        .attr_str(IFLA_INFO_KIND, "bridge")
        .end();
    s.request(&mut m)
}

/// Sets link `index` up.
pub fn set_up(s: &mut Socket, index: u32) -> io::Result<()> {
    let mut m = Msg::new(RTM_NEWLINK, 0);
    m.ifinfo(index as i32, IFF_UP, IFF_UP);
    s.request(&mut m)
}

/// One veth pair to make (see [`create_veth`]).
pub struct Veth<'a> {
    /// The host end: up, enslaved to bridge `master`.
    pub host: &'a str,
    pub master: u32,
    /// The container end: down (veth refuses to open before its pair exists), with
    /// hardware address `peer_mac`, in the namespace `peer_ns`.
    pub peer: &'a str,
    pub peer_mac: [u8; 6],
    pub peer_ns: RawFd,
    /// Both ends' MTU (the network's); None: the kernel's 1500.
    pub mtu: Option<u32>,
}

/// Creates a veth pair in the socket's namespace and the peer's.
pub fn create_veth(s: &mut Socket, v: &Veth<'_>) -> io::Result<()> {
    let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    m.ifinfo(0, IFF_UP, IFF_UP)
        .attr_str(IFLA_IFNAME, v.host)
        .attr_u32(IFLA_MASTER, v.master);
    if let Some(mtu) = v.mtu {
        m.attr_u32(IFLA_MTU, mtu);
    }
    m.begin(IFLA_LINKINFO)
        .attr_str(IFLA_INFO_KIND, "veth")
        .begin(IFLA_INFO_DATA)
        .begin(VETH_INFO_PEER)
        .ifinfo(0, 0, 0)
        .attr_str(IFLA_IFNAME, v.peer)
        .attr(IFLA_ADDRESS, &v.peer_mac)
        .attr_u32(IFLA_NET_NS_FD, v.peer_ns as u32);
    if let Some(mtu) = v.mtu {
        m.attr_u32(IFLA_MTU, mtu);
    }
    m.end().end().end();
    s.request(&mut m)
}

/// A sub-interface of a host interface, the container's own (Docker's macvlan and ipvlan
/// drivers): its traffic leaves through the parent onto the parent's network, with no
/// bridge, NAT or firewall of gcr's in the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubKind {
    /// macvlan with `IFLA_MACVLAN_MODE` (private 1, vepa 2, bridge 4, passthru 8); its own
    /// hardware address.
    Macvlan(u32),
    /// ipvlan with `IFLA_IPVLAN_MODE` (l2 0, l3 1); the parent's hardware address.
    Ipvlan(u16),
}

/// A sub-interface to create.
pub struct Sub<'a> {
    /// Index of the parent interface in the socket's namespace.
    pub parent: u32,
    pub kind: SubKind,
    /// Its name in `ns` (e.g. `eth0`).
    pub name: &'a str,
    /// The namespace it is created in (the container's; None: the socket's).
    pub ns: Option<RawFd>,
    /// Its hardware address (macvlan only).
    pub mac: [u8; 6],
    pub mtu: Option<u32>,
}

/// Creates sub-interface `v` of a parent in the socket's namespace directly in namespace
/// `v.ns` (its name is never seen on the host).
pub fn create_sub(s: &mut Socket, v: &Sub<'_>) -> io::Result<()> {
    let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    m.ifinfo(0, 0, 0)
        .attr_str(IFLA_IFNAME, v.name)
        .attr_u32(IFLA_LINK, v.parent);
    if let Some(ns) = v.ns {
        m.attr_u32(IFLA_NET_NS_FD, ns as u32);
    }
    if let Some(mtu) = v.mtu {
        m.attr_u32(IFLA_MTU, mtu);
    }
    match v.kind {
        SubKind::Macvlan(mode) => m
            .attr(IFLA_ADDRESS, &v.mac)
            .begin(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "macvlan")
            .begin(IFLA_INFO_DATA)
            .attr_u32(IFLA_MACVLAN_MODE, mode),
        SubKind::Ipvlan(mode) => m
            .begin(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "ipvlan")
            .begin(IFLA_INFO_DATA)
            .attr(IFLA_IPVLAN_MODE, &mode.to_ne_bytes()),
    };
    m.end().end();
    s.request(&mut m)
}

/// Whether this kernel makes `kind` sub-interfaces of `parent`: one is made under a
/// throwaway name and deleted. Err with the kernel's answer (EOPNOTSUPP: no such driver
/// built in or loaded).
pub fn probe_sub(s: &mut Socket, parent: u32, kind: SubKind) -> io::Result<()> {
    let name = format!("gcrp{}", std::process::id() % 100_000_000);
    let v = Sub {
        parent,
        kind,
        name: &name,
        ns: None,
        mac: [0x02, 0x42, 0, 0, 0, 1],
        mtu: None,
    };
    create_sub(s, &v)?;
    delete(s, &name)
}

/// Makes bridge port `name` (in the socket's namespace) isolated: the bridge forwards
/// nothing between isolated ports (they still reach the bridge itself, the host).
/// Docker's `enable_icc=false`, without a firewall rule.
pub fn set_isolated(s: &mut Socket, name: &str) -> io::Result<()> {
    let mut m = Msg::new(RTM_NEWLINK, 0);
    m.ifinfo(0, 0, 0)
        .attr_str(IFLA_IFNAME, name)
        .begin(IFLA_LINKINFO)
        .attr_str(IFLA_INFO_SLAVE_KIND, "bridge")
        .begin(IFLA_INFO_SLAVE_DATA)
        .attr(IFLA_BRPORT_ISOLATED, &[1])
        .end()
        .end();
    s.request(&mut m)
}

/// The hardware address of a container interface with address `ip`: Docker's
/// `02:42:` followed by the four bytes of the address (locally administered, unique per
/// network address).
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// A unicast hardware address `aa:bb:cc:dd:ee:ff` (Docker's `--mac-address`), or None.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    let [a, b, c, d, e, f] = parts.as_slice() else {
        return None;
    };
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip([a, b, c, d, e, f]) {
        if p.len() != 2 {
            return None;
        }
        *m = u8::from_str_radix(p, 16).ok()?;
    }
    (mac[0] & 1 == 0 && mac != [0; 6]).then_some(mac)
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Deletes link `name`; a link that does not exist is not an error.
pub fn delete(s: &mut Socket, name: &str) -> io::Result<()> {
    let mut m = Msg::new(RTM_DELLINK, 0);
    m.ifinfo(0, 0, 0).attr_str(IFLA_IFNAME, name);
    match s.request(&mut m) {
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
        r => r,
    }
}

/// Adds `ip/prefix` to link `index`; an address already present is not an error.
pub fn add_addr(s: &mut Socket, index: u32, ip: Ipv4Addr, prefix: u8) -> io::Result<()> {
    add_address(s, libc::AF_INET, index, &ip.octets(), prefix, 0)
}

/// Adds `ip/prefix` to link `index` without duplicate address detection (gcr leases each
/// address once; DAD would keep it `tentative`, unusable, for a second or more); an
/// address already present is not an error.
pub fn add_addr6(s: &mut Socket, index: u32, ip: Ipv6Addr, prefix: u8) -> io::Result<()> {
    add_address(s, libc::AF_INET6, index, &ip.octets(), prefix, IFA_F_NODAD)
}

/// Adds address `addr/prefix` of `family` to link `index` with address `flags`; an
/// address already present is not an error.
fn add_address(
    s: &mut Socket,
    family: i32,
    index: u32,
    addr: &[u8],
    prefix: u8,
    flags: u32,
) -> io::Result<()> {
    let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    // struct ifaddrmsg: family, prefixlen, flags, scope, index.
    let mut hdr = [0u8; 8];
    hdr[0] = family as u8;
    hdr[1] = prefix;
    hdr[2] = flags as u8;
    hdr[4..8].copy_from_slice(&index.to_ne_bytes());
    m.raw(&hdr).attr(IFA_LOCAL, addr).attr(IFA_ADDRESS, addr);
    if flags != 0 {
        m.attr_u32(IFA_FLAGS, flags);
    }
    match s.request(&mut m) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        r => r,
    }
}

/// Removes the main table's IPv4 default route (ESRCH when there is none).
pub fn delete_default_route(s: &mut Socket) -> io::Result<()> {
    delete_default(s, libc::AF_INET)
}

/// Removes the main table's IPv6 default route (ESRCH when there is none).
pub fn delete_default_route6(s: &mut Socket) -> io::Result<()> {
    delete_default(s, libc::AF_INET6)
}

fn delete_default(s: &mut Socket, family: i32) -> io::Result<()> {
    let mut m = Msg::new(RTM_DELROUTE, 0);
    let mut hdr = [0u8; 12];
    hdr[0] = family as u8;
    hdr[4] = libc::RT_TABLE_MAIN;
    hdr[6] = libc::RT_SCOPE_NOWHERE;
    m.raw(&hdr);
    s.request(&mut m)
}

/// Adds a default route via `gw` on link `oif`.
pub fn add_default_route(s: &mut Socket, gw: Ipv4Addr, oif: u32) -> io::Result<()> {
    default_route(s, libc::AF_INET, &gw.octets(), oif)
}

/// Adds the IPv6 default route via `gw` on link `oif`.
pub fn add_default_route6(s: &mut Socket, gw: Ipv6Addr, oif: u32) -> io::Result<()> {
    default_route(s, libc::AF_INET6, &gw.octets(), oif)
}

fn default_route(s: &mut Socket, family: i32, gw: &[u8], oif: u32) -> io::Result<()> {
    let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
    let mut hdr = [0u8; 12];
    hdr[0] = family as u8;
    hdr[4] = libc::RT_TABLE_MAIN;
    hdr[5] = libc::RTPROT_BOOT;
    hdr[6] = libc::RT_SCOPE_UNIVERSE;
    hdr[7] = libc::RTN_UNICAST;
    m.raw(&hdr).attr(RTA_GATEWAY, gw).attr_u32(RTA_OIF, oif);
    s.request(&mut m)
}
