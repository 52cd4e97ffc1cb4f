//! The per-container `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`: written under the
//! container's run-time directory and bind-mounted over the image's. Hosts files of a
//! user-defined network's members are rewritten in place (the bind mount pins the inode)
//! whenever a member joins or leaves, so containers reach each other by name. A container
//! on several networks lists the members of each user network it shares with them, at
//! their address on that network.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use oci_spec::runtime::{Mount, MountBuilder};

use super::db::{self, Endpoint};
use crate::container::record::Record;
use crate::{Engine, EngineError};

/// What the container's files should say.
pub(crate) enum Files<'a> {
    /// Private namespace with only loopback.
    Loopback,
    /// The host's namespace: the host's own hosts and resolv.conf.
    Host,
    /// A bridge network's addresses (IPv4, and IPv6 on a dual-stack network), with the
    /// other members to list (user networks), and on a user network the resolv.conf that
    /// names the embedded DNS server (see [`embedded_resolv`]).
    Bridge {
        ips: &'a [IpAddr],
        peers: &'a [Endpoint],
        resolv: Option<&'a str>,
    },
}

fn bind(dest: &str, src: &Path) -> Result<Mount, EngineError> {
    MountBuilder::default()
        .destination(dest)
        .typ("bind")
        .source(src)
        .options(vec!["rbind".to_string(), "rprivate".to_string()])
        .build()
        .map_err(|e| EngineError::Internal(format!("mount {dest}: {e}")))
}

