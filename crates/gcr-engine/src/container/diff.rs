//! `gcr diff CONTAINER`: what the container changed in its filesystem, as `docker diff`
//! shows it — `A` added, `C` changed, `D` deleted, one path per line, sorted. Read from
//! its writable layer (overlay whiteouts are deletions) against its image's layers
//! through gcr-runtime's layer view; nothing is mounted.

use std::path::{Path, PathBuf};

use gcr_runtime::layerfs::Dir;

use crate::{Engine, EngineError};

/// One change.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub path: String,
    /// 'A', 'C' or 'D'.
    pub kind: char,
    pub dir: bool,
}

fn is_whiteout(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    m.file_type().is_char_device() && m.rdev() == 0
}

fn walk(
    upper: &Path,
    rel: &str,
    image: Option<&Dir>,
    out: &mut Vec<Change>,
) -> std::io::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(upper.join(rel.trim_start_matches('/')))?
        .flatten()
        .collect();
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let name = e.file_name();
        let path = format!("{rel}/{}", name.to_string_lossy());
        let m = e.metadata()?;
        let below = image.and_then(|d| d.child(&name).ok().flatten());
        if is_whiteout(&m) {
            out.push(Change {
                path,
                kind: 'D',
                dir: false,
            });
            continue;
        }
        out.push(Change {
            path: path.clone(),
            kind: if below.is_some() { 'C' } else { 'A' },
            dir: m.is_dir(),
        });
        if m.is_dir() {
            let sub = match below {
                Some(gcr_runtime::layerfs::Node::Dir(d)) => Some(d),
                _ => None,
            };
            walk(upper, &path, sub.as_ref(), out)?;
        }
    }
    Ok(())
}

impl Engine {
    /// `gcr diff CONTAINER`.
    pub fn diff(&self, key: &str) -> Result<Vec<Change>, EngineError> {
        let r = self.container(key)?;
        let upper = self.container_dir(&r.id).join("upper");
        if !upper.is_dir() {
            return Ok(Vec::new());
        }
        let lowers: Vec<PathBuf> = r.config.resolved.lowers.iter().map(PathBuf::from).collect();
        let io =
            |e: std::io::Error| EngineError::Io(format!("reading the changes of {}", r.name), e);
        let image = Dir::root(&lowers).map_err(io)?;
        let mut out = Vec::new();
        walk(&upper, "", Some(&image), &mut out).map_err(io)?;
        // The mount points gcr made for its own files are not the container's changes.
        out.retain(|c| {
            !matches!(
                c.path.as_str(),
                "/etc/hosts" | "/etc/hostname" | "/etc/resolv.conf"
            ) || c.kind != 'A'
        });
        // A directory the image has, changed only to hold those, is not a change either.
        let paths: Vec<String> = out.iter().map(|c| c.path.clone()).collect();
        out.retain(|c| {
            !(c.dir && c.kind == 'C')
                || paths.iter().any(|p| p.starts_with(&format!("{}/", c.path)))
        });
        Ok(out)
    }
}
