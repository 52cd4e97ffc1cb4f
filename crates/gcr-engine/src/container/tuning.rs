//! Docker's memory and block-I/O tuning options (`--memory-reservation`,
//! `--memory-swappiness`, `--oom-kill-disable`, `--blkio-weight`, `--blkio-weight-device`,
//! `--device-read-bps`, `--device-write-bps`, `--device-read-iops`, `--device-write-iops`):
//! their parsing and checks (Docker's ranges and messages), Docker's treatment of what the
//! host's cgroups cannot apply (discarded with its warning, see [`Tuning::fit_to_host`]),
//! and the runtime's cgroup limits they become at each start, where device paths are
//! resolved to their numbers.

use serde::{Deserialize, Serialize};

use gcr_runtime::cgroups::{BlockIo, Resources, Support, Throttle, WeightDevice};

/// One device's rate or weight, by its host path (`/dev/sda`), as Docker's `Path`/`Rate`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceRate {
    pub path: String,
    pub rate: u64,
}

/// What a device flag's number means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateKind {
    /// Bytes per second, with Docker's units (`1mb`, `512k`).
    Bytes,
    /// Operations per second.
    Ops,
    /// A relative weight, 10 to 1000.
    Weight,
}

/// The tuning options of a container (all unset by default).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Tuning {
    /// `--memory-reservation`, bytes: the soft limit reclaim aims for under pressure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<u64>,
    /// `--memory-swappiness` 0-100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swappiness: Option<u64>,
    /// `--oom-kill-disable`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub oom_kill_disable: bool,
    /// `--blkio-weight` 10-1000.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blkio_weight: Option<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blkio_weight_device: Vec<DeviceRate>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_read_bps: Vec<DeviceRate>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_write_bps: Vec<DeviceRate>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_read_iops: Vec<DeviceRate>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_write_iops: Vec<DeviceRate>,
}

/// Docker's minimum for `--memory-reservation` (as for `--memory`).
const MIN_MEMORY: u64 = 6 * 1024 * 1024;

/// Parses `PATH:VALUE` of a device flag (`/dev/sda:1mb`, `/dev/sda:300`), checked as
/// Docker's CLI checks it (the device itself is checked at create, see [`Tuning::check`]).
pub fn parse_device_rate(flag: &str, s: &str, kind: RateKind) -> Result<DeviceRate, String> {
    let Some((path, value)) = s.rsplit_once(':') else {
        return Err(format!(
            "invalid {flag} '{s}': use DEVICE_PATH:{}",
            match kind {
                RateKind::Bytes => "RATE (e.g. /dev/sda:1mb)",
                RateKind::Ops => "IOPS (e.g. /dev/sda:1000)",
                RateKind::Weight => "WEIGHT (e.g. /dev/sda:200)",
            }
        ));
    };
    if !path.starts_with("/dev/") {
        return Err(format!(
            "invalid {flag} '{s}': the device path must start with /dev/"
        ));
    }
    let rate = match kind {
        RateKind::Bytes => crate::units::parse_size(value).ok(),
        RateKind::Ops => value.parse::<u64>().ok(),
        RateKind::Weight => value
            .parse::<u64>()
            .ok()
            .filter(|w| (10..=1000).contains(w)),
    };
    let rate = rate.ok_or_else(|| match kind {
        RateKind::Weight => {
            format!("invalid {flag} '{s}': the weight must be a number from 10 to 1000")
        }
        RateKind::Bytes => format!(
            "invalid {flag} '{s}': the rate must be a number with an optional unit (kb, mb or gb; 0: no limit)"
        ),
        RateKind::Ops => format!(
            "invalid {flag} '{s}': the rate must be a non-negative integer (0: no limit)"
        ),
    })?;
    Ok(DeviceRate {
        path: path.to_string(),
        rate,
    })
}

/// One option the host's cgroups may lack: whether it is set, whether the host supports
/// it, how it is discarded, and Docker's warning.
struct HostCheck {
    flag: &'static str,
    set: fn(&Tuning) -> bool,
    supported: fn(&Support) -> bool,
    discard: fn(&mut Tuning),
    warning: &'static str,
}

