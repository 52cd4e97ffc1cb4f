//! Reads an image from an `oci-archive` or a `docker-archive`, flattens its layers into
//! one root filesystem (OCI whiteouts: `.wh.NAME` and `.wh..wh..opq`), and compares two
//! images: the filesystem (path, type, mode, owner, content digest, link target, hard
//! links; never times) and the config fields a Dockerfile sets.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// One path of a flattened root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    /// Permission bits with setuid/setgid/sticky (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// A regular file: sha256 of its content and its size.
    File {
        sha256: String,
        size: u64,
    },
    Symlink(String),
    /// A device, fifo or other special file, with its tar type byte.
    Other(u8),
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Dir => "dir".to_string(),
            Kind::File { sha256, size } => format!("file {size}B sha256:{}", &sha256[..12]),
            Kind::Symlink(t) => format!("symlink -> {t}"),
            Kind::Other(t) => format!("special (tar type {})", *t as char),
        };
        write!(f, "{kind} {:04o} {}:{}", self.mode, self.uid, self.gid)
    }
}

/// A flattened image: its filesystem, hard-link groups and config.
#[derive(Debug, Default)]
pub struct Image {
    pub files: BTreeMap<String, Node>,
    /// For each path that is one of several hard links to one file: all its names.
    pub hardlinks: BTreeMap<String, BTreeSet<String>>,
    /// The image config's `config` object (Env, Cmd, ...).
    pub config: serde_json::Value,
}

/// Reads every regular file of a tar into memory (archives here are small).
fn read_tar(data: &[u8]) -> Result<HashMap<String, Vec<u8>>, String> {
    let mut out = HashMap::new();
    let mut ar = tar::Archive::new(data);
    for e in ar.entries().map_err(|e| format!("archive: {e}"))? {
        let mut e = e.map_err(|e| format!("archive entry: {e}"))?;
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = e
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        let path = path.trim_start_matches("./").to_string();
        let mut buf = Vec::new();
        e.read_to_end(&mut buf)
            .map_err(|e| format!("{path}: {e}"))?;
        out.insert(path, buf);
    }
    Ok(out)
}

fn json(bytes: &[u8], what: &str) -> Result<serde_json::Value, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("{what}: {e}"))
}

fn get<'a>(files: &'a HashMap<String, Vec<u8>>, path: &str) -> Result<&'a [u8], String> {
    files
        .get(path)
        .map(Vec::as_slice)
        .ok_or_else(|| format!("archive has no {path}"))
}

fn blob<'a>(files: &'a HashMap<String, Vec<u8>>, digest: &str) -> Result<&'a [u8], String> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("unsupported digest {digest}"))?;
    get(files, &format!("blobs/sha256/{hex}"))
}

