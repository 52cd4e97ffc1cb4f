//! The memory and block I/O tuning flags of `run`/`create` (`--memory-reservation`,
//! `--memory-swappiness`, `--oom-kill-disable`, `--blkio-weight`, `--blkio-weight-device`,
//! `--device-{read,write}-{bps,iops}`) as the engine's [`Tuning`], and Docker's warnings
//! for what this host's cgroups cannot apply (printed to stderr; the limit is discarded).

use gcr_engine::container::config::RunOptions;
use gcr_engine::container::tuning::{parse_device_rate, RateKind, Tuning};
use gcr_engine::Engine;

use crate::cli::RunArgs;
use crate::containers::{size, usage};
use crate::out::errln;
use crate::Failure;

/// The tuning flags of `a`, parsed and checked (errors exit 125 naming the flag).
pub(crate) fn of(a: &RunArgs) -> Result<Tuning, Failure> {
    let devices = |flag: &str, list: &[String], kind: RateKind| {
        list.iter()
            .map(|s| parse_device_rate(flag, s, kind).map_err(usage))
            .collect::<Result<Vec<_>, Failure>>()
    };
    let memory_swappiness = match a.memory_swappiness {
        None | Some(-1) => None,
        Some(s) if (0..=100).contains(&s) => Some(s as u64),
        Some(s) => {
            return Err(usage(format!(
                "invalid --memory-swappiness {s}: use 0 to 100, or -1 for the host's"
            )))
        }
    };
    Ok(Tuning {
        memory_reservation: size("--memory-reservation", &a.limits.memory_reservation)?
            .filter(|r| *r != 0),
        memory_swappiness,
        oom_kill_disable: a.oom_kill_disable,
        // 0 is Docker's "not set".
        blkio_weight: a.limits.blkio_weight.filter(|w| *w != 0),
        blkio_weight_device: devices(
            "--blkio-weight-device",
            &a.blkio_weight_device,
            RateKind::Weight,
        )?,
        device_read_bps: devices("--device-read-bps", &a.device_read_bps, RateKind::Bytes)?,
        device_write_bps: devices("--device-write-bps", &a.device_write_bps, RateKind::Bytes)?,
        device_read_iops: devices("--device-read-iops", &a.device_read_iops, RateKind::Ops)?,
        device_write_iops: devices("--device-write-iops", &a.device_write_iops, RateKind::Ops)?,
    })
}

/// Discards what the host cannot apply and prints Docker's warning for each.
pub(crate) fn fit(engine: &Engine, opts: &mut RunOptions) -> Result<(), Failure> {
    let warnings = engine
        .fit_to_host(opts)
        .map_err(crate::containers::run_failure)?;
    for w in warnings {
        errln!("WARNING: {w}");
    }
    Ok(())
}
