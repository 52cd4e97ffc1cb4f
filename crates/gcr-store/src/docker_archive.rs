//! docker-archive (`docker save` / `skopeo copy docker-archive:`) loading: configs and
//! uncompressed layer tars named in `manifest.json`; the manifest is rebuilt byte-for-byte
//! as skopeo generates it (Docker schema2, layer digest = diff id), so digests match skopeo.

use crate::archive::{bad, diff_ids, s, Spool, DOCKER_CONFIG, DOCKER_LAYER_TAR, DOCKER_MANIFEST};
use crate::error::{Result, StoreError};
use crate::images::{NewImage, NewLayer};
use crate::util::{parse_reference, sha256_digest};
use crate::Store;
use serde_json::Value;
use std::io::{BufReader, Read};

impl Store {
    pub(crate) fn docker_images(&self, sp: &Spool) -> Result<Vec<NewImage>> {
        let list = sp.json("manifest.json")?;
        let list = list
            .as_array()
            .ok_or_else(|| StoreError::bad_json("archive manifest.json", "it is not a list"))?;
        let mut out = Vec::new();
        for entry in list {
            let cname = s(entry, "Config").ok_or_else(|| {
                StoreError::bad_json("archive manifest.json", "an entry has no Config")
            })?;
            let cfile = sp.get(cname)?;
            let config = self.read_spooled(cfile)?;
            let cdigest = sha256_digest(&config);
            let cfg: Value = serde_json::from_slice(&config)
                .map_err(|e| StoreError::bad_json(format!("image config '{cname}'"), e))?;
            let diff_ids = diff_ids(&cfg, cname)?;
            let lnames: Vec<&str> = entry
                .get("Layers")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if lnames.len() != diff_ids.len() {
                return Err(bad(format!(
                    "'{cname}' has {} diff_ids but manifest.json lists {} layers",
                    diff_ids.len(),
                    lnames.len()
                )));
            }
            let mut layers = Vec::new();
            for (ln, want) in lnames.iter().zip(&diff_ids) {
                let f = sp.get(ln)?;
                if self.has_blob(want) {
                    let size = self
                        .blob_path(want)?
                        .metadata()
                        .map(|m| m.len())
                        .unwrap_or(0);
                    layers.push(NewLayer {
                        digest: want.clone(),
                        diff_id: want.clone(),
                        media_type: DOCKER_LAYER_TAR.into(),
                        size,
                    });
                    continue;
                }
                let head = {
                    let mut h = [0u8; 2];
                    let mut file = std::fs::File::open(&f.path)
                        .map_err(|e| StoreError::io("cannot open", &f.path, e))?;
                    let n = file.read(&mut h).unwrap_or(0);
                    h[..n].to_vec()
                };
                let (digest, size) = if crate::util::is_gzip(&head) {
                    let file = std::fs::File::open(&f.path)
                        .map_err(|e| StoreError::io("cannot open", &f.path, e))?;
                    let gz = flate2::read::MultiGzDecoder::new(BufReader::new(file));
                    match self.put_blob_reader(gz, Some(want)) {
                        Ok((d, n)) => (d, n),
                        Err(StoreError::Read { source, .. }) => {
                            return Err(bad(format!("layer '{ln}' is corrupt: {source}")))
                        }
                        Err(e) => return Err(e),
                    }
                } else {
                    if &f.digest != want {
                        return Err(StoreError::DigestMismatch {
                            expected: want.clone(),
                            actual: f.digest.clone(),
                        });
                    }
                    (f.digest.clone(), f.size)
                };
                // A gzip'd layer is stored uncompressed too (its digest is the diff id).
                layers.push(NewLayer {
                    digest,
                    diff_id: want.clone(),
                    media_type: DOCKER_LAYER_TAR.into(),
                    size,
                });
            }
            // The manifest as skopeo generates it for a docker-archive, except that the
            // layers (stored uncompressed) are labelled as such, not `…tar.gzip`.
            let mut m = format!(
                r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","size":{},"digest":"{cdigest}"}},"layers":["#,
                config.len()
            );
            for (i, l) in layers.iter().enumerate() {
                if i > 0 {
                    m.push(',');
                }
                m.push_str(&format!(
                    r#"{{"mediaType":"{}","size":{},"digest":"{}"}}"#,
                    l.media_type, l.size, l.digest
                ));
            }
            m.push_str("]}");
            for (ln, l) in lnames.iter().zip(&layers) {
                let f = sp.get(ln)?;
                if f.digest == l.digest {
                    self.commit_file(&f.path, &l.digest)?;
                }
            }
            self.put_blob(&config, Some(&cdigest))?;
            let (mdigest, _) = self.put_blob(m.as_bytes(), None)?;
            let tags = entry
                .get("RepoTags")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .filter_map(|t| parse_reference(t).ok())
                        .map(|r| r.tagged())
                        .collect()
                })
                .unwrap_or_default();
            out.push(NewImage {
                manifest_digest: mdigest,
                manifest_media_type: DOCKER_MANIFEST.into(),
                config,
                layers,
                tags,
            });
        }
        Ok(out)
    }
}
