//! Container logs in the CRI log format, one line per record:
//! `2016-10-06T00:17:09.669794202Z stdout F message` (`P` marks a partial line).
//! The supervisor writes them; `gcr logs` reads them (`--tail`, `--timestamps`, `-f`,
//! `--since`, `--until`).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::EngineError;

/// Formats unix nanoseconds as RFC 3339 UTC with nanoseconds, fixed width (so log lines
/// line up and sort as text): `2016-10-06T00:17:09.669794202Z`.
pub fn rfc3339_nanos(ns: i64) -> String {
    let secs = gcr_core::time::format_rfc3339(ns.div_euclid(1_000_000_000));
    format!(
        "{}.{:09}Z",
        secs.trim_end_matches('Z'),
        ns.rem_euclid(1_000_000_000)
    )
}

/// Splits a stream into CRI records; keeps an unterminated tail for the next chunk.
#[derive(Default)]
pub struct LineWriter {
    pending: Vec<u8>,
}

impl LineWriter {
    /// Appends records for `data` from `stream` to `out`.
    pub fn feed(&mut self, out: &mut impl Write, stream: &str, data: &[u8], now_ns: i64) {
        self.pending.extend_from_slice(data);
        let ts = rfc3339_nanos(now_ns);
        let mut start = 0;
        while let Some(pos) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let line = &self.pending[start..start + pos];
            let _ = write!(out, "{ts} {stream} F ");
            let _ = out.write_all(line);
            let _ = out.write_all(b"\n");
            start += pos + 1;
        }
        self.pending.drain(..start);
        // Very long lines are flushed as partial records.
        if self.pending.len() >= 16 * 1024 {
            let _ = write!(out, "{ts} {stream} P ");
            let _ = out.write_all(&self.pending);
            let _ = out.write_all(b"\n");
            self.pending.clear();
        }
    }

    /// Writes what is left as a partial record.
    pub fn flush(&mut self, out: &mut impl Write, stream: &str, now_ns: i64) {
        if !self.pending.is_empty() {
            let _ = write!(out, "{} {stream} P ", rfc3339_nanos(now_ns));
            let _ = out.write_all(&self.pending);
            let _ = out.write_all(b"\n");
            self.pending.clear();
        }
    }
}

/// One parsed record.
pub struct Record<'a> {
    pub time: &'a str,
    pub stream: &'a str,
    pub partial: bool,
    pub text: &'a [u8],
}

/// Parses one CRI line (without its newline).
pub fn parse(line: &[u8]) -> Option<Record<'_>> {
    let mut it = line.splitn(4, |&b| b == b' ');
    let time = std::str::from_utf8(it.next()?).ok()?;
    let stream = std::str::from_utf8(it.next()?).ok()?;
    let tag = it.next()?;
    let text = it.next().unwrap_or(b"");
    Some(Record {
        time,
        stream,
        partial: tag == b"P",
        text,
    })
}

/// Options of `gcr logs`.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub tail: Option<usize>,
    pub timestamps: bool,
    pub follow: bool,
    /// `--since`/`--until` as record times (RFC 3339 with nanoseconds, fixed width, so
    /// they compare as text): records at or after `since` and before `until`.
    pub since: Option<String>,
    pub until: Option<String>,
}

impl LogOptions {
    fn wanted(&self, time: &str) -> bool {
        self.since.as_deref().is_none_or(|s| time >= s)
            && self.until.as_deref().is_none_or(|u| time < u)
    }
}

/// Writes one record as one write (a framed writer makes it one Docker frame, as dockerd
/// sends one frame per log message).
fn emit(rec: &Record<'_>, ts: bool, out: &mut dyn Write, err: &mut dyn Write) {
    let w: &mut dyn Write = if rec.stream == "stderr" { err } else { out };
    let mut line = Vec::with_capacity(rec.text.len() + if ts { 40 } else { 1 });
    if ts {
        line.extend_from_slice(rec.time.as_bytes());
        line.push(b' ');
    }
    line.extend_from_slice(rec.text);
    if !rec.partial {
        line.push(b'\n');
    }
    let _ = w.write_all(&line);
}

/// Offset where the last `n` records start.
fn tail_offset(f: &mut File, n: usize) -> std::io::Result<u64> {
    let len = f.seek(SeekFrom::End(0))?;
    if n == 0 {
        return Ok(len);
    }
    let mut pos = len;
    let mut newlines = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    while pos > 0 {
        let step = (buf.len() as u64).min(pos);
        pos -= step;
        f.seek(SeekFrom::Start(pos))?;
        f.read_exact(&mut buf[..step as usize])?;
        for i in (0..step as usize).rev() {
            if buf[i] == b'\n' {
                newlines += 1;
                // The file ends with '\n', so n records need n+1 newlines to bound them.
                if newlines == n + 1 {
                    return Ok(pos + i as u64 + 1);
                }
            }
        }
    }
    Ok(0)
}

/// Prints a log file; with `follow`, keeps printing until `still_running` says false.
pub fn print(
    path: &Path,
    o: &LogOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
    still_running: &mut dyn FnMut() -> bool,
) -> Result<(), EngineError> {
    print_opened(path, None, o, out, err, still_running)
}

