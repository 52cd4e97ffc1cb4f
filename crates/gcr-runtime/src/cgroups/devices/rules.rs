//! Device rules (OCI `linux.resources.devices`) and the v1 device controller's semantics
//! applied to them: the rules are folded, in order, into a default (allow or deny every
//! device) and a set of exceptions, as the kernel's v1 `devices.allow`/`devices.deny` files
//! would hold them (runc's devices emulator does the same before it generates its eBPF
//! program).

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::super::CgroupError;

/// `m`: mknod (the eBPF context's BPF_DEVCG_ACC_MKNOD).
pub const ACC_MKNOD: u8 = 1;
/// `r`: open for reading (BPF_DEVCG_ACC_READ).
pub const ACC_READ: u8 = 2;
/// `w`: open for writing (BPF_DEVCG_ACC_WRITE).
pub const ACC_WRITE: u8 = 4;
/// `rwm`.
pub const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// The device type of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceKind {
    /// `a`: every device, whatever the numbers and access in the rule.
    All,
    /// `b`: block devices (BPF_DEVCG_DEV_BLOCK).
    Block,
    /// `c`: character devices (BPF_DEVCG_DEV_CHAR).
    Char,
}

/// One device rule: allow or deny `access` to the devices of `kind` with these numbers
/// (`None`: any).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceRule {
    /// Allow (true) or deny.
    pub allow: bool,
    /// Device type.
    pub kind: DeviceKind,
    /// Major number; `None` is `*`.
    pub major: Option<u32>,
    /// Minor number; `None` is `*`.
    pub minor: Option<u32>,
    /// `ACC_*` bits.
    pub access: u8,
}

fn bad(why: String) -> CgroupError {
    CgroupError::Invalid(why)
}

/// `rwm` letters to `ACC_*` bits (empty: all, as an OCI rule without `access`).
pub fn parse_access(s: &str) -> Result<u8, CgroupError> {
    let mut acc = 0;
    for c in s.chars() {
        acc |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => {
                return Err(bad(format!(
                    "device access {s:?} has {c:?}; use the letters r, w and m"
                )))
            }
        };
    }
    Ok(if acc == 0 { ACC_ALL } else { acc })
}

fn number(n: Option<i64>, what: &str) -> Result<Option<u32>, CgroupError> {
    match n {
        // Omitted or negative (runc's -1): any.
        None => Ok(None),
        Some(n) if n < 0 => Ok(None),
        Some(n) => u32::try_from(n).map(Some).map_err(|_| {
            bad(format!(
                "device {what} number {n} is out of range (at most {})",
                u32::MAX
            ))
        }),
    }
}

impl DeviceRule {
    /// The rule an OCI `linux.resources.devices` entry gives (type omitted: `a`; access
    /// omitted: `rwm`). Types other than a, b and c are refused.
    pub fn from_oci(d: &LinuxDeviceCgroup) -> Result<Self, CgroupError> {
        let kind = match d.typ() {
            None | Some(LinuxDeviceType::A) => DeviceKind::All,
            Some(LinuxDeviceType::B) => DeviceKind::Block,
            Some(LinuxDeviceType::C) => DeviceKind::Char,
            Some(t) => {
                return Err(bad(format!(
                    "device rule type {:?} cannot be controlled; use a, b or c",
                    t.as_str()
                )))
            }
        };
        Ok(Self {
            allow: d.allow(),
            kind,
            major: number(d.major(), "major")?,
            minor: number(d.minor(), "minor")?,
            access: parse_access(d.access().as_deref().unwrap_or(""))?,
        })
    }

