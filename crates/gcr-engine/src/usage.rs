//! Disk usage in detail, for `gcr system df -v` and the API's `GET /system/df`: each
//! image's size with what it shares with other images (a layer more than one image has)
//! and how many containers use it, each container's writable layer, each volume's size and
//! users, and the build step cache.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::container::record::Record;
use crate::container::view::PsRow;
use crate::images::ImageRow;
use crate::volumes::admin::VolumeInfo;
use crate::{Engine, EngineError};

/// An `images` row with its sharing.
pub struct ImageUsage {
    pub row: ImageRow,
    /// Bytes of its layers that another image has too.
    pub shared: u64,
    /// Containers made from it.
    pub containers: usize,
}

/// A container with the size of its writable layer.
pub struct ContainerUsage {
    pub record: Record,
    pub row: PsRow,
    pub size_rw: u64,
}

/// A volume with its size.
pub struct VolumeUsage {
    pub info: VolumeInfo,
    pub size: u64,
}

/// Everything `system df -v` reports.
pub struct DiskUsage {
    /// One entry per `images` row (an image with two tags has two).
    pub images: Vec<ImageUsage>,
    pub containers: Vec<ContainerUsage>,
    pub volumes: Vec<VolumeUsage>,
    pub build_cache: Vec<gcr_build::cache::CacheEntry>,
    /// The distinct layers of all images and each image's own bytes (its config), so that
    /// it is the sum of the images' sizes less what they share: Docker's CLI subtracts
    /// the used images' unique sizes from it for the reclaimable figure.
    pub layers_size: u64,
}

impl Engine {
    /// The sizes of every image by id (config and layer blobs), for [`Engine::container_size`].
    pub fn image_sizes(&self) -> Result<HashMap<String, u64>, EngineError> {
        Ok(self
            .store()?
            .list_images()?
            .into_iter()
            .map(|i| (i.id, i.size))
            .collect())
    }

    /// Docker's `SizeRw` (the container's writable layer) and `SizeRootFs` (that plus its
    /// image) of `r`, for `ps --size` and `GET /containers/json?size=1`.
    pub fn container_size(&self, r: &Record, images: &HashMap<String, u64>) -> (u64, u64) {
        let rw = gcr_store::tree_size(&self.container_dir(&r.id).join("upper"));
        (rw, rw + images.get(&r.image_id).copied().unwrap_or(0))
    }

    /// Measures the store: a walk of every container's writable layer and every volume.
    pub fn disk_usage(&self) -> Result<DiskUsage, EngineError> {
        let images = self.images()?;
        let containers = self.ps(true)?;
        let mut users: HashMap<String, usize> = HashMap::new();
        for (r, _) in &containers {
            *users
                .entry(r.image_id.trim_start_matches("sha256:").to_string())
                .or_default() += 1;
        }
        let mut layers: HashMap<String, Vec<(String, u64)>> = HashMap::new();
        let mut holders: HashMap<String, (usize, u64)> = HashMap::new();
        let sizes: BTreeMap<String, u64> = images.iter().map(|r| (r.id.clone(), r.size)).collect();
        let mut own_bytes = 0;
        for (id, size) in sizes {
            let l: Vec<(String, u64)> = self
                .store()?
                .image_layers(&format!("sha256:{id}"))?
                .into_iter()
                .map(|l| (l.digest, l.size))
                .collect();
            for (d, size) in &l {
                let h = holders.entry(d.clone()).or_insert((0, *size));
                h.0 += 1;
            }
            own_bytes += size.saturating_sub(l.iter().map(|(_, s)| s).sum());
            layers.insert(id, l);
        }
        let images = images
            .into_iter()
            .map(|row| {
                let shared = layers
                    .get(&row.id)
                    .map(|l| {
                        l.iter()
                            .filter(|(d, _)| holders.get(d).is_some_and(|h| h.0 > 1))
                            .map(|(_, s)| s)
                            .sum()
                    })
                    .unwrap_or(0);
                let containers = users.get(&row.id).copied().unwrap_or(0);
                ImageUsage {
                    row,
                    shared,
                    containers,
                }
            })
            .collect();
        let containers = containers
            .into_iter()
            .map(|(record, row)| ContainerUsage {
                size_rw: gcr_store::tree_size(&self.container_dir(&record.id).join("upper")),
                record,
                row,
            })
            .collect();
        let volumes = self
            .volume_list()?
            .into_iter()
            .map(|info| VolumeUsage {
                size: gcr_store::tree_size(Path::new(&info.mountpoint)),
                info,
            })
            .collect();
        let build_cache =
            gcr_build::cache::entries(self.store()?).map_err(crate::build::build_err)?;
        Ok(DiskUsage {
            images,
            containers,
            volumes,
            build_cache,
            layers_size: holders.values().map(|h| h.1).sum::<u64>() + own_bytes,
        })
    }
}
