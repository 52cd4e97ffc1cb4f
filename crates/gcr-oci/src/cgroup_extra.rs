//! `linux.resources` fields beyond the engine's own limits, as runc 1.1 maps them:
//! `blockIO`, `hugepageLimits` and the memory extras (reservation, swappiness,
//! disableOOMKiller). gcr-runtime writes them (`cgroups::extra`).

use gcr_runtime::cgroups::{BlockIo, Resources, Throttle, WeightDevice};
use oci_spec::runtime::{LinuxResources, LinuxThrottleDevice};

use crate::OciError;

fn throttles(list: Option<&Vec<LinuxThrottleDevice>>) -> Vec<Throttle> {
    list.map(|l| {
        l.iter()
            .map(|t| Throttle {
                major: t.major(),
                minor: t.minor(),
                rate: t.rate(),
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Copies the fields of `r` this module covers into `out`.
pub(crate) fn map(r: &LinuxResources, out: &mut Resources) -> Result<(), OciError> {
    if let Some(m) = r.memory() {
        out.memory_reservation = m.reservation().filter(|v| *v != 0);
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(OciError::Invalid(format!(
                    "linux.resources.memory.swappiness {s} is out of range; give 0-100"
                )));
            }
            out.memory_swappiness = Some(s);
        }
        out.disable_oom_killer = m.disable_oom_killer().unwrap_or(false);
    }
    if let Some(h) = r.hugepage_limits() {
        out.hugetlb = h
            .iter()
            .map(|l| (l.page_size().clone(), l.limit().max(0) as u64))
            .collect();
    }
    if let Some(b) = r.block_io() {
        out.block_io = Some(Box::new(BlockIo {
            weight: b.weight(),
            leaf_weight: b.leaf_weight(),
            weight_device: b
                .weight_device()
                .as_ref()
                .map(|l| {
                    l.iter()
                        .map(|d| WeightDevice {
                            major: d.major(),
                            minor: d.minor(),
                            weight: d.weight(),
                            leaf_weight: d.leaf_weight(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            read_bps: throttles(b.throttle_read_bps_device().as_ref()),
            write_bps: throttles(b.throttle_write_bps_device().as_ref()),
            read_iops: throttles(b.throttle_read_iops_device().as_ref()),
            write_iops: throttles(b.throttle_write_iops_device().as_ref()),
        }));
    }
    Ok(())
}
