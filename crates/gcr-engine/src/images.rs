//! Image commands: listing, Docker-shaped `inspect` documents, history, tag, rmi, import,
//! load and save, and an image's OCI 1.1 referrers (signatures, attestations), composed
//! from gcr-store.

use serde_json::{json, Value};

use crate::logs::rfc3339_nanos;

use crate::{Engine, EngineError};
/// A referrer as listed by `inspect --referrers` (a descriptor of an OCI image index).
pub use gcr_store::Descriptor as ReferrerDescriptor;

/// One `gcr images` row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageRow {
    #[serde(rename = "Repository")]
    pub repository: String,
    #[serde(rename = "Tag")]
    pub tag: String,
    #[serde(rename = "ID")]
    pub id: String,
    /// Unix seconds of the image's `created` (rendered as `CreatedAt` by [`ImageRow::json`]).
    #[serde(skip)]
    pub created: Option<i64>,
    #[serde(rename = "CreatedSince")]
    pub created_since: String,
    #[serde(rename = "Size")]
    pub size: u64,
}

impl ImageRow {
    /// The row as Docker's `images --format json` object.
    pub fn json(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["CreatedAt"] = Value::String(time_text(self.created));
        v
    }
}

/// Docker's short form of a full reference: `docker.io/library/busybox:latest` →
/// (`busybox`, `latest`).
pub fn split_familiar(full: &str) -> (String, String) {
    let (name, tag) = match full.rfind(':') {
        Some(i) if !full[i..].contains('/') => (&full[..i], &full[i + 1..]),
        _ => (full, "latest"),
    };
    let name = name
        .strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("docker.io/"))
        .unwrap_or(name);
    (name.to_string(), tag.to_string())
}

/// Docker's `reference` image filter (its `FamiliarMatch`): `pattern` (Go's path.Match,
/// so `*` stays within a path segment) against `REPOSITORY:TAG`, then against the
/// repository alone — `busybox` matches every busybox tag, `test/*:1` one tag of each.
pub fn reference_matches(pattern: &str, repository: &str, tag: &str) -> bool {
    let glob = |s: &str| {
        let (p, s): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), s.split('/').collect());
        p.len() == s.len()
            && p.iter()
                .zip(&s)
                .all(|(p, s)| gcr_core::dockerfile::words::glob_match(p.as_bytes(), s.as_bytes()))
    };
    glob(&format!("{repository}:{tag}")) || glob(repository)
}

fn time_text(secs: Option<i64>) -> String {
    match secs {
        Some(s) => {
            let t = rfc3339_nanos(s * 1_000_000_000);
            format!("{}Z", &t[..19])
        }
        None => "0001-01-01T00:00:00Z".into(),
    }
}

impl Engine {
    /// `gcr images`: one row per tag (untagged images get `<none>`).
    pub fn images(&self) -> Result<Vec<ImageRow>, EngineError> {
        let now = crate::container::record::now_secs();
        let mut rows = Vec::new();
        for img in self.store()?.list_images()? {
            let hex = img
                .id
                .strip_prefix("sha256:")
                .unwrap_or(&img.id)
                .to_string();
            let since = img
                .created
                .map(|c| gcr_core::lifecycle::humanize_ago(now - c))
                .unwrap_or_else(|| "N/A".into());
            let mut push = |repository: String, tag: String| {
                rows.push(ImageRow {
                    repository,
                    tag,
                    id: hex.clone(),
                    created: img.created,
                    created_since: since.clone(),
                    size: img.size,
                })
            };
            if img.repo_tags.is_empty() {
                push("<none>".into(), "<none>".into());
            }
            for t in &img.repo_tags {
                let (r, t) = split_familiar(t);
                push(r, t);
            }
        }
        Ok(rows)
    }

    /// `gcr rmi IMAGE`: removes the image (or the tag) and drops this store's image cache
    /// entries in the run dir, so the next `run` of the name resolves it afresh.
    pub fn remove_image(&self, image: &str, force: bool) -> Result<Vec<String>, EngineError> {
        let lines = self.store()?.remove_image(image, force);
        self.forget_image_cache();
        Ok(lines?)
    }

    /// `gcr image prune [-a]`: dangling images (no tag, no container), or with `all`
    /// every image no container uses; then the blobs and snapshots nothing references.
    pub fn image_prune(&self, all: bool) -> Result<gcr_store::PruneReport, EngineError> {
        self.image_prune_with(all, &crate::prune::PruneFilter::default())
    }