/// Loads an `oci-archive` (index.json) or a `docker-archive` (manifest.json) holding one
/// image and flattens it.
pub fn load(archive: &Path) -> Result<Image, String> {
    let data = std::fs::read(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    let files = read_tar(&data)?;
    let (config, layers): (serde_json::Value, Vec<&[u8]>) = if files.contains_key("index.json") {
        let mut m = json(get(&files, "index.json")?, "index.json")?;
        // Follow nested indexes down to the first image manifest.
        while let Some(d) = m["manifests"][0]["digest"].as_str().map(str::to_string) {
            m = json(blob(&files, &d)?, &d)?;
        }
        let cfg = m["config"]["digest"]
            .as_str()
            .ok_or("manifest without config")?;
        let config = json(blob(&files, cfg)?, "config")?;
        let mut layers = Vec::new();
        for l in m["layers"].as_array().cloned().unwrap_or_default() {
            let d = l["digest"].as_str().ok_or("layer without digest")?;
            layers.push(blob(&files, d)?);
        }
        (config, layers)
    } else {
        let m = json(get(&files, "manifest.json")?, "manifest.json")?;
        let m = &m[0];
        let cfg = m["Config"].as_str().ok_or("manifest.json without Config")?;
        let config = json(get(&files, cfg)?, "config")?;
        let mut layers = Vec::new();
        for l in m["Layers"].as_array().cloned().unwrap_or_default() {
            layers.push(get(&files, l.as_str().ok_or("bad layer path")?)?);
        }
        (config, layers)
    };
    let mut img = Image {
        config: config["config"].clone(),
        ..Image::default()
    };
    let mut links = Links::default();
    for (i, l) in layers.iter().enumerate() {
        apply_layer(&mut img.files, &mut links, l).map_err(|e| format!("layer {i}: {e}"))?;
    }
    img.hardlinks = links.groups(&img.files);
    Ok(img)
}

/// Hard links seen while applying layers (name -> the name it links to).
#[derive(Default)]
pub struct Links {
    to: BTreeMap<String, String>,
}

impl Links {
    fn root(&self, p: &str) -> String {
        let mut p = p.to_string();
        let mut hops = 0;
        while let Some(n) = self.to.get(&p) {
            p = n.clone();
            hops += 1;
            if hops > 1000 {
                break;
            }
        }
        p
    }

    /// Groups of names that still exist as files and share one inode.
    fn groups(&self, files: &BTreeMap<String, Node>) -> BTreeMap<String, BTreeSet<String>> {
        let mut by_root: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for name in self.to.keys() {
            by_root
                .entry(self.root(name))
                .or_default()
                .insert(name.clone());
        }
        let mut out = BTreeMap::new();
        for (root, mut names) in by_root {
            names.insert(root);
            names.retain(|n| {
                matches!(
                    files.get(n),
                    Some(Node {
                        kind: Kind::File { .. },
                        ..
                    })
                )
            });
            if names.len() > 1 {
                for n in &names {
                    out.insert(n.clone(), names.clone());
                }
            }
        }
        out
    }

    fn forget(&mut self, path: &str) {
        let sub = format!("{path}/");
        self.to.retain(|k, _| k != path && !k.starts_with(&sub));
    }
}

/// `/a/b` for any of `a/b`, `./a/b/`, `/a/b`; `/` for the root.
pub fn clean(p: &str) -> String {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

fn remove_tree(files: &mut BTreeMap<String, Node>, links: &mut Links, path: &str) {
    let sub = format!("{path}/");
    files.retain(|k, _| k != path && !k.starts_with(&sub));
    links.forget(path);
}

/// Applies one layer (gzip or plain tar): whiteouts first (they hide lower layers only),
/// then the entries in order.
pub fn apply_layer(
    files: &mut BTreeMap<String, Node>,
    links: &mut Links,
    raw: &[u8],
) -> Result<(), String> {
    let mut data = Vec::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(raw)
            .read_to_end(&mut data)
            .map_err(|e| format!("gunzip: {e}"))?;
    } else if raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err("zstd layers are not supported by this harness".into());
    } else {
        data = raw.to_vec();
    }
    struct Entry {
        path: String,
        node: Option<Node>,
        link: Option<String>,
    }
    let mut entries = Vec::new();
    let mut ar = tar::Archive::new(&data[..]);
    for e in ar.entries().map_err(|e| e.to_string())? {
        let mut e = e.map_err(|e| e.to_string())?;
        let raw_path = e
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        let path = clean(&raw_path);
        let h = e.header();
        let mode = h.mode().map_err(|e| e.to_string())? & 0o7777;
        let uid = h.uid().map_err(|e| e.to_string())?;
        let gid = h.gid().map_err(|e| e.to_string())?;
        let t = h.entry_type();
        let target = e
            .link_name()
            .map_err(|e| e.to_string())?
            .map(|l| l.to_string_lossy().into_owned());
        let (kind, link) = match t {
            tar::EntryType::Directory => (Some(Kind::Dir), None),
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut h = Sha256::new();
                let mut buf = Vec::new();
                e.read_to_end(&mut buf)
                    .map_err(|e| format!("{path}: {e}"))?;
                h.update(&buf);
                (
                    Some(Kind::File {
                        sha256: format!("{:x}", h.finalize()),
                        size: buf.len() as u64,
                    }),
                    None,
                )
            }
            tar::EntryType::Symlink => (Some(Kind::Symlink(target.unwrap_or_default())), None),
            tar::EntryType::Link => (None, Some(clean(&target.unwrap_or_default()))),
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
            other => (Some(Kind::Other(other.as_byte())), None),
        };
        entries.push(Entry {
            path,
            node: kind.map(|kind| Node {
                kind,
                mode,
                uid,
                gid,
            }),
            link,
        });
    }
    // Whiteouts hide what the lower layers have.
    for e in &entries {
        let (dir, base) = e.path.rsplit_once('/').unwrap_or(("", &e.path));
        let dir = if dir.is_empty() { "/" } else { dir };
        if base == ".wh..wh..opq" {
            let sub = if dir == "/" {
                "/".to_string()
            } else {
                format!("{dir}/")
            };
            let gone: Vec<String> = files
                .keys()
                .filter(|k| k.starts_with(&sub) && k.as_str() != dir)
                .cloned()
                .collect();
            for k in gone {
                remove_tree(files, links, &k);
            }
        } else if let Some(name) = base.strip_prefix(".wh.") {
            let target = clean(&format!("{dir}/{name}"));
            remove_tree(files, links, &target);
        }
    }
    for e in entries {
        let base = e.path.rsplit('/').next().unwrap_or("");
        if base.starts_with(".wh.") || e.path == "/" && e.node.is_none() {
            continue;
        }
        let node = match (e.node, e.link) {
            (Some(n), _) => n,
            (None, Some(target)) => {
                let n = files
                    .get(&target)
                    .cloned()
                    .ok_or_else(|| format!("hard link {} to missing {target}", e.path))?;
                links.to.insert(e.path.clone(), target);
                n
            }
            (None, None) => continue,
        };
        match files.get(&e.path) {
            // A directory over a directory keeps what is inside (only its metadata changes).
            Some(old) if old.kind == Kind::Dir && node.kind == Kind::Dir => {}
            Some(_) => {
                let keep = links.to.get(&e.path).cloned();
                remove_tree(files, links, &e.path);
                if let Some(k) = keep.filter(|_| !matches!(node.kind, Kind::Dir)) {
                    links.to.insert(e.path.clone(), k);
                }
            }
            None => {}
        }
        files.insert(e.path, node);
    }
    Ok(())
}

