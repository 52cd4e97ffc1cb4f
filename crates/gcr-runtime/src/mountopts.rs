//! Parsing of OCI mount option strings (`ro`, `nosuid`, `rbind`, `mode=755`, ...) into
//! mount(2) flags, propagation flags and the filesystem data string.

use libc::c_ulong;

/// Parsed options of one mount.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct MountOpts {
    pub flags: c_ulong,
    pub propagation: c_ulong,
    pub bind: bool,
    pub data: String,
}

pub(crate) fn parse(options: &[String]) -> MountOpts {
    let mut o = MountOpts::default();
    for opt in options {
        let (set, clear): (c_ulong, c_ulong) = match opt.as_str() {
            "ro" => (libc::MS_RDONLY, 0),
            "rw" => (0, libc::MS_RDONLY),
            "nosuid" => (libc::MS_NOSUID, 0),
            "suid" => (0, libc::MS_NOSUID),
            "nodev" => (libc::MS_NODEV, 0),
            "dev" => (0, libc::MS_NODEV),
            "noexec" => (libc::MS_NOEXEC, 0),
            "exec" => (0, libc::MS_NOEXEC),
            "sync" => (libc::MS_SYNCHRONOUS, 0),
            "async" => (0, libc::MS_SYNCHRONOUS),
            "dirsync" => (libc::MS_DIRSYNC, 0),
            "noatime" => (libc::MS_NOATIME, 0),
            "atime" => (0, libc::MS_NOATIME),
            "nodiratime" => (libc::MS_NODIRATIME, 0),
            "diratime" => (0, libc::MS_NODIRATIME),
            "relatime" => (libc::MS_RELATIME, 0),
            "norelatime" => (0, libc::MS_RELATIME),
            "strictatime" => (libc::MS_STRICTATIME, 0),
            "nostrictatime" => (0, libc::MS_STRICTATIME),
            "bind" => {
                o.bind = true;
                (libc::MS_BIND, 0)
            }
            "rbind" => {
                o.bind = true;
                (libc::MS_BIND | libc::MS_REC, 0)
            }
            "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" | "unbindable"
            | "runbindable" => {
                let rec = if opt.starts_with('r') {
                    libc::MS_REC
                } else {
                    0
                };
                o.propagation = rec
                    | match opt.trim_start_matches('r') {
                        "private" => libc::MS_PRIVATE,
                        "slave" => libc::MS_SLAVE,
                        "shared" => libc::MS_SHARED,
                        _ => libc::MS_UNBINDABLE,
                    };
                (0, 0)
            }
            other => {
                if !o.data.is_empty() {
                    o.data.push(',');
                }
                o.data.push_str(other);
                (0, 0)
            }
        };
        o.flags = (o.flags | set) & !clear;
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flags_and_data() {
        let o = parse(&[
            "nosuid".into(),
            "mode=755".into(),
            "ro".into(),
            "size=65536k".into(),
            "rslave".into(),
        ]);
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_RDONLY);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert_eq!(o.propagation, libc::MS_SLAVE | libc::MS_REC);
        assert!(!o.bind);
        let b = parse(&["rbind".into(), "rw".into()]);
        assert!(b.bind);
        assert_eq!(b.flags, libc::MS_BIND | libc::MS_REC);
    }
}
