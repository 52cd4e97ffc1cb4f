//! Saving images as an oci-archive (OCI image layout in a tar, with
//! `org.opencontainers.image.ref.name` annotations, readable by skopeo and umoci) or a
//! docker-archive (`docker save` layout: `manifest.json`, `repositories`, config and
//! uncompressed layer tars). Tar headers are fixed (mtime 0, root-owned) so output is stable.
//! An oci-archive also carries the images' OCI 1.1 referrers (index.json entries without a
//! name); a docker-archive has no place for them.

use crate::archive::{ArchiveFormat, OCI_INDEX};
use crate::error::{Result, StoreError};
use crate::progress::Progress;
use crate::util::{
    canonical_json, digest_hex, familiar, maybe_gunzip, parse_reference, HashReader,
};
use crate::Store;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::io::{BufReader, Read, Write};

fn header(size: u64, dir: bool) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

struct Out<'a, W: Write> {
    b: tar::Builder<W>,
    progress: &'a dyn Progress,
}

impl<W: Write> Out<'_, W> {
    fn bytes(&mut self, name: &str, data: &[u8]) -> Result<()> {
        self.reader(name, data.len() as u64, data)
    }
    fn dir(&mut self, name: &str) -> Result<()> {
        let mut h = header(0, true);
        self.b
            .append_data(&mut h, name, std::io::empty())
            .map_err(werr)
    }
    fn reader(&mut self, name: &str, size: u64, r: impl Read) -> Result<()> {
        let mut h = header(size, false);
        self.b.append_data(&mut h, name, r).map_err(werr)?;
        self.progress.advance(size);
        Ok(())
    }
}

fn werr(e: std::io::Error) -> StoreError {
    StoreError::Read {
        what: "the archive output (write)".into(),
        source: e,
    }
}

impl Store {
    /// Writes the named images (names, ids or digests) to `w` as an archive.
    pub fn save(
        &self,
        images: &[&str],
        format: ArchiveFormat,
        w: impl Write,
        progress: &dyn Progress,
    ) -> Result<()> {
        // (image id, manifest digest, media type, tags to write)
        let mut sel: Vec<(String, String, String, Vec<String>)> = Vec::new();
        for name in images {
            let img = self.resolve_image(name)?;
            let all = self.image_tags(&img.id)?;
            let named = parse_reference(name)
                .ok()
                .filter(|r| r.digest.is_none())
                .map(|r| r.tagged());
            let tags = match named {
                Some(t) if all.contains(&t) => vec![t],
                // Named by its id (or an id prefix), as dockerd: the archive names no tag.
                _ if names_by_id(name, &img.id) => Vec::new(),
                _ => all,
            };
            match sel.iter_mut().find(|s| s.0 == img.id) {
                Some(s) => {
                    for t in tags {
                        if !s.3.contains(&t) {
                            s.3.push(t);
                        }
                    }
                }
                None => sel.push((img.id, img.manifest_digest, img.manifest_media_type, tags)),
            }
        }
        let mut total = 0;
        for (id, ..) in &sel {
            total += self.image_layers(id)?.iter().map(|l| l.size).sum::<u64>();
        }
        progress.start(total);
        let mut out = Out {
            b: tar::Builder::new(w),
            progress,
        };
        match format {
            ArchiveFormat::OciArchive => self.save_oci(&sel, &mut out)?,
            ArchiveFormat::DockerArchive => self.save_docker(&sel, &mut out)?,
        }
        let mut w = out.b.into_inner().map_err(werr)?;
        w.flush().map_err(werr)?;
        progress.finish();
        Ok(())
    }

    fn blob_entry<W: Write>(
        &self,
        out: &mut Out<'_, W>,
        digest: &str,
        done: &mut HashSet<String>,
    ) -> Result<u64> {
        let f = self.open_blob(digest)?;
        let size = f
            .metadata()
            .map_err(|e| StoreError::io("cannot stat blob", digest, e))?
            .len();
        if done.insert(digest.to_string()) {
            out.reader(
                &format!("blobs/sha256/{}", digest_hex(digest)?),
                size,
                BufReader::new(f),
            )?;
        }
        Ok(size)
    }