/// Every option of [`Tuning`] a host may not support, in flag order.
const HOST_CHECKS: [HostCheck; 9] = [
    HostCheck {
        flag: "--memory-reservation",
        set: |t| t.memory_reservation.is_some(),
        supported: |s| s.memory_reservation,
        discard: |t| t.memory_reservation = None,
        warning: "Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.",
    },
    HostCheck {
        flag: "--memory-swappiness",
        set: |t| t.memory_swappiness.is_some(),
        supported: |s| s.memory_swappiness,
        discard: |t| t.memory_swappiness = None,
        warning: "Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.",
    },
    HostCheck {
        flag: "--oom-kill-disable",
        set: |t| t.oom_kill_disable,
        supported: |s| s.oom_kill_disable,
        discard: |t| t.oom_kill_disable = false,
        warning: "Your kernel does not support OomKillDisable. OomKillDisable discarded.",
    },
    HostCheck {
        flag: "--blkio-weight",
        set: |t| t.blkio_weight.is_some(),
        supported: |s| s.blkio_weight,
        discard: |t| t.blkio_weight = None,
        warning: "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
    },
    HostCheck {
        flag: "--blkio-weight-device",
        set: |t| !t.blkio_weight_device.is_empty(),
        supported: |s| s.blkio_weight_device,
        discard: |t| t.blkio_weight_device.clear(),
        warning: "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.",
    },
    HostCheck {
        flag: "--device-read-bps",
        set: |t| !t.device_read_bps.is_empty(),
        supported: |s| s.blkio_throttle,
        discard: |t| t.device_read_bps.clear(),
        warning: "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded.",
    },
    HostCheck {
        flag: "--device-write-bps",
        set: |t| !t.device_write_bps.is_empty(),
        supported: |s| s.blkio_throttle,
        discard: |t| t.device_write_bps.clear(),
        warning: "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write limit discarded.",
    },
    HostCheck {
        flag: "--device-read-iops",
        set: |t| !t.device_read_iops.is_empty(),
        supported: |s| s.blkio_throttle,
        discard: |t| t.device_read_iops.clear(),
        warning: "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read limit discarded.",
    },
    HostCheck {
        flag: "--device-write-iops",
        set: |t| !t.device_write_iops.is_empty(),
        supported: |s| s.blkio_throttle,
        discard: |t| t.device_write_iops.clear(),
        warning: "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit discarded.",
    },
];

impl Tuning {
    /// Nothing set.
    pub fn is_empty(&self) -> bool {
        *self == Tuning::default()
    }

