//! Log drivers and rotation. `--log-driver json-file` (the default) and `local` both keep
//! `container.log` in gcr's own record format (`local` with Docker's defaults for it: 20 MB
//! files, 5 of them); `none` keeps nothing, and `logs` says it cannot read one. Rotation
//! (`--log-opt max-size=…,max-file=…`, Docker's json-file options): the supervisor (or the
//! foreground run) writes `container.log` through a [`LogFile`], which, once a record takes
//! the file past `max-size`, renames it to `container.log.1` (older ones move up, the
//! oldest beyond `max-file` goes) and starts a new one; `gcr logs` reads the rotated files
//! first (see [`rotated`]).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// When to rotate: past `max_size` bytes, keeping `max_files` files in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRotation {
    pub max_size: u64,
    pub max_files: u32,
}

/// Where a container's output goes (`--log-driver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogDriver {
    JsonFile,
    Local,
    None,
}

/// Docker's defaults of the `local` driver for the options not given: 20 MB files, 5 of
/// them.
pub const LOCAL_DEFAULTS: [(&str, &str); 2] = [("max-size", "20m"), ("max-file", "5")];

/// Docker's message for reading the log of a container that keeps none.
pub const NOT_READABLE: &str = "configured logging driver does not support reading";

impl LogDriver {
    /// `--log-driver NAME` (None: json-file); drivers that ship logs elsewhere are refused
    /// by name.
    pub fn parse(name: Option<&str>) -> Result<LogDriver, String> {
        match name.unwrap_or("json-file") {
            "" | "json-file" => Ok(LogDriver::JsonFile),
            "local" => Ok(LogDriver::Local),
            "none" => Ok(LogDriver::None),
            other => Err(format!(
                "log driver '{other}' is not supported by gcr: use json-file, local or none"
            )),
        }
    }

    /// The driver and rotation of a container's options (checked together: `none` takes
    /// no options; `local` rotates at 20 MB over 5 files unless told otherwise).
    pub fn settings(
        driver: Option<&str>,
        opts: &[String],
    ) -> Result<(LogDriver, Option<LogRotation>), String> {
        let d = LogDriver::parse(driver)?;
        if d == LogDriver::None && !opts.is_empty() {
            return Err(
                "--log-opt needs a log driver that keeps a log: drop it, or use json-file or local"
                    .into(),
            );
        }
        let mut opts = opts.to_vec();
        if d == LogDriver::Local {
            for (key, default) in LOCAL_DEFAULTS {
                if !opts.iter().any(|o| o.starts_with(&format!("{key}="))) {
                    opts.push(format!("{key}={default}"));
                }
            }
        }
        Ok((d, LogRotation::parse(&opts)?))
    }

    /// The supervisor's argument for this driver and rotation (see
    /// [`LogRotation::to_arg`]; `none` for no log).
    pub fn to_arg(self, r: Option<LogRotation>) -> String {
        match self {
            LogDriver::None => "none".into(),
            _ => LogRotation::to_arg(r),
        }
    }
}

impl LogRotation {
    /// From `--log-opt` values (`max-size=10m`, `max-file=3`); None without `max-size`.
    pub fn parse(opts: &[String]) -> Result<Option<LogRotation>, String> {
        let (mut size, mut files) = (None, None);
        for o in opts {
            let (k, v) = o.split_once('=').ok_or_else(|| {
                format!("invalid --log-opt '{o}': use KEY=VALUE, e.g. max-size=10m")
            })?;
            match k {
                "max-size" => {
                    let n = gcr_core::units::parse_size(v)
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| {
                            format!("invalid --log-opt max-size={v}: use a size such as 10m")
                        })?;
                    size = Some(n);
                }
                "max-file" => {
                    let n = v.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        format!("invalid --log-opt max-file={v}: use a number of files, 1 or more")
                    })?;
                    files = Some(n);
                }
                other => {
                    return Err(format!(
                        "unknown --log-opt {other}: gcr's log takes max-size and max-file"
                    ))
                }
            }
        }
        match (size, files) {
            (None, Some(_)) => Err(
                "--log-opt max-file needs max-size too (the size that starts a new file)".into(),
            ),
            (None, None) => Ok(None),
            (Some(max_size), files) => Ok(Some(LogRotation {
                max_size,
                max_files: files.unwrap_or(1),
            })),
        }
    }

    /// The supervisor's argument: `SIZE:FILES`, or `-` for none.
    pub fn to_arg(r: Option<LogRotation>) -> String {
        r.map_or_else(|| "-".into(), |r| format!("{}:{}", r.max_size, r.max_files))
    }

    pub fn from_arg(s: &str) -> Option<LogRotation> {
        let (a, b) = s.split_once(':')?;
        Some(LogRotation {
            max_size: a.parse().ok().filter(|n| *n > 0)?,
            max_files: b.parse().ok().filter(|n| *n >= 1)?,
        })
    }
}

/// `path.N` for rotation number `n`.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// The rotated files of the log at `path`, oldest first (without `path` itself).
pub fn rotated(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut n = 1;
    while numbered(path, n).exists() {
        out.push(numbered(path, n));
        n += 1;
    }
    out.reverse();
    out
}