/// Writes `text` into `path` in place (keeping the inode a bind mount may pin).
fn write_in_place(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// The lines of the other members: each address under the member's names, then on a line
/// of its own under the names qualified by the network (`web.backend`, as Docker's
/// embedded DNS answers `NAME.NETWORK`; a second line keeps each line as short as before,
/// for resolvers that read hosts lines into a small buffer).
fn peer_lines(own: &str, peers: &[Endpoint]) -> Vec<(IpAddr, String)> {
    peers
        .iter()
        .filter(|p| p.container != own)
        .flat_map(|p| {
            let qualified = qualified(p);
            p.ips().into_iter().flat_map(move |ip| {
                [(ip, p.names.clone()), (ip, qualified.clone())]
                    .into_iter()
                    .filter(|(_, n)| !n.is_empty())
            })
        })
        .collect()
}

/// `e`'s names qualified by its network (`web.backend www.backend`).
fn qualified(e: &Endpoint) -> String {
    e.names
        .split(' ')
        .filter(|n| !n.is_empty())
        .map(|n| format!("{n}.{}", e.network))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Engine {
    /// Writes the files for `r` and returns their bind mounts.
    pub(crate) fn net_files(&self, r: &Record, what: Files<'_>) -> Result<Vec<Mount>, EngineError> {
        let dir = self.make_container_run_dir(&r.id)?;
        let names = own_names(r);
        let names: Vec<&str> = names.split(' ').collect();
        let embedded = matches!(
            what,
            Files::Bridge {
                resolv: Some(_),
                ..
            }
        );
        let (mut hosts, resolv) = texts(what, &names, &r.id);
        hosts.push_str(&extra_lines(self.store()?.conn(), r));
        // The embedded server's resolv.conf has the --dns* flags applied already.
        let resolv = if embedded {
            resolv
        } else {
            resolv_with_flags(r, resolv)
        };
        let hostname = format!("{}\n", r.config.resolved.hostname);
        let mut files = vec![("hosts", hosts), ("hostname", hostname)];
        files.extend(resolv.map(|t| ("resolv.conf", t)));
        write_binds(&dir, &files)
    }

    /// Rewrites the hosts file of every member of `network` from the current endpoints.
    /// Runs inside the caller's write transaction so concurrent joins cannot interleave.
    /// With one network per member this is one query, as before multi-network endpoints.
    /// `starting`: the container being started, whose row may not be stored yet (a
    /// foreground run's is stored by the housekeeper meanwhile); its own lines come from it.
    pub(crate) fn refresh_hosts(
        &self,
        conn: &rusqlite::Connection,
        network: &str,
        starting: Option<&Record>,
    ) {
        let Ok(rows) = db::endpoints_of_members(conn, network) else {
            return;
        };
        // Who is on each user network the members are on (`network` itself: `rows`).
        let mut on: BTreeMap<&str, Vec<Endpoint>> = BTreeMap::new();
        on.insert(
            network,
            rows.iter()
                .filter(|e| e.network == network)
                .cloned()
                .collect(),
        );
        for e in &rows {
            if e.network != super::DEFAULT && !on.contains_key(e.network.as_str()) {
                let all = db::endpoints_on(conn, &e.network).unwrap_or_default();
                on.insert(&e.network, all);
            }
        }
        for m in rows.iter().filter(|e| e.network == network) {
            let own: Vec<&Endpoint> = rows.iter().filter(|e| e.container == m.container).collect();
            let first = own
                .iter()
                .min_by_key(|e| (e.ifname.len(), e.ifname.as_str()))
                .copied()
                .unwrap_or(m);
            // Its own names qualified by each of its user networks, then the others.
            let mut peers: Vec<(IpAddr, String)> = own
                .iter()
                .filter(|e| e.network != super::DEFAULT)
                .flat_map(|e| e.ips().into_iter().map(|ip| (ip, qualified(e))))
                .filter(|(_, n)| !n.is_empty())
                .collect();
            for e in &own {
                if let Some(members) = on.get(e.network.as_str()) {
                    peers.extend(peer_lines(&m.container, members));
                }
            }
            let names: Vec<&str> = first.names.split(' ').collect();
            let mut text = gcr_net::resolv::hosts_file(&first.ips(), &names, &peers);
            // Its own --add-host and --link lines stay (compose's extra_hosts and links).
            if let Some(r) = starting.filter(|r| r.id == m.container) {
                text.push_str(&extra_lines(conn, r));
            } else if has_extra_lines(conn, &m.container) {
                if let Ok(r) = crate::container::record::find(conn, &m.container) {
                    text.push_str(&extra_lines(conn, &r));
                }
            }
            let p = self.container_run_dir(&m.container).join("hosts");
            if p.exists() {
                let _ = write_in_place(&p, &text);
            }
        }
    }
}

impl Engine {
    /// Rewrites `r`'s hosts file (when it has one) with its own lines only: `ips`, or
    /// loopback when it has no network left.
    pub(crate) fn rewrite_hosts(&self, r: &Record, ips: &[IpAddr]) {
        let names = own_names(r);
        let names: Vec<&str> = names.split(' ').collect();
        let mut text = gcr_net::resolv::hosts_file(ips, &names, &[]);
        let p = self.container_run_dir(&r.id).join("hosts");
        if p.exists() {
            if let Ok(store) = self.store() {
                text.push_str(&extra_lines(store.conn(), r));
                let _ = write_in_place(&p, &text);
            }
        }
    }
}

/// The hosts and resolv.conf texts of a namespace of `what` kind for `names` (`own`: the
/// endpoint left out of the peers).
fn texts(what: Files<'_>, names: &[&str], own: &str) -> (String, Option<String>) {
    match what {
        Files::Loopback => (gcr_net::resolv::hosts_file(&[], names, &[]), None),
        Files::Host => (
            std::fs::read_to_string("/etc/hosts")
                .unwrap_or_else(|_| gcr_net::resolv::hosts_file(&[], names, &[])),
            Some(std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()),
        ),
        Files::Bridge { ips, peers, resolv } => (
            gcr_net::resolv::hosts_file(ips, names, &peer_lines(own, peers)),
            Some(resolv.map_or_else(gcr_net::resolv::container_resolv_conf, str::to_string)),
        ),
    }
}

/// Writes each `(name, text)` into `dir` and returns its bind mount on `/etc/<name>`.
fn write_binds(dir: &Path, files: &[(&str, String)]) -> Result<Vec<Mount>, EngineError> {
    files
        .iter()
        .map(|(name, text)| {
            let p = dir.join(name);
            write_in_place(&p, text)
                .map_err(|e| EngineError::Io(format!("writing {}", p.display()), e))?;
            bind(&format!("/etc/{name}"), &p)
        })
        .collect()
}

/// `/etc/hosts` and `/etc/resolv.conf` of a build step named `hostname` (its UTS name
/// stands for `/etc/hostname`), written in `dir`.
pub(crate) fn step_files(
    dir: &Path,
    hostname: &str,
    what: Files<'_>,
) -> Result<Vec<Mount>, EngineError> {
    let (hosts, resolv) = texts(what, &[hostname], "");
    let mut files = vec![("hosts", hosts)];
    files.extend(resolv.map(|t| ("resolv.conf", t)));
    write_binds(dir, &files)
}

/// `NAME:IP` (or `NAME=IP`) of an `--add-host`, when it is one.
pub fn parse_add_host(s: &str) -> Option<(&str, std::net::IpAddr)> {
    let (name, ip) = s.split_once('=').or_else(|| s.split_once(':'))?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    (!name.is_empty() && !name.contains(char::is_whitespace))
        .then_some(())
        .and(ip.parse().ok())
        .map(|ip| (name, ip))
}

/// The hosts lines of `r`'s `--add-host` flags, then of its `--link`s: each linked
/// container's address (on `r`'s first network when it is there, else on another network
/// they share) under the alias, its name and its short id. A link whose container has no
/// address shared with `r` (stopped, or on other networks) has no line.
fn extra_lines(conn: &rusqlite::Connection, r: &Record) -> String {
    let mut out: String = r
        .config
        .opts
        .add_hosts
        .iter()
        .filter_map(|h| parse_add_host(h))
        .map(|(name, ip)| format!("{ip}\t{name}\n"))
        .collect();
    for (name, alias) in r
        .config
        .opts
        .links
        .iter()
        .filter_map(|l| super::links::parse_link(l))
    {
        let Some((ip, t)) = super::links::link_address(conn, r, name) else {
            continue;
        };
        let short = &t.id[..12.min(t.id.len())];
        let mut names = vec![alias, short, t.name.as_str()];
        names.dedup();
        out.push_str(&format!("{ip}\t{}\n", names.join(" ")));
    }
    out
}

/// Whether container `id` has `--add-host` or `--link` lines, asked of its stored config
/// without decoding the whole record (most members have none; every start on a user
/// network rewrites every member's file).
fn has_extra_lines(conn: &rusqlite::Connection, id: &str) -> bool {
    conn.prepare_cached(
        "SELECT 1 FROM containers WHERE id = ?1 AND \
         (json_extract(config, '$.opts.add_hosts') IS NOT NULL \
          OR json_extract(config, '$.opts.links') IS NOT NULL)",
    )
    .and_then(|mut s| s.exists([id]))
    .unwrap_or(true)
}

/// The resolv.conf text with `--dns*` applied.
fn resolv_with_flags(r: &Record, resolv: Option<String>) -> Option<String> {
    let o = &r.config.opts;
    if o.dns.is_empty() && o.dns_search.is_empty() && o.dns_options.is_empty() {
        return resolv;
    }
    // Each flag replaces its kind of line; the others stay as they were.
    let base = resolv.unwrap_or_default();
    let lines = |key: &str| -> Vec<String> {
        base.lines()
            .filter_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
            .collect()
    };
    let pick = |flag: &Vec<String>, key: &str| {
        if flag.is_empty() {
            lines(key)
        } else {
            flag.clone()
        }
    };
    let mut text = String::new();
    for ns in pick(&o.dns, "nameserver ") {
        text.push_str(&format!("nameserver {ns}\n"));
    }
    let search = pick(&o.dns_search, "search ");
    if !search.is_empty() {
        text.push_str(&format!("search {}\n", search.join(" ")));
    }
    let options = pick(&o.dns_options, "options ");
    if !options.is_empty() {
        text.push_str(&format!("options {}\n", options.join(" ")));
    }
    Some(text)
}

/// The resolv.conf of container `r` on a user network: the embedded server, the `search`
/// and `options` of the host's resolv.conf text `host` unless `--dns-search` /
/// `--dns-option` say otherwise (`--dns` names the servers it forwards to, `upstreams`).
pub(super) fn embedded_resolv(
    r: &Record,
    host: &str,
    upstreams: &[std::net::SocketAddr],
) -> String {
    let o = &r.config.opts;
    let pick = |flag: &[String], key: &str| -> Vec<String> {
        if flag.is_empty() {
            gcr_net::resolv::words(host, key)
                .into_iter()
                .map(str::to_string)
                .collect()
        } else {
            flag.to_vec()
        }
    };
    let search = pick(&o.dns_search, "search");
    let options = pick(&o.dns_options, "options");
    let s: Vec<&str> = search.iter().map(String::as_str).collect();
    let op: Vec<&str> = options.iter().map(String::as_str).collect();
    gcr_net::resolv::embedded_resolv_conf(&s, &op, upstreams)
}

/// The names a container answers to on its first network: its hostname, its name and its
/// network aliases.
pub(crate) fn own_names(r: &Record) -> String {
    names_with(r, &r.config.opts.network_aliases)
}

/// The names a container answers to on a network where its aliases are `aliases`.
pub(crate) fn names_with(r: &Record, aliases: &[String]) -> String {
    let h = &r.config.resolved.hostname;
    let mut names = vec![h.as_str()];
    for n in std::iter::once(&r.name).chain(aliases) {
        if !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    names.join(" ")
}