/// [`print`] from `opened`, the log as opened earlier (when there was one): a reader that
/// answers before it reads (the API's logs, whose client may remove the container as soon
/// as it has the answer's headers, as docker-py's `run` does) opens the file first.
pub fn print_opened(
    path: &Path,
    opened: Option<File>,
    o: &LogOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
    still_running: &mut dyn FnMut() -> bool,
) -> Result<(), EngineError> {
    print_rotated(path, o, out, err);
    // A container just started may not have made its log yet: a follow waits for it.
    let mut f = if let Some(f) = opened {
        f
    } else {
        loop {
            match File::open(path) {
                Ok(f) => break f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if !o.follow || !still_running() {
                        match File::open(path) {
                            Ok(f) => break f,
                            Err(_) => return Ok(()),
                        }
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(EngineError::Io(format!("reading {}", path.display()), e)),
            }
        }
    };
    let start = match o.tail {
        Some(n) => tail_offset(&mut f, n).map_err(|e| EngineError::Io("reading logs".into(), e))?,
        None => 0,
    };
    f.seek(SeekFrom::Start(start))
        .map_err(|e| EngineError::Io("reading logs".into(), e))?;
    let mut ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
    let mut r = BufReader::new(f);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r
            .read_until(b'\n', &mut line)
            .map_err(|e| EngineError::Io("reading logs".into(), e))?;
        if n > 0 && line.ends_with(b"\n") {
            if let Some(rec) = parse(&line[..line.len() - 1]).filter(|r| o.wanted(r.time)) {
                emit(&rec, o.timestamps, out, err);
            }
            continue;
        }
        // At the end (possibly of a half-written line): stop or wait for more.
        if !o.follow {
            return Ok(());
        }
        let _ = out.flush();
        let _ = err.flush();
        let running = still_running();
        let pos = r
            .stream_position()
            .map_err(|e| EngineError::Io("reading logs".into(), e))?;
        r.seek(SeekFrom::Start(pos - n as u64))
            .map_err(|e| EngineError::Io("reading logs".into(), e))?;
        let now = std::fs::metadata(path).map(|m| m.ino()).ok();
        if now.is_some_and(|i| i != ino) {
            // Rotated (see `logfile`): the rest of this file, then the new one from its start.
            let mut rest = Vec::new();
            let _ = r.read_to_end(&mut rest);
            emit_all(&rest, o, out, err);
            if let Ok(f) = File::open(path) {
                ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
                r = BufReader::new(f);
            }
            continue;
        }
        if !running {
            // One last pass for what was written before the exit.
            let mut rest = Vec::new();
            let _ = r.read_to_end(&mut rest);
            emit_all(&rest, o, out, err);
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Emits every wanted record of `text` (whole lines).
fn emit_all(text: &[u8], o: &LogOptions, out: &mut dyn Write, err: &mut dyn Write) {
    for l in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if let Some(rec) = parse(l).filter(|r| o.wanted(r.time)) {
            emit(&rec, o.timestamps, out, err);
        }
    }
}

/// The records of the rotated files of the log at `path` (oldest first), as many as
/// `--tail` leaves room for after the current file's lines.
fn print_rotated(path: &Path, o: &LogOptions, out: &mut dyn Write, err: &mut dyn Write) {
    let older = crate::logfile::rotated(path);
    if older.is_empty() || o.tail == Some(0) {
        return;
    }
    let mut text = Vec::new();
    for p in &older {
        if let Ok(mut f) = File::open(p) {
            let _ = f.read_to_end(&mut text);
        }
    }
    let skip = match o.tail {
        None => 0,
        Some(n) => {
            let current = std::fs::read(path)
                .map(|t| t.iter().filter(|&&b| b == b'\n').count())
                .unwrap_or(0);
            let want = n.saturating_sub(current);
            let total = text.iter().filter(|&&b| b == b'\n').count();
            total.saturating_sub(want)
        }
    };
    let start = text
        .split_inclusive(|&b| b == b'\n')
        .take(skip)
        .map(|l| l.len())
        .sum::<usize>();
    emit_all(&text[start..], o, out, err);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_as_rfc3339() {
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nanos(1_475_713_029_669_794_202),
            "2016-10-06T00:17:09.669794202Z"
        );
    }

    #[test]
    fn lines_split_into_records_and_tail_works() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut buf = Vec::new();
        let mut w = LineWriter::default();
        w.feed(&mut buf, "stdout", b"one\ntw", 0);
        w.feed(&mut buf, "stdout", b"o\nthree\n", 1);
        w.feed(&mut buf, "stderr", b"oops\n", 2);
        w.flush(&mut buf, "stdout", 3);
        std::fs::write(&p, &buf).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let o = LogOptions {
            tail: Some(2),
            ..Default::default()
        };
        print(&p, &o, &mut out, &mut err, &mut || false).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "three\n");
        assert_eq!(String::from_utf8(err).unwrap(), "oops\n");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let o = LogOptions {
            timestamps: true,
            ..Default::default()
        };
        print(&p, &o, &mut out, &mut err, &mut || false).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.starts_with("1970-01-01T00:00:00.000000000Z one\n"),
            "{out}"
        );
        assert_eq!(out.lines().count(), 3);
    }
}