/// The container's log as the supervisor writes it (or nothing, for `--log-driver none`).
pub struct LogFile {
    file: Option<File>,
    path: PathBuf,
    rotation: Option<LogRotation>,
    size: u64,
    /// The last byte written ended a record.
    at_record_start: bool,
}

impl LogFile {
    pub fn open(path: &Path, rotation: Option<LogRotation>) -> std::io::Result<LogFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogFile {
            file: Some(file),
            path: path.to_path_buf(),
            rotation,
            size,
            at_record_start: true,
        })
    }

    /// A log that keeps nothing (`--log-driver none`).
    pub fn discard() -> LogFile {
        LogFile {
            file: None,
            path: PathBuf::new(),
            rotation: None,
            size: 0,
            at_record_start: true,
        }
    }

    /// Starts a new file when this one is past `max-size` (between records).
    fn rotate_if_full(&mut self) {
        let Some(r) = self.rotation else { return };
        if self.size < r.max_size {
            return;
        }
        if r.max_files > 1 {
            let _ = std::fs::remove_file(numbered(&self.path, r.max_files - 1));
            for n in (1..r.max_files - 1).rev() {
                let _ = std::fs::rename(numbered(&self.path, n), numbered(&self.path, n + 1));
            }
            let _ = std::fs::rename(&self.path, numbered(&self.path, 1));
        } else {
            // One file: it starts over (a reader following it sees a new file).
            let _ = std::fs::remove_file(&self.path);
        }
        if let Ok(f) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            self.file = Some(f);
            self.size = 0;
        }
    }
}

impl Write for LogFile {
    /// Writes, first starting a new file when the last write ended a record (a newline)
    /// and the file is full: records are never split across files.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.file.is_none() {
            return Ok(buf.len());
        }
        if self.at_record_start {
            self.rotate_if_full();
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(buf.len());
        };
        let n = file.write(buf)?;
        self.size += n as u64;
        if n > 0 {
            self.at_record_start = buf[n - 1] == b'\n';
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drivers_and_their_options() {
        let s = |d: Option<&str>, o: &[&str]| {
            LogDriver::settings(d, &o.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(s(None, &[]).unwrap(), (LogDriver::JsonFile, None));
        assert_eq!(s(Some(""), &[]).unwrap().0, LogDriver::JsonFile);
        // local: Docker's defaults unless told otherwise.
        let (d, r) = s(Some("local"), &[]).unwrap();
        assert_eq!(d, LogDriver::Local);
        assert_eq!(
            r,
            Some(LogRotation {
                max_size: 20 << 20,
                max_files: 5
            })
        );
        let (_, r) = s(Some("local"), &["max-size=1k"]).unwrap();
        assert_eq!(r.map(|r| (r.max_size, r.max_files)), Some((1024, 5)));
        let (_, r2) = s(Some("local"), &["max-file=2"]).unwrap();
        assert_eq!(r2.map(|r| (r.max_size, r.max_files)), Some((20 << 20, 2)));
        assert_eq!(s(Some("none"), &[]).unwrap(), (LogDriver::None, None));
        assert!(s(Some("none"), &["max-size=1k"])
            .unwrap_err()
            .contains("--log-opt"));
        let e = s(Some("journald"), &[]).unwrap_err();
        assert!(
            e.contains("'journald'") && e.contains("json-file, local or none"),
            "{e}"
        );
        assert_eq!(LogDriver::None.to_arg(None), "none");
        assert_eq!(LogDriver::Local.to_arg(r), "1024:5");
        // The discarding log takes everything and keeps nothing.
        let mut f = LogFile::discard();
        assert_eq!(f.write(b"gone\n").unwrap(), 5);
        f.flush().unwrap();
    }

    #[test]
    fn options_parse_and_files_rotate() {
        let o =
            |v: &[&str]| LogRotation::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(o(&[]).unwrap(), None);
        assert_eq!(
            o(&["max-size=1k", "max-file=3"]).unwrap(),
            Some(LogRotation {
                max_size: 1024,
                max_files: 3
            })
        );
        for bad in [
            &["max-file=2"][..],
            &["max-size=0"],
            &["max-size=1k", "max-file=0"],
            &["color=red"],
            &["max-size"],
        ] {
            assert!(o(bad).is_err(), "{bad:?}");
        }
        let r = Some(LogRotation {
            max_size: 10,
            max_files: 3,
        });
        assert_eq!(LogRotation::from_arg(&LogRotation::to_arg(r)), r);
        assert_eq!(LogRotation::from_arg("-"), None);

        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("container.log");
        let mut f = LogFile::open(&p, r).unwrap();
        for i in 0..5 {
            // A record in two writes: never split across files.
            write!(f, "record {i} ").unwrap();
            writeln!(f, "padded").unwrap();
        }
        // Each record fills a file: .2 and .1 hold two before the newest.
        let files = rotated(&p);
        assert_eq!(files.len(), 2);
        assert_eq!(
            std::fs::read_to_string(&files[0]).unwrap(),
            "record 2 padded\n"
        );
        assert_eq!(
            std::fs::read_to_string(&files[1]).unwrap(),
            "record 3 padded\n"
        );
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "record 4 padded\n");
    }
}