    fn lists(&self) -> [(&'static str, &Vec<DeviceRate>); 5] {
        [
            ("--blkio-weight-device", &self.blkio_weight_device),
            ("--device-read-bps", &self.device_read_bps),
            ("--device-write-bps", &self.device_write_bps),
            ("--device-read-iops", &self.device_read_iops),
            ("--device-write-iops", &self.device_write_iops),
        ]
    }

    /// Docker's ranges, the reservation against `--memory`, and every device a whole
    /// block device of this host.
    pub fn check(&self, memory: Option<u64>) -> Result<(), String> {
        self.check_values(memory)?;
        for (flag, list) in self.lists() {
            for d in list {
                device_number(flag, &d.path)?;
            }
        }
        Ok(())
    }

    /// Docker's ranges and the reservation against `--memory` (no device is looked at:
    /// an update of other limits does not depend on them).
    pub fn check_values(&self, memory: Option<u64>) -> Result<(), String> {
        if let Some(r) = self.memory_reservation {
            if r < MIN_MEMORY {
                return Err(format!(
                    "invalid --memory-reservation {r}: the minimum allowed memory reservation is 6MB"
                ));
            }
            if memory.is_some_and(|m| m < r) {
                return Err(
                    "invalid --memory-reservation: it must not be larger than --memory; lower it or raise --memory"
                        .into(),
                );
            }
        }
        if let Some(s) = self.memory_swappiness.filter(|s| *s > 100) {
            return Err(format!(
                "invalid --memory-swappiness {s}: the valid memory swappiness range is 0-100"
            ));
        }
        if let Some(w) = self.blkio_weight.filter(|w| !(10..=1000).contains(w)) {
            return Err(format!(
                "invalid --blkio-weight {w}: the range of blkio weight is from 10 to 1000"
            ));
        }
        Ok(())
    }

    /// The options set here that the host's cgroups cannot apply: each flag with Docker's
    /// warning for it, in flag order.
    pub fn unsupported(&self, s: Support) -> Vec<(&'static str, &'static str)> {
        HOST_CHECKS
            .iter()
            .filter(|c| (c.set)(self) && !(c.supported)(&s))
            .map(|c| (c.flag, c.warning))
            .collect()
    }

    /// Discards what the host's cgroups cannot apply, as Docker does, and returns Docker's
    /// warnings (also the one for an OOM killer disabled without a memory limit).
    pub fn fit_to_host(&mut self, s: Support, memory: Option<u64>) -> Vec<String> {
        let mut warnings = Vec::new();
        for c in HOST_CHECKS {
            if (c.set)(self) && !(c.supported)(&s) {
                (c.discard)(self);
                warnings.push(c.warning.to_string());
            }
        }
        if self.oom_kill_disable && memory.is_none() {
            warnings.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".into());
        }
        warnings
    }

    /// Sets the cgroup limits of these options in `res`, the devices resolved to their
    /// numbers now (a device gone since create is refused by name).
    pub fn apply(&self, res: &mut Resources) -> Result<(), String> {
        res.memory_reservation = self.memory_reservation.map(|r| r as i64);
        res.memory_swappiness = self.memory_swappiness;
        res.disable_oom_killer = self.oom_kill_disable;
        let [(_, wd), (_, rb), (_, wb), (_, ri), (_, wi)] = self.lists();
        if self.blkio_weight.is_none() && [wd, rb, wb, ri, wi].iter().all(|l| l.is_empty()) {
            return Ok(());
        }
        // A rate of 0 is no limit (v1's own meaning; v2's io.max refuses it).
        let throttles = |flag: &str, list: &[DeviceRate]| -> Result<Vec<Throttle>, String> {
            list.iter()
                .filter(|d| d.rate != 0)
                .map(|d| {
                    let (major, minor) = device_number(flag, &d.path)?;
                    Ok(Throttle {
                        major,
                        minor,
                        rate: d.rate,
                    })
                })
                .collect()
        };
        let weight_device = throttles("--blkio-weight-device", wd)?
            .into_iter()
            .map(|t| WeightDevice {
                major: t.major,
                minor: t.minor,
                weight: Some(t.rate as u16),
                leaf_weight: None,
            })
            .collect();
        res.block_io = Some(Box::new(BlockIo {
            weight: self.blkio_weight,
            leaf_weight: None,
            weight_device,
            read_bps: throttles("--device-read-bps", rb)?,
            write_bps: throttles("--device-write-bps", wb)?,
            read_iops: throttles("--device-read-iops", ri)?,
            write_iops: throttles("--device-write-iops", wi)?,
        }));
        Ok(())
    }
}

/// The major and minor numbers of block device `path` on this host.
fn device_number(flag: &str, path: &str) -> Result<(i64, i64), String> {
    let st = rustix::fs::stat(path).map_err(|e| {
        format!("invalid {flag}: cannot find device {path} ({e}); give a block device of this host")
    })?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::BlockDevice {
        return Err(format!(
            "invalid {flag}: {path} is not a block device; give one such as /dev/sda"
        ));
    }
    let dev = st.st_rdev;
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    // The block I/O controller limits whole disks; the kernel refuses a partition's numbers.
    if std::path::Path::new(&format!("/sys/dev/block/{major}:{minor}/partition")).exists() {
        return Err(format!(
            "invalid {flag}: {path} is a partition; give its whole disk (e.g. /dev/sda)"
        ));
    }
    Ok((i64::from(major), i64::from(minor)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block device of this machine, if it has one.
    fn block_device() -> Option<String> {
        std::fs::read_dir("/sys/block")
            .ok()?
            .flatten()
            .map(|e| format!("/dev/{}", e.file_name().to_string_lossy()))
            .find(|p| device_number("x", p).is_ok())
    }

    #[test]
    fn device_flags_parse_as_dockers() {
        let d = parse_device_rate("--device-read-bps", "/dev/sda:1mb", RateKind::Bytes).unwrap();
        assert_eq!(d.rate, 1 << 20);
        assert_eq!(d.path, "/dev/sda");
        let d = parse_device_rate("--device-write-iops", "/dev/sda:300", RateKind::Ops).unwrap();
        assert_eq!(d.rate, 300);
        for (s, kind, says) in [
            ("/dev/sda", RateKind::Bytes, "DEVICE_PATH:RATE"),
            ("sda:1mb", RateKind::Bytes, "must start with /dev/"),
            ("/dev/sda:fast", RateKind::Bytes, "optional unit"),
            ("/dev/sda:1.5", RateKind::Ops, "non-negative integer"),
            ("/dev/sda:5", RateKind::Weight, "from 10 to 1000"),
            ("/dev/sda:1001", RateKind::Weight, "from 10 to 1000"),
        ] {
            let e = parse_device_rate("--x", s, kind).unwrap_err();
            assert!(e.contains(says) && e.contains("--x"), "{s}: {e}");
        }
    }

    #[test]
    fn checks_hold_dockers_ranges() {
        let t = Tuning {
            memory_reservation: Some(1 << 20),
            ..Default::default()
        };
        assert!(t.check(None).unwrap_err().contains("6MB"));
        let t = Tuning {
            memory_reservation: Some(64 << 20),
            ..Default::default()
        };
        assert!(t.check(Some(32 << 20)).unwrap_err().contains("--memory"));
        assert!(t.check(Some(64 << 20)).is_ok());
        let t = Tuning {
            memory_swappiness: Some(101),
            ..Default::default()
        };
        assert!(t.check(None).unwrap_err().contains("0-100"));
        let t = Tuning {
            blkio_weight: Some(5),
            ..Default::default()
        };
        assert!(t.check(None).unwrap_err().contains("10 to 1000"));
        let t = Tuning {
            device_read_bps: vec![DeviceRate {
                path: "/dev/null".into(),
                rate: 1,
            }],
            ..Default::default()
        };
        assert!(t.check(None).unwrap_err().contains("not a block device"));
    }

    #[test]
    fn what_the_host_cannot_apply_is_discarded_with_dockers_warnings() {
        let d = DeviceRate {
            path: "/dev/sda".into(),
            rate: 100,
        };
        let mut t = Tuning {
            memory_reservation: Some(64 << 20),
            memory_swappiness: Some(10),
            oom_kill_disable: true,
            blkio_weight: Some(300),
            device_read_bps: vec![d.clone()],
            device_write_iops: vec![d],
            ..Default::default()
        };
        // A v2 host with memory but no io controller.
        let s = Support {
            memory_reservation: true,
            ..Default::default()
        };
        let w = t.fit_to_host(s, None);
        assert_eq!(w.len(), 5, "{w:?}");
        assert!(w[0].contains("memory swappiness") && w[1].contains("OomKillDisable"));
        assert!(w[2].contains("Block I/O weight") && w[3].contains("BPS Block I/O read"));
        assert!(w[4].contains("IOPS Block write"));
        assert_eq!(t.memory_reservation, Some(64 << 20), "kept");
        assert!(t.memory_swappiness.is_none() && !t.oom_kill_disable);
        assert!(t.blkio_weight.is_none() && t.device_read_bps.is_empty());
        let mut all = t.clone();
        let full = Support {
            memory_reservation: true,
            memory_swappiness: true,
            oom_kill_disable: true,
            blkio_weight: true,
            blkio_weight_device: true,
            blkio_throttle: true,
        };
        assert!(all.fit_to_host(full, Some(1 << 30)).is_empty());
        assert_eq!(all, t);
        // Docker's caution for an OOM killer disabled without a memory limit.
        all.oom_kill_disable = true;
        let w = all.fit_to_host(full, None);
        assert!(all.oom_kill_disable);
        assert!(
            w.len() == 1 && w[0].contains("no memory limit is set"),
            "{w:?}"
        );
    }

    #[test]
    fn limits_resolve_devices_to_their_numbers() {
        let Some(dev) = block_device() else {
            println!("skipped: no block device in /sys/block");
            return;
        };
        let (major, minor) = device_number("x", &dev).unwrap();
        let t = Tuning {
            memory_reservation: Some(64 << 20),
            oom_kill_disable: true,
            device_read_bps: vec![DeviceRate {
                path: dev.clone(),
                rate: 1 << 20,
            }],
            blkio_weight_device: vec![DeviceRate {
                path: dev,
                rate: 200,
            }],
            ..Default::default()
        };
        let mut res = Resources::default();
        t.apply(&mut res).unwrap();
        assert_eq!(res.memory_reservation, Some(64 << 20));
        assert!(res.disable_oom_killer);
        let b = res.block_io.unwrap();
        assert_eq!(
            b.read_bps,
            vec![Throttle {
                major,
                minor,
                rate: 1 << 20
            }]
        );
        assert_eq!(b.weight_device[0].weight, Some(200));
        assert!(b.write_bps.is_empty() && b.weight.is_none());
        // Nothing of block I/O asked: no blkio group.
        let mut res = Resources::default();
        Tuning::default().apply(&mut res).unwrap();
        assert!(res.block_io.is_none());
    }
}
