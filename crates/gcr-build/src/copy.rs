//! A copy step's layer entries: the walked source placed at `dest` with the step's owner,
//! its files' modes, and mtime = created. A directory source copies its contents into
//! `dest`; a file source lands at `dest`, or inside it when `dest` ends with `/`.

use std::collections::BTreeMap;

use gcr_core::spec::CopyStep;
use gcr_store::{EntryData, LayerEntry};

use crate::context::{Found, Kind};
use crate::layout::{add_parents, join_dest};

/// Entries of one copy step from its walked source (first element = the source itself).
pub fn entries(step: &CopyStep, found: &[Found], mtime: u64) -> BTreeMap<String, LayerEntry> {
    let mut out = BTreeMap::new();
    let (uid, gid) = (step.owner.uid as u64, step.owner.gid as u64);
    let src_is_dir = matches!(found.first().map(|f| &f.kind), Some(Kind::Dir));
    let top = if src_is_dir || !step.dest.ends_with('/') {
        join_dest(&step.dest, "")
    } else {
        let name = found
            .first()
            .and_then(|f| f.abs.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        join_dest(&step.dest, &name)
    };
    if !top.is_empty() {
        add_parents(&mut out, &top, mtime);
    }
    for f in found {
        let path = if f.rel.is_empty() {
            top.clone()
        } else if top.is_empty() {
            f.rel.clone()
        } else {
            format!("{top}/{}", f.rel)
        };
        if path.is_empty() {
            continue; // the image root itself is never an entry
        }
        let mut e = LayerEntry {
            ty: tar::EntryType::Regular,
            mode: f.mode,
            uid,
            gid,
            mtime,
            link: None,
            dev: (0, 0),
            data: EntryData::None,
        };
        match &f.kind {
            Kind::Dir => e.ty = tar::EntryType::Directory,
            Kind::Symlink(t) => {
                e.ty = tar::EntryType::Symlink;
                e.mode = 0o777;
                e.link = Some(t.clone());
            }
            Kind::File { size, .. } => e.data = EntryData::File(f.abs.clone(), *size),
        }
        out.insert(path, e);
    }
    out
}

/// Number of regular files among the found entries.
pub fn file_count(found: &[Found]) -> usize {
    found
        .iter()
        .filter(|f| matches!(f.kind, Kind::File { .. }))
        .count()
}
