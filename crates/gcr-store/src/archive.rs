//! Loading oci-archive (OCI image layout in a tar) and docker-archive (`docker save`)
//! tarballs, plain or gzip'd, detected automatically. Everything is spooled into `tmp/` and
//! hashed first; blobs are verified and moved into the CAS; the images are recorded in one
//! transaction at the end, so a truncated or corrupt archive leaves no half-written image.
//! OCI 1.1 referrers listed in an oci-archive's index.json are indexed after the images.

use crate::error::{Result, StoreError};
use crate::images::{register, NewImage, NewLayer};
use crate::import::host_arch;
use crate::progress::{Progress, ProgressReader};
use crate::util::{digest_hex, maybe_gunzip, parse_reference, HashWriter};
use crate::Store;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// An uncompressed Docker layer (containers/image's name for it; Docker's archives hold
/// such layers, which skopeo labels `…tar.gzip` all the same).
pub(crate) const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// The two archive formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// An OCI image layout in a tar (`oci-layout`, `index.json`, `blobs/`).
    OciArchive,
    /// `docker save` format (`manifest.json`, `repositories`, config and layer files).
    DockerArchive,
}

/// What a load recorded: `(image id, full normalized tags)` per image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    pub format: ArchiveFormat,
    pub images: Vec<(String, Vec<String>)>,
    /// OCI 1.1 referrers indexed (oci-archive only).
    pub referrers: usize,
}

/// A file of the archive, spooled to disk and hashed.
pub(crate) struct Spooled {
    pub path: PathBuf,
    pub digest: String,
    pub size: u64,
}

pub(crate) struct Spool {
    _dir: tempfile::TempDir,
    files: HashMap<String, Spooled>,
    links: HashMap<String, String>,
}

pub(crate) fn bad(msg: impl Into<String>) -> StoreError {
    StoreError::Archive(msg.into())
}

