//! `gcr audit export --tiles DIR`: the ledger in the C2SP tlog-tiles layout, which static
//! log clients read: `checkpoint` (the latest signed checkpoint), hash tiles of height 8
//! at `tile/<L>/<N>[.p/<W>]` and entry bundles at `tile/entries/<N>[.p/<W>]` (each entry
//! as a big-endian 16-bit length and its canonical JSON; a compacted entry's body is
//! gone, so its bundle holds an empty entry and only its leaf, in the level-0 tile,
//! still proves it).

use super::{latest_checked, StoreHashes};
use crate::{Engine, EngineError};
use gcr_trust::ledger::Tile;
use std::path::Path;

/// Tile height of the C2SP layout.
const HEIGHT: u8 = 8;

fn write(dir: &Path, rel: &str, data: &[u8]) -> Result<(), EngineError> {
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| EngineError::Io(format!("cannot create {}", parent.display()), e))?;
    }
    std::fs::write(&p, data)
        .map_err(|e| EngineError::Io(format!("cannot write {}", p.display()), e))
}

/// The C2SP path of a hash tile (the crate writes Go's `tile/<H>/<L>/…`).
fn c2sp_path(t: &Tile) -> String {
    let go = t.path();
    let prefix = format!("tile/{}/", t.height());
    format!("tile/{}", go.strip_prefix(&prefix).unwrap_or(&go))
}

/// A summary of an export.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TilesReport {
    pub size: u64,
    pub hash_tiles: usize,
    pub entry_bundles: usize,
}

impl Engine {
    /// `gcr audit export --tiles DIR`.
    pub fn audit_export_tiles(&self, dir: &Path) -> Result<TilesReport, EngineError> {
        let store = self.store()?;
        let (note, cp) = latest_checked(store, self.root())?;
        let size = cp.size;
        let reader = StoreHashes::stored(store);
        let tiles = Tile::new_tiles(HEIGHT, 0, size);
        for t in &tiles {
            let data = t
                .read_data(&reader)
                .map_err(|e| EngineError::Internal(format!("ledger tile {}: {e}", t.path())))?;
            write(dir, &c2sp_path(t), &data)?;
        }
        // Entry bundles: one per level-0 tile.
        let mut bundles = 0;
        let per = 1u64 << HEIGHT;
        let mut start = 0;
        while start < size {
            let end = (start + per).min(size);
            let mut data = Vec::new();
            for r in store.ledger_rows(start, end)? {
                let e = r.entry.unwrap_or_default();
                let len = u16::try_from(e.len()).map_err(|_| {
                    EngineError::Internal(format!("ledger entry {} is over 64 KiB", r.index))
                })?;
                data.extend_from_slice(&len.to_be_bytes());
                data.extend_from_slice(&e);
            }
            let t = Tile::new(HEIGHT, 0, start / per, (end - start) as u32, false);
            let rel = c2sp_path(&t).replacen("tile/0/", "tile/entries/", 1);
            write(dir, &rel, &data)?;
            bundles += 1;
            start = end;
        }
        write(dir, "checkpoint", &note)?;
        Ok(TilesReport {
            size,
            hash_tiles: tiles.len(),
            entry_bundles: bundles,
        })
    }
}
