//! Image history, load and save for both front-ends (the `gcr` CLI and the Docker API):
//! thin compositions of gcr-store that resolve names and shape the results the same way.

use std::io::{Read, Write};

use gcr_store::{ArchiveFormat, HistoryEntry, LoadReport, Progress};

use crate::{Engine, EngineError};

/// An image's history (`gcr history`, `GET /images/{name}/history`).
#[derive(Debug, Clone)]
pub struct History {
    /// The image id (`sha256:…`): the newest entry's.
    pub id: String,
    /// The image's full normalized tags (Docker shows them on the newest entry).
    pub tags: Vec<String>,
    /// Newest first, with layer sizes.
    pub entries: Vec<HistoryEntry>,
}

/// An archive format by the names `gcr save --format` and the docs use.
pub fn archive_format(name: &str) -> Result<ArchiveFormat, EngineError> {
    match name {
        "oci-archive" | "oci" => Ok(ArchiveFormat::OciArchive),
        "docker-archive" | "docker" => Ok(ArchiveFormat::DockerArchive),
        other => Err(EngineError::Usage(format!(
            "unknown archive format '{other}'; use oci-archive or docker-archive"
        ))),
    }
}

/// The lines `docker load -q` prints for what a load recorded: `Loaded image: NAME:TAG`
/// per tag, `Loaded image ID: sha256:…` for an image without one.
pub fn loaded_lines(report: &LoadReport) -> Vec<String> {
    let mut out = Vec::new();
    for (id, tags) in &report.images {
        if tags.is_empty() {
            out.push(format!("Loaded image ID: {id}"));
        }
        for t in tags {
            let (r, tag) = crate::images::split_familiar(t);
            out.push(format!("Loaded image: {r}:{tag}"));
        }
    }
    out
}

impl Engine {
    /// The history of the image named `image` (name, id or digest).
    pub fn history(&self, image: &str) -> Result<History, EngineError> {
        let store = self.store()?;
        let id = store.resolve_image(image)?.id;
        let entries = store.history(image)?;
        let tags = store.image_tags(&id)?;
        let id = match id.strip_prefix("sha256:") {
            Some(_) => id,
            None => format!("sha256:{id}"),
        };
        Ok(History { id, tags, entries })
    }

    /// Loads an oci-archive or docker-archive (plain or gzip'd) from `reader`; the store
    /// reports each loaded image through `progress` (`Loaded image: …`). A failed load
    /// leaves nothing behind (the spool is a temp dir).
    pub fn load_images(
        &self,
        reader: impl Read,
        progress: &dyn Progress,
    ) -> Result<LoadReport, EngineError> {
        Ok(self.store()?.load(reader, progress)?)
    }

    /// Writes the named images to `w` as an archive of `format`.
    pub fn save_images(
        &self,
        names: &[&str],
        format: ArchiveFormat,
        w: impl Write,
        progress: &dyn Progress,
    ) -> Result<(), EngineError> {
        Ok(self.store()?.save(names, format, w, progress)?)
    }
}
