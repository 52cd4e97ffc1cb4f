//! The names the embedded DNS server answers for: the container's own hosts file, as gcr
//! writes it (its own addresses and names, then the members of its user networks with their
//! aliases). One source for both resolvers: what `getent hosts web` finds in `/etc/hosts`,
//! `nslookup web` finds at 127.0.0.11. The file follows the network: gcr rewrites it in
//! place whenever a member joins or leaves.

use std::io::Read;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// At most this much of a hosts file is read (the container can write its own /etc/hosts).
const MAX_FILE: u64 = 1 << 20;

/// Parsed hosts lines: each address with its names (lowercase, without a trailing dot).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Table {
    entries: Vec<(IpAddr, Vec<String>)>,
}

/// A DNS name as the table keeps it: ASCII lowercase, no trailing dot.
pub fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Table {
    /// Parses hosts-file text; lines that do not start with an address are skipped.
    pub fn parse(text: &str) -> Table {
        let entries = text
            .lines()
            .filter_map(|l| {
                let l = l.split('#').next().unwrap_or("");
                let mut words = l.split_whitespace();
                let ip: IpAddr = words.next()?.parse().ok()?;
                let names: Vec<String> = words.map(key).filter(|n| !n.is_empty()).collect();
                (!names.is_empty()).then_some((ip, names))
            })
            .collect();
        Table { entries }
    }

    /// Every address of `name` (file order, no repeats), or None when no line names it.
    pub fn addresses(&self, name: &str) -> Option<Vec<IpAddr>> {
        let name = key(name);
        let mut found = None::<Vec<IpAddr>>;
        for (ip, names) in &self.entries {
            if names.contains(&name) {
                let v = found.get_or_insert_with(Vec::new);
                if !v.contains(ip) {
                    v.push(*ip);
                }
            }
        }
        found
    }

    /// The first name given to `ip` (the reverse lookup).
    pub fn name_of(&self, ip: IpAddr) -> Option<&str> {
        self.entries
            .iter()
            .find(|(a, _)| *a == ip)
            .and_then(|(_, n)| n.first())
            .map(String::as_str)
    }
}

/// A hosts file, read at each query (it is small; gcr rewrites it in place, so neither its
/// inode nor a coarse modification time tells versions apart) and parsed again only when
/// its text changed.
pub struct HostsFile {
    path: PathBuf,
    cache: Mutex<(String, Arc<Table>)>,
}

impl HostsFile {
    pub fn new(path: PathBuf) -> HostsFile {
        HostsFile {
            path,
            cache: Mutex::new((String::new(), Arc::new(Table::default()))),
        }
    }

    /// The table as the file says now (the last one read when the file cannot be read).
    pub fn table(&self) -> Arc<Table> {
        let Ok(mut c) = self.cache.lock() else {
            return Arc::new(Table::default());
        };
        let Ok(f) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&self.path)
        else {
            return c.1.clone();
        };
        if !f.metadata().is_ok_and(|m| m.is_file()) {
            return c.1.clone();
        }
        let mut text = String::new();
        if f.take(MAX_FILE).read_to_string(&mut text).is_err() {
            return c.1.clone();
        }
        if text != c.0 {
            let t = Arc::new(Table::parse(&text));
            *c = (text, t);
        }
        c.1.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n\
        10.9.0.2\tabc123 web Web.Alias.\nfd00:9::2\tabc123 web Web.Alias.\n\
        # a comment\nnot-an-address x\n10.9.0.3\tdb # trailing\n10.9.0.2\tweb\n";

    #[test]
    fn names_are_found_case_blind_with_every_address_once() {
        let t = Table::parse(HOSTS);
        assert_eq!(
            t.addresses("WEB."),
            Some(vec![
                "10.9.0.2".parse().unwrap(),
                "fd00:9::2".parse().unwrap()
            ])
        );
        assert_eq!(
            t.addresses("web.alias"),
            t.addresses("web"),
            "aliases resolve alike"
        );
        assert_eq!(t.addresses("db"), Some(vec!["10.9.0.3".parse().unwrap()]));
        assert_eq!(t.addresses("trailing"), None, "comments are not names");
        assert_eq!(t.addresses("x"), None);
        assert_eq!(t.addresses("nosuch"), None);
        assert_eq!(t.name_of("10.9.0.3".parse().unwrap()), Some("db"));
        assert_eq!(t.name_of("10.9.0.2".parse().unwrap()), Some("abc123"));
        assert_eq!(t.name_of("10.9.0.9".parse().unwrap()), None);
    }

    #[test]
    fn the_file_is_reread_when_it_changes() {
        let dir = std::env::temp_dir().join(format!("gcr-dns-table-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("hosts");
        std::fs::write(&p, "10.0.0.2 a\n").unwrap();
        let h = HostsFile::new(p.clone());
        assert!(h.table().addresses("a").is_some());
        std::fs::write(&p, "10.0.0.3 bb\n").unwrap();
        let t = h.table();
        assert!(t.addresses("a").is_none() && t.addresses("bb").is_some());
        // A link in its place is not followed; the last table stays.
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink("/etc/hosts", &p).unwrap();
        assert!(h.table().addresses("bb").is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