    /// A rule in the v1 file syntax, `c 1:3 rwm` (`a` alone is every device), allowed or
    /// denied as `allow` says.
    pub fn parse(allow: bool, line: &str) -> Result<Self, CgroupError> {
        let invalid = || {
            bad(format!(
                "invalid device rule {line:?}: use the form 'c 1:3 rwm'"
            ))
        };
        let mut parts = line.split_whitespace();
        let kind = match parts.next() {
            Some("a") => DeviceKind::All,
            Some("b") => DeviceKind::Block,
            Some("c") => DeviceKind::Char,
            _ => return Err(invalid()),
        };
        let (major, minor) = match parts.next() {
            None if kind == DeviceKind::All => (None, None),
            None => return Err(invalid()),
            Some(nums) => {
                let (ma, mi) = nums.split_once(':').ok_or_else(invalid)?;
                let num = |s: &str| -> Result<Option<u32>, CgroupError> {
                    if s == "*" {
                        Ok(None)
                    } else {
                        s.parse().map(Some).map_err(|_| invalid())
                    }
                };
                (num(ma)?, num(mi)?)
            }
        };
        let access = parse_access(parts.next().unwrap_or(""))?;
        if parts.next().is_some() {
            return Err(invalid());
        }
        Ok(Self {
            allow,
            kind,
            major,
            minor,
            access,
        })
    }
}

/// The exception key: (major, minor, type) with `None` (any) first, the order runc's
/// emulator lists its rules in, so the programs come out alike.
pub(crate) type Key = (Option<u32>, Option<u32>, DeviceKind);

/// Rules folded into a default and exceptions to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Folded {
    /// Every device is allowed unless an exception denies it (false: denied unless an
    /// exception allows it).
    pub default_allow: bool,
    /// Exceptions to the default with their access bits, in (major, minor, type) order.
    pub exceptions: BTreeMap<Key, u8>,
}

impl Folded {
    /// Folds `rules` in order, starting from "deny everything" (runc's starting point; its
    /// containers always carry rules).
    ///
    /// A rule that would punch a hole into a wildcard exception (deny `c 1:3 r` after
    /// allowing `c 1:* r`) is refused, as runc refuses it: the v1 controller silently
    /// ignores it, which would leave more allowed than the rules seem to say.
    pub fn new(rules: &[DeviceRule]) -> Result<Self, CgroupError> {
        let mut f = Folded::default();
        for r in rules {
            f.apply(r)?;
        }
        Ok(f)
    }

    fn apply(&mut self, r: &DeviceRule) -> Result<(), CgroupError> {
        if r.kind == DeviceKind::All {
            *self = Folded {
                default_allow: r.allow,
                exceptions: BTreeMap::new(),
            };
            return Ok(());
        }
        let key = (r.major, r.minor, r.kind);
        if r.allow != self.default_allow {
            *self.exceptions.entry(key).or_insert(0) |= r.access;
            return Ok(());
        }
        // The rule agrees with the default: it takes access away from an exception.
        for partial in [
            (None, r.minor, r.kind),
            (r.major, None, r.kind),
            (None, None, r.kind),
        ] {
            if partial == key {
                continue;
            }
            if let Some(acc) = self.exceptions.get(&partial).filter(|a| *a & r.access != 0) {
                return Err(bad(format!(
                    "device rule {} cannot take access away from part of the wildcard rule {} (the v1 device controller would ignore it): list the devices one by one",
                    show(r.allow, key, r.access),
                    show(!r.allow, partial, *acc),
                )));
            }
        }
        if let Some(acc) = self.exceptions.get_mut(&key) {
            *acc &= !r.access;
            if *acc == 0 {
                self.exceptions.remove(&key);
            }
        }
        Ok(())
    }
}

fn show(allow: bool, (major, minor, kind): Key, access: u8) -> String {
    let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
    let t = match kind {
        DeviceKind::All => 'a',
        DeviceKind::Block => 'b',
        DeviceKind::Char => 'c',
    };
    let acc: String = [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')]
        .iter()
        .filter(|(b, _)| access & b != 0)
        .map(|(_, c)| *c)
        .collect();
    let verb = if allow { "allow" } else { "deny" };
    format!("'{verb} {t} {}:{} {acc}'", num(major), num(minor))
}
