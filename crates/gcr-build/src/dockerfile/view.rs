//! Reading a stage's root filesystem without mounting it (gcr-runtime's `layerfs`): what a
//! destination path resolves to inside the image (symlinks followed inside it), the
//! metadata of existing directories (a COPY keeps them as they are), and the files of a
//! path for `COPY --from`, their bytes spooled for the layer writer.

use std::ffi::OsStr;
use std::io::{Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use gcr_runtime::layerfs::{Dir, Node};
use gcr_store::{EntryData, LayerEntry};

use crate::error::{BuildError, Result};

const MAX_LINKS: usize = 40;

/// A stage's filesystem.
pub struct View {
    root: Option<Dir>,
}

/// What a path is.
pub enum Stat {
    Missing,
    Dir { mode: u32, uid: u32, gid: u32 },
    Other,
}

fn io(e: std::io::Error) -> BuildError {
    BuildError::Usage(format!("cannot read the stage's files: {e}"))
}

impl View {
    pub fn new(lowers: &[PathBuf]) -> Result<View> {
        if lowers.is_empty() {
            return Ok(View { root: None });
        }
        Ok(View {
            root: Some(Dir::root(lowers).map_err(io)?),
        })
    }

    /// Resolves an absolute image path, following symlinks of existing components inside
    /// the image; returns the resolved path (without leading `/`).
    pub fn resolve(&self, path: &str) -> Result<String> {
        let Some(root) = &self.root else {
            return Ok(clean(path));
        };
        let mut todo: Vec<String> = clean(path)
            .split('/')
            .filter(|c| !c.is_empty())
            .rev()
            .map(str::to_string)
            .collect();
        let mut done: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(c) = todo.pop() {
            if c == ".." {
                done.pop();
                continue;
            }
            let parent = done.join("/");
            let node = if parent.is_empty() {
                root.child(OsStr::new(&c)).map_err(io)?
            } else {
                match root.lookup(Path::new(&parent), true) {
                    Ok(Node::Dir(d)) => d.child(OsStr::new(&c)).map_err(io)?,
                    _ => None,
                }
            };
            match node {
                Some(Node::Symlink { target, .. }) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(BuildError::Usage(format!(
                            "too many symlinks resolving {path} in the image"
                        )));
                    }
                    let t = target.to_string_lossy().into_owned();
                    if t.starts_with('/') {
                        done.clear();
                    }
                    for part in t.split('/').filter(|p| !p.is_empty() && *p != ".").rev() {
                        todo.push(part.to_string());
                    }
                }
                _ => done.push(c),
            }
        }
        Ok(done.join("/"))
    }

    /// What the resolved path `rel` (no leading `/`) is.
    pub fn stat(&self, rel: &str) -> Stat {
        let Some(root) = &self.root else {
            return if rel.is_empty() {
                Stat::Dir {
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                }
            } else {
                Stat::Missing
            };
        };
        match root.lookup(Path::new(&format!("/{rel}")), false) {
            Ok(Node::Dir(d)) => match d.metadata() {
                Ok(m) => Stat::Dir {
                    mode: m.mode() & 0o7777,
                    uid: m.uid(),
                    gid: m.gid(),
                },
                Err(_) => Stat::Other,
            },
            Ok(_) => Stat::Other,
            Err(_) => Stat::Missing,
        }
    }

    /// The entries of the image path `src` (symlinks followed to reach it), for a copy:
    /// `(rel, entry)` with `rel` relative to `src` (`""` for `src` itself), file bytes
    /// appended to `spool`. `None` when the path does not exist.
    pub fn collect(
        &self,
        src: &str,
        spool: &mut std::fs::File,
        mtime: u64,
    ) -> Result<Option<Vec<(String, LayerEntry)>>> {
        let Some(root) = &self.root else {
            return Ok(None);
        };
        let node = match root.lookup(Path::new(src), true) {
            Ok(n) => n,
            Err(_) => return Ok(None),
        };
        let mut out = Vec::new();
        node_entries(node, String::new(), spool, mtime, &mut out)?;
        Ok(Some(out))
    }
}

fn node_entries(
    node: Node,
    rel: String,
    spool: &mut std::fs::File,
    mtime: u64,
    out: &mut Vec<(String, LayerEntry)>,
) -> Result<()> {
    match node {
        Node::Dir(d) => {
            let m = d.metadata().map_err(io)?;
            out.push((
                rel.clone(),
                LayerEntry::dir(m.mode() & 0o7777, m.uid() as u64, m.gid() as u64, mtime),
            ));
            for name in d.names().map_err(io)? {
                let Some(child) = d.child(&name).map_err(io)? else {
                    continue;
                };
                let n = name.to_string_lossy().into_owned();
                let r = if rel.is_empty() {
                    n
                } else {
                    format!("{rel}/{n}")
                };
                node_entries(child, r, spool, mtime, out)?;
            }
        }
        Node::File(mut f) => {
            let m = f.metadata().map_err(io)?;
            let off = spool.stream_position().map_err(io)?;
            let n = std::io::copy(&mut f, spool).map_err(io)?;
            spool.flush().map_err(io)?;
            out.push((
                rel,
                LayerEntry {
                    ty: tar::EntryType::Regular,
                    mode: m.mode() & 0o7777,
                    uid: m.uid() as u64,
                    gid: m.gid() as u64,
                    mtime,
                    link: None,
                    dev: (0, 0),
                    data: EntryData::Spool(off, n),
                },
            ));
        }
        Node::Symlink { target, uid, gid } => out.push((
            rel,
            LayerEntry {
                ty: tar::EntryType::Symlink,
                mode: 0o777,
                uid: uid as u64,
                gid: gid as u64,
                mtime,
                link: Some(target.to_string_lossy().into_owned()),
                dev: (0, 0),
                data: EntryData::None,
            },
        )),
        Node::Special => {}
    }
    Ok(())
}

/// An absolute path cleaned, without the leading `/`; `..` stops at the root.
pub fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}