    fn save_oci<W: Write>(
        &self,
        sel: &[(String, String, String, Vec<String>)],
        out: &mut Out<'_, W>,
    ) -> Result<()> {
        out.bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        out.dir("blobs/")?;
        out.dir("blobs/sha256/")?;
        let mut done = HashSet::new();
        let mut manifests = Vec::new();
        for (id, mdigest, mtype, tags) in sel {
            for l in self.image_layers(id)? {
                self.blob_entry(out, &l.digest, &mut done)?;
            }
            self.blob_entry(out, id, &mut done)?;
            let msize = self.blob_entry(out, mdigest, &mut done)?;
            let desc = |ann: Option<Value>| {
                let mut d = json!({"mediaType": mtype, "digest": mdigest, "size": msize});
                if let Some(a) = ann {
                    d["annotations"] = a;
                }
                d
            };
            if tags.is_empty() {
                manifests.push(desc(None));
            }
            for t in tags {
                let tag = t.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
                manifests.push(desc(Some(json!({
                    "io.containerd.image.name": t,
                    "org.opencontainers.image.ref.name": tag,
                }))));
            }
            // Its referrers (subjects first), listed in index.json as the image layout
            // spec allows, without names; `load` indexes them again.
            for r in self.referrer_closure(mdigest)? {
                if done.contains(&r.digest) {
                    continue;
                }
                let bytes = self.read_blob(&r.digest)?;
                for b in crate::referrers::parse_referrer(&bytes)?.blobs {
                    self.blob_entry(out, &b.digest, &mut done)?;
                }
                self.blob_entry(out, &r.digest, &mut done)?;
                manifests.push(json!({"mediaType": r.media_type, "digest": r.digest,
                    "size": r.size, "artifactType": r.artifact_type}));
            }
        }
        let index = canonical_json(
            &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}),
        );
        out.bytes("index.json", &index)
    }

    fn save_docker<W: Write>(
        &self,
        sel: &[(String, String, String, Vec<String>)],
        out: &mut Out<'_, W>,
    ) -> Result<()> {
        let mut done = HashSet::new();
        let mut entries = Vec::new();
        let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (id, _, _, tags) in sel {
            let cfg_name = format!("{}.json", digest_hex(id)?);
            if done.insert(cfg_name.clone()) {
                out.bytes(&cfg_name, &self.read_blob(id)?)?;
            }
            let mut layer_names = Vec::new();
            for crate::LayerInfo {
                digest, diff_id, ..
            } in self.image_layers(id)?
            {
                let name = format!("{}.tar", digest_hex(&diff_id)?);
                if done.insert(name.clone()) {
                    self.docker_layer(out, &name, &digest, &diff_id)?;
                }
                layer_names.push(name);
            }
            let short: Vec<String> = tags.iter().map(|t| familiar(t)).collect();
            for t in &short {
                if let (Some((repo, tag)), Some(top)) = (t.rsplit_once(':'), layer_names.last()) {
                    repos
                        .entry(repo.to_string())
                        .or_default()
                        .insert(tag.to_string(), top.trim_end_matches(".tar").to_string());
                }
            }
            // dockerd writes null for an image saved by id.
            let repo_tags = if short.is_empty() {
                Value::Null
            } else {
                json!(short)
            };
            entries.push(json!({"Config": cfg_name, "RepoTags": repo_tags, "Layers": layer_names}));
        }
        out.bytes(
            "manifest.json",
            &serde_json::to_vec(&entries).unwrap_or_default(),
        )?;
        out.bytes(
            "repositories",
            &serde_json::to_vec(&repos).unwrap_or_default(),
        )
    }

    /// Writes a layer uncompressed (docker-archive layers are plain tars named by diff id).
    fn docker_layer<W: Write>(
        &self,
        out: &mut Out<'_, W>,
        name: &str,
        digest: &str,
        diff_id: &str,
    ) -> Result<()> {
        let f = self.open_blob(digest)?;
        if digest == diff_id {
            let size = f
                .metadata()
                .map_err(|e| StoreError::io("cannot stat blob", digest, e))?
                .len();
            return out.reader(name, size, BufReader::new(f));
        }
        let mut tmp = tempfile::tempfile_in(self.tmp_dir())
            .map_err(|e| StoreError::io("cannot create a temp file in", self.tmp_dir(), e))?;
        let rd = |e| StoreError::Read {
            what: format!("layer {digest}"),
            source: e,
        };
        let mut hr = HashReader::new(maybe_gunzip(BufReader::new(f)).map_err(rd)?);
        let size = std::io::copy(&mut hr, &mut tmp).map_err(rd)?;
        if hr.digest() != diff_id {
            return Err(StoreError::DigestMismatch {
                expected: diff_id.to_string(),
                actual: hr.digest(),
            });
        }
        use std::io::Seek;
        tmp.rewind().map_err(rd)?;
        out.reader(name, size, BufReader::new(tmp))
    }
}

/// Whether `name` (what a save was asked for) is image `id` by its id: `sha256:HEX`, the
/// full hex, or a prefix of it.
fn names_by_id(name: &str, id: &str) -> bool {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    let given = name.strip_prefix("sha256:").unwrap_or(name);
    !given.is_empty()
        && given
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && hex.starts_with(given)
}