fn clean_name(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

impl Spool {
    pub fn get(&self, name: &str) -> Result<&Spooled> {
        let mut name = name.trim_start_matches("./").to_string();
        for _ in 0..8 {
            if let Some(f) = self.files.get(&name) {
                return Ok(f);
            }
            match self.links.get(&name) {
                Some(t) => name = t.clone(),
                None => break,
            }
        }
        Err(bad(format!(
            "the archive has no file '{name}'; it is incomplete or not a valid image archive"
        )))
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let f = self.get(name)?;
        std::fs::read(&f.path).map_err(|e| StoreError::io("cannot read", &f.path, e))
    }

    pub fn json(&self, name: &str) -> Result<Value> {
        serde_json::from_slice(&self.read(name)?)
            .map_err(|e| StoreError::bad_json(format!("archive file '{name}'"), e))
    }

    /// An OCI blob by digest, checked against its name.
    pub(crate) fn blob(&self, digest: &str) -> Result<&Spooled> {
        let name = format!("blobs/sha256/{}", digest_hex(digest)?);
        let f = self.get(&name)?;
        if f.digest != digest {
            return Err(StoreError::DigestMismatch {
                expected: digest.to_string(),
                actual: f.digest.clone(),
            });
        }
        Ok(f)
    }
}

pub(crate) fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

impl Store {
    /// Loads an archive file (see [`Store::load`]); progress is reported in file bytes.
    pub fn load_path(&self, path: &Path, progress: &dyn Progress) -> Result<LoadReport> {
        let f = std::fs::File::open(path)
            .map_err(|e| StoreError::io("cannot open archive", path, e))?;
        progress.start(f.metadata().map(|m| m.len()).unwrap_or(0));
        let r = self.load_inner(f, progress);
        progress.finish();
        r
    }

    /// Loads an oci-archive or docker-archive (plain or gzip'd tar) from a stream.
    pub fn load(&self, reader: impl Read, progress: &dyn Progress) -> Result<LoadReport> {
        progress.start(0);
        let r = self.load_inner(reader, progress);
        progress.finish();
        r
    }

    fn load_inner(&self, reader: impl Read, progress: &dyn Progress) -> Result<LoadReport> {
        let spool = self.spool(ProgressReader {
            inner: reader,
            progress,
        })?;
        // index.json entries whose manifest has a subject: indexed after the images.
        let mut referrers = Vec::new();
        let (format, images) = if spool.files.contains_key("index.json")
            && spool.files.contains_key("oci-layout")
        {
            (
                ArchiveFormat::OciArchive,
                self.oci_images(&spool, &mut referrers)?,
            )
        } else if spool.files.contains_key("manifest.json") {
            (ArchiveFormat::DockerArchive, self.docker_images(&spool)?)
        } else {
            return Err(bad(
                "it has neither oci-layout/index.json nor manifest.json; give an oci-archive or docker-archive",
            ));
        };
        if images.is_empty() {
            return Err(bad("it contains no image"));
        }
        // Several index entries may name one image (one per tag): merge them.
        let mut merged: Vec<NewImage> = Vec::new();
        for img in images {
            match merged
                .iter_mut()
                .find(|m| m.id() == img.id() && m.manifest_digest == img.manifest_digest)
            {
                Some(m) => {
                    for t in img.tags {
                        if !m.tags.contains(&t) {
                            m.tags.push(t);
                        }
                    }
                }
                None => merged.push(img),
            }
        }
        let images = merged;
        let ids = register(self, &images, "load")?;
        let mut report = LoadReport {
            format,
            images: Vec::new(),
            referrers: crate::referrers::load_referrers(self, &spool, referrers)?,
        };
        for (id, img) in ids.into_iter().zip(images) {
            for t in &img.tags {
                progress.message(&format!("Loaded image: {}", crate::util::familiar(t)));
            }
            if img.tags.is_empty() {
                progress.message(&format!("Loaded image ID: {id}"));
            }
            report.images.push((id, img.tags));
        }
        Ok(report)
    }

    fn spool(&self, reader: impl Read) -> Result<Spool> {
        let dir = tempfile::Builder::new()
            .prefix(&crate::tmpfiles::prefix("load"))
            .tempdir_in(self.tmp_dir())
            .map_err(|e| StoreError::io("cannot create a temp dir in", self.tmp_dir(), e))?;
        let rd = |e: std::io::Error| bad(format!("the archive is truncated or corrupt: {e}"));
        let mut ar = tar::Archive::new(
            maybe_gunzip(BufReader::with_capacity(256 * 1024, reader)).map_err(rd)?,
        );
        let mut files = HashMap::new();
        let mut links = HashMap::new();
        for (n, e) in ar.entries().map_err(rd)?.enumerate() {
            let mut e = e.map_err(rd)?;
            let name = clean_name(&e.path_bytes());
            match e.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let path = dir.path().join(n.to_string());
                    let f = std::fs::File::create(&path)
                        .map_err(|e| StoreError::io("cannot create", &path, e))?;
                    let mut w = HashWriter::new(std::io::BufWriter::with_capacity(256 * 1024, f));
                    std::io::copy(&mut e, &mut w)
                        .map_err(|e| crate::error::input_or_space(&self.tmp_dir(), e, rd))?;
                    w.flush()
                        .map_err(|e| StoreError::io("cannot write", &path, e))?;
                    files.insert(
                        name,
                        Spooled {
                            path,
                            digest: w.digest(),
                            size: w.count,
                        },
                    );
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = e.link_name_bytes().unwrap_or_default().into_owned();
                    let target = String::from_utf8_lossy(&target).into_owned();
                    let resolved = if e.header().entry_type() == tar::EntryType::Link
                        || target.starts_with('/')
                    {
                        clean_name(target.as_bytes())
                    } else {
                        let base = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                        let mut parts: Vec<&str> =
                            base.split('/').filter(|c| !c.is_empty()).collect();
                        for c in target.split('/') {
                            match c {
                                "" | "." => {}
                                ".." => {
                                    parts.pop();
                                }
                                c => parts.push(c),
                            }
                        }
                        parts.join("/")
                    };
                    links.insert(name, resolved);
                }
                _ => {}
            }
        }
        // Make sure the tar ends properly (a truncated stream may end between entries).
        Ok(Spool {
            _dir: dir,
            files,
            links,
        })
    }

    fn oci_images(&self, sp: &Spool, referrers: &mut Vec<String>) -> Result<Vec<NewImage>> {
        let index = sp.json("index.json")?;
        let descs = index
            .get("manifests")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                StoreError::bad_json("archive index.json", "it has no 'manifests' list")
            })?;
        let mut out = Vec::new();
        for d in descs {
            if crate::referrers::is_referrer_entry(self, sp, d)? {
                referrers.extend(s(d, "digest").map(str::to_string));
                continue;
            }
            let mut desc = d.clone();
            // Resolve (one level of) index to this platform's manifest.
            let mt = s(&desc, "mediaType").unwrap_or("").to_string();
            if mt == OCI_INDEX || mt == DOCKER_LIST {
                let digest = s(&desc, "digest")
                    .ok_or_else(|| StoreError::bad_json("index entry", "no digest"))?;
                let child: Value = serde_json::from_slice(&self.read_spooled(sp.blob(digest)?)?)
                    .map_err(|e| StoreError::bad_json(format!("image index {digest}"), e))?;
                let list = child
                    .get("manifests")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let pick = list
                    .iter()
                    .find(|m| {
                        m.get("platform").is_some_and(|p| {
                            s(p, "os") == Some("linux") && s(p, "architecture") == Some(host_arch())
                        })
                    })
                    .or_else(|| list.first())
                    .ok_or_else(|| bad(format!("image index {digest} lists no manifest")))?;
                let mut p = pick.clone();
                if let (Some(obj), Some(ann)) = (p.as_object_mut(), desc.get("annotations")) {
                    obj.insert("annotations".into(), ann.clone());
                }
                desc = p;
            }
            out.push(self.oci_image(sp, &desc)?);
        }
        Ok(out)
    }

    /// Reads a spooled file, or its CAS copy once it has been moved there.
    pub(crate) fn read_spooled(&self, f: &Spooled) -> Result<Vec<u8>> {
        match std::fs::read(&f.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.read_blob(&f.digest),
            r => r.map_err(|e| StoreError::io("cannot read", &f.path, e)),
        }
    }

    fn oci_image(&self, sp: &Spool, desc: &Value) -> Result<NewImage> {
        let mdigest = s(desc, "digest")
            .ok_or_else(|| StoreError::bad_json("archive index.json", "an entry has no digest"))?;
        let mblob = sp.blob(mdigest)?;
        let mbytes = self.read_spooled(mblob)?;
        let m: Value = serde_json::from_slice(&mbytes)
            .map_err(|e| StoreError::bad_json(format!("manifest {mdigest}"), e))?;
        let mtype = s(&m, "mediaType")
            .or_else(|| s(desc, "mediaType"))
            .unwrap_or(crate::import::OCI_MANIFEST)
            .to_string();
        let cdigest = m
            .get("config")
            .and_then(|c| s(c, "digest"))
            .ok_or_else(|| {
                StoreError::bad_json(format!("manifest {mdigest}"), "it has no config digest")
            })?;
        let config = self.read_spooled(sp.blob(cdigest)?)?;
        let cfg: Value = serde_json::from_slice(&config)
            .map_err(|e| StoreError::bad_json(format!("image config {cdigest}"), e))?;
        let diff_ids = diff_ids(&cfg, cdigest)?;
        let layers = m
            .get("layers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if layers.len() != diff_ids.len() {
            return Err(bad(format!(
                "manifest {mdigest} lists {} layers but its config has {} diff_ids",
                layers.len(),
                diff_ids.len()
            )));
        }
        let mut new_layers = Vec::new();
        for (l, diff_id) in layers.iter().zip(diff_ids) {
            let ld = s(l, "digest").ok_or_else(|| {
                StoreError::bad_json(format!("manifest {mdigest}"), "a layer has no digest")
            })?;
            let f = sp.blob(ld)?;
            if let Some(sz) = l.get("size").and_then(Value::as_u64) {
                if sz != f.size {
                    return Err(bad(format!(
                        "layer {ld} has {} bytes but the manifest says {sz}",
                        f.size
                    )));
                }
            }
            new_layers.push(NewLayer {
                digest: ld.to_string(),
                diff_id,
                media_type: s(l, "mediaType")
                    .unwrap_or(crate::import::OCI_LAYER_GZIP)
                    .to_string(),
                size: f.size,
            });
        }
        // All verified: move blobs into the CAS.
        self.commit_file(&mblob.path, mdigest)?;
        self.commit_file(&sp.blob(cdigest)?.path, cdigest)?;
        for l in &new_layers {
            self.commit_file(&sp.blob(&l.digest)?.path, &l.digest)?;
        }
        let ann = desc.get("annotations");
        let name = ann
            .and_then(|a| s(a, "io.containerd.image.name"))
            .or_else(|| {
                ann.and_then(|a| s(a, "org.opencontainers.image.ref.name"))
                    .filter(|n| n.contains(['/', ':']))
            });
        let tags = name
            .and_then(|n| parse_reference(n).ok())
            .filter(|r| r.digest.is_none())
            .map(|r| r.tagged());
        Ok(NewImage {
            manifest_digest: mdigest.to_string(),
            manifest_media_type: mtype,
            config,
            layers: new_layers,
            tags: tags.into_iter().collect(),
        })
    }
}

pub(crate) fn diff_ids(cfg: &Value, what: &str) -> Result<Vec<String>> {
    let ids = cfg
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            StoreError::bad_json(format!("image config {what}"), "it has no rootfs.diff_ids")
        })?;
    ids.iter()
        .map(|v| {
            let d = v.as_str().unwrap_or("");
            digest_hex(d).map(|_| d.to_string())
        })
        .collect()
}
