//! `gcr export`: a container's root filesystem as a tar archive, as `docker export` writes
//! it — the image's layers with the container's changes on top (whiteouts hide what was
//! deleted), not its volumes or the files gcr mounts (hosts, resolv.conf). Read through
//! gcr-runtime's layer view, without mounting anything, so it works the same for a running
//! and a stopped container; names are sorted, so the same filesystem gives the same bytes.

use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use gcr_runtime::layerfs::{Dir, Node};

use crate::{Engine, EngineError};

fn header(kind: tar::EntryType, m: Option<&std::fs::Metadata>) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(0);
    match m {
        Some(m) => {
            h.set_mode(m.mode() & 0o7777);
            h.set_uid(u64::from(m.uid()));
            h.set_gid(u64::from(m.gid()));
            h.set_mtime(m.mtime().max(0) as u64);
        }
        None => h.set_mode(0o777),
    }
    h
}

/// Appends `node` to `tar` as `name` (a directory with everything below it, names sorted).
pub(super) fn append_node<W: Write>(
    tar: &mut tar::Builder<W>,
    node: Node,
    name: &str,
) -> io::Result<()> {
    match node {
        Node::Dir(d) => {
            let mut h = header(tar::EntryType::Directory, Some(&d.metadata()?));
            tar.append_data(&mut h, format!("{name}/"), io::empty())?;
            append_children(tar, &d, name)?;
        }
        Node::File(f) => {
            let m = f.metadata()?;
            let mut h = header(tar::EntryType::Regular, Some(&m));
            h.set_size(m.len());
            tar.append_data(&mut h, name, f)?;
        }
        Node::Symlink { target, uid, gid } => {
            let mut h = header(tar::EntryType::Symlink, None);
            h.set_uid(u64::from(uid));
            h.set_gid(u64::from(gid));
            tar.append_link(&mut h, name, target)?;
        }
        // Devices, fifos and sockets: the container's /dev is its own tmpfs.
        Node::Special => {}
    }
    Ok(())
}

/// Appends what is below `dir`, named `rel/…` (`rel` empty: at the archive's top).
pub(super) fn append_children<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: &Dir,
    rel: &str,
) -> io::Result<()> {
    let mut names = dir.names()?;
    names.sort();
    for name in names {
        if let Some(node) = dir.child(&name)? {
            let name = name.to_string_lossy();
            let path = if rel.is_empty() {
                name.into_owned()
            } else {
                format!("{rel}/{name}")
            };
            append_node(tar, node, &path)?;
        }
    }
    Ok(())
}

impl Engine {
    /// The layer directories of container `id`'s root filesystem, top first: its own
    /// writable layer (when it exists yet), then its image's.
    pub(crate) fn container_layers(&self, r: &super::record::Record) -> Vec<PathBuf> {
        let upper = self.container_dir(&r.id).join("upper");
        upper
            .is_dir()
            .then_some(upper)
            .into_iter()
            .chain(r.config.resolved.lowers.iter().map(PathBuf::from))
            .collect()
    }

    /// `gcr export CONTAINER`: writes the archive to `out`.
    pub fn export(&self, key: &str, out: impl Write) -> Result<(), EngineError> {
        let r = self.container(key)?;
        let layers = self.container_layers(&r);
        let io_err = |e: io::Error| EngineError::Io(format!("exporting container {}", r.name), e);
        let root = Dir::root(&layers).map_err(io_err)?;
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Complete);
        append_children(&mut tar, &root, "").map_err(io_err)?;
        tar.into_inner()
            .and_then(|mut w| w.flush())
            .map_err(io_err)?;
        Ok(())
    }
}