    /// `gcr image prune [-a] --filter until=…|label=…|label!=…`: those of them `f` admits
    /// (by the image's `created` and its config's labels).
    pub fn image_prune_with(
        &self,
        all: bool,
        f: &crate::prune::PruneFilter,
    ) -> Result<gcr_store::PruneReport, EngineError> {
        let created: std::collections::HashMap<String, Option<i64>> = if f.is_empty() {
            Default::default()
        } else {
            self.store()?
                .list_images()?
                .into_iter()
                .map(|i| (i.id, i.created))
                .collect()
        };
        let admits = |id: &str| -> bool {
            if f.is_empty() {
                return true;
            }
            let labels = if f.reads_labels() {
                self.image_labels(id)
            } else {
                Vec::new()
            };
            f.admits(
                created.get(id).copied().flatten(),
                labels.iter().map(|(k, v)| (k, v)),
            )
        };
        let mut removed = Vec::new();
        if all {
            let used: std::collections::HashSet<String> =
                crate::container::record::list(self.store()?.conn())?
                    .into_iter()
                    .map(|r| r.image_id)
                    .collect();
            for img in self.store()?.list_images()? {
                if used.contains(&img.id) || !admits(&img.id) {
                    continue;
                }
                // Forced: an image with several tags goes whole (no container uses it).
                match self.remove_image(&img.id, true) {
                    Ok(lines) => removed.extend(lines),
                    Err(EngineError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let mut p = self.store()?.prune_where(&admits)?;
        self.forget_image_cache();
        removed.append(&mut p.images);
        p.images = removed;
        Ok(p)
    }

    /// The labels of image `id`'s config (none when it cannot be read).
    pub fn image_labels(&self, id: &str) -> Vec<(String, String)> {
        let Ok(store) = self.store() else {
            return Vec::new();
        };
        let config: Value = store
            .image_config(id)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        crate::resolve::config_labels(&config["config"])
    }

    /// `gcr inspect IMAGE`: a Docker-shaped document.
    pub fn inspect_image(&self, key: &str) -> Result<Value, EngineError> {
        let img = self.store()?.resolve_image(key)?;
        let config: Value = serde_json::from_slice(&self.store()?.image_config(&img.id)?)?;
        let tags: Vec<String> = self
            .store()?
            .image_tags(&img.id)?
            .iter()
            .map(|t| {
                let (r, tag) = split_familiar(t);
                format!("{r}:{tag}")
            })
            .collect();
        let layers = self.store()?.image_layers(&img.id)?;
        let size: u64 = layers.iter().map(|l| l.size).sum();
        let repo_digests: Vec<String> = tags
            .iter()
            .map(|t| {
                let name = t.rsplit_once(':').map(|x| x.0).unwrap_or(t);
                format!("{name}@{}", img.manifest_digest)
            })
            .collect();
        // Docker's required fields are strings even when the config lacks them ("" as
        // dockerd shows them; Go's zero time for a config without `created`).
        let text = |k: &str| config.get(k).and_then(Value::as_str).unwrap_or("");
        let created = config
            .get("created")
            .and_then(Value::as_str)
            .unwrap_or("0001-01-01T00:00:00Z");
        let rootfs = config.get("rootfs");
        let mut doc = json!({
            "Id": img.id,
            "RepoTags": tags,
            "RepoDigests": repo_digests,
            // gcr records no parent image (dockerd's is "" for pulled images too).
            "Parent": "",
            "Comment": text("comment"),
            "Created": created,
            "Container": text("container"),
            "DockerVersion": text("docker_version"),
            "Author": text("author"),
            "Architecture": text("architecture"),
            "Os": text("os"),
            "Size": size,
            "VirtualSize": size,
            "Config": config.get("config").cloned().unwrap_or(json!({})),
            // Containers run on overlayfs over the image's layer snapshots.
            "GraphDriver": { "Name": "overlay", "Data": {} },
            "RootFS": {
                "Type": rootfs.and_then(|r| r.get("type")).and_then(Value::as_str).unwrap_or("layers"),
                "Layers": rootfs.and_then(|r| r.get("diff_ids")).cloned().unwrap_or(json!([])),
            },
            "Manifest": { "Digest": img.manifest_digest, "MediaType": img.manifest_media_type },
            "Layers": layers.iter().map(|l| json!({
                "Digest": l.digest, "DiffID": l.diff_id, "MediaType": l.media_type,
                "Size": l.size, "ChainID": l.chain_id,
            })).collect::<Vec<_>>(),
        });
        for (from, to) in [
            ("variant", "Variant"),
            ("os.version", "OsVersion"),
            ("container_config", "ContainerConfig"),
        ] {
            if let Some(v) = config.get(from).filter(|v| !v.is_null()) {
                doc[to] = v.clone();
            }
        }
        Ok(doc)
    }

    /// `gcr inspect --referrers IMAGE`: the image's manifest descriptor and its referrers
    /// (optionally of one artifact type), oldest first.
    pub fn referrers(
        &self,
        image: &str,
        artifact_type: Option<&str>,
    ) -> Result<(ReferrerDescriptor, Vec<ReferrerDescriptor>), EngineError> {
        let subject = self.store()?.subject_descriptor(image)?;
        let list = self.store()?.referrers(&subject.digest, artifact_type)?;
        Ok((subject, list))
    }

    /// Attaches `layer` to an image (or a referrer, by digest) as an OCI 1.1 artifact of
    /// `artifact_type` whose one layer has `layer_media_type`; returns the artifact
    /// manifest's digest.
    pub fn attach(
        &self,
        subject: &str,
        artifact_type: &str,
        annotations: std::collections::BTreeMap<String, String>,
        layer_media_type: &str,
        layer: &[u8],
    ) -> Result<String, EngineError> {
        Ok(self.store()?.put_referrer(
            subject,
            artifact_type,
            annotations,
            layer_media_type,
            layer,
        )?)
    }
}