/// The config fields a Dockerfile sets, compared between builders.
pub const CONFIG_FIELDS: &[&str] = &[
    "Env",
    "Entrypoint",
    "Cmd",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "Healthcheck",
    "StopSignal",
    "OnBuild",
    "Shell",
    "ArgsEscaped",
];

/// A config field as compared: absent, `null`, `""`, `false`, `{}` and `[]` are all
/// "unset" for fields where Docker itself treats them alike; buildah's own version label
/// is dropped. `Cmd`/`Entrypoint` keep `[]` apart from unset (it is meaningful there).
pub fn config_field(config: &serde_json::Value, field: &str) -> serde_json::Value {
    use serde_json::Value;
    let mut v = config.get(field).cloned().unwrap_or(Value::Null);
    if field == "Labels" {
        if let Value::Object(m) = &mut v {
            m.remove("io.buildah.version");
        }
    }
    let empty = match &v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty() && !matches!(field, "Cmd" | "Entrypoint"),
        Value::Number(_) => false,
    };
    if empty {
        Value::Null
    } else {
        v
    }
}

/// Is this difference (a path or `config.Field`) listed as known for this comparison?
pub type Known<'a> = &'a dyn Fn(&str) -> bool;

/// Every difference between two images, one readable line each (`a` and `b` name the
/// builders); items that `known` accepts are left out.
pub fn diff(a_name: &str, a: &Image, b_name: &str, b: &Image, known: Known) -> Vec<String> {
    let mut out = Vec::new();
    for f in CONFIG_FIELDS {
        let item = format!("config.{f}");
        let (x, y) = (config_field(&a.config, f), config_field(&b.config, f));
        if x != y && !known(&item) {
            out.push(format!("{item}: {a_name} {x}, {b_name} {y}"));
        }
    }
    let paths: BTreeSet<&String> = a.files.keys().chain(b.files.keys()).collect();
    for p in paths {
        if known(p) {
            continue;
        }
        match (a.files.get(p), b.files.get(p)) {
            (Some(x), Some(y)) if x != y => out.push(format!("{p}: {a_name} {x}, {b_name} {y}")),
            (Some(x), None) => out.push(format!("{p}: only in {a_name} ({x})")),
            (None, Some(y)) => out.push(format!("{p}: only in {b_name} ({y})")),
            _ => {
                let (x, y) = (a.hardlinks.get(p), b.hardlinks.get(p));
                if x != y {
                    out.push(format!(
                        "{p}: hard links {a_name} {:?}, {b_name} {:?}",
                        x.cloned().unwrap_or_default(),
                        y.cloned().unwrap_or_default()
                    ));
                }
            }
        }
    }
    out
}

/// Removes what a peer adds to every image that Docker does not, so each case need not
/// list it (README.md, "Normalized peer artifacts"):
/// - buildah 1.28 leaves the targets of its RUN mounts behind when the base lacks them
///   (empty `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf` files, an empty `/run`
///   directory), and writes `[]` for an unset Cmd or Entrypoint;
/// - docker 20.10's frontend sets `ArgsEscaped` on Linux (a Windows-only field that newer
///   BuildKit leaves unset), so it is not compared with docker.
pub fn normalize(builder: &str, img: &mut Image) {
    match builder {
        "buildah" => {
            for f in ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"] {
                if matches!(
                    img.files.get(f),
                    Some(Node {
                        kind: Kind::File { size: 0, .. },
                        ..
                    })
                ) {
                    img.files.remove(f);
                }
            }
            let empty = !img.files.keys().any(|k| k.starts_with("/run/"));
            if empty && matches!(img.files.get("/run"), Some(n) if n.kind == Kind::Dir) {
                img.files.remove("/run");
            }
            if let serde_json::Value::Object(c) = &mut img.config {
                for f in ["Cmd", "Entrypoint"] {
                    if c.get(f)
                        .and_then(|v| v.as_array())
                        .is_some_and(|a| a.is_empty())
                    {
                        c.remove(f);
                    }
                }
            }
        }
        "docker" => {
            if let serde_json::Value::Object(c) = &mut img.config {
                c.remove("ArgsEscaped");
            }
        }
        _ => {}
    }
}
