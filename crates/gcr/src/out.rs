//! Standard output for every command. All output goes through here and returns a
//! `Result`, so a failed write ends the command instead of panicking as `println!` does.
//!
//! Rust starts programs with SIGPIPE ignored, so writing to a pipe whose reader has gone
//! (`gcr ps | head -1`) fails with EPIPE rather than killing the process. gcr keeps it that
//! way and treats EPIPE on stdout as "the reader wants no more": the command stops writing
//! and exits with status 0 and nothing on stderr (Docker dies of the signal; a status of 0
//! keeps `set -o pipefail` scripts that cut output short working). Any other write error
//! (a full disk behind `>`) is reported and exits 1.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Write};

use crate::Failure;

/// Writes a formatted line to stdout; `?` it in a function returning `Result<_, Failure>`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

/// Writes a formatted line to stderr, ignoring errors (`eprintln!` panics on a closed stderr,
/// and there is nowhere left to report that).
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::out::err_line(format_args!($($arg)*))
    };
}
pub(crate) use errln;

/// See [`errln`].
pub fn err_line(args: fmt::Arguments<'_>) {
    let mut e = io::stderr().lock();
    // A policy refusal is its JSON line alone (plus a sentence for a person at a terminal).
    let line = args.to_string();
    if let Some(json) = line
        .strip_prefix("Error: ")
        .filter(|j| j.starts_with("{\"code\":\"POLICY_DENY\""))
    {
        let _ = writeln!(e, "{json}");
        if io::IsTerminal::is_terminal(&io::stderr()) {
            let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
            let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            let _ = writeln!(
                e,
                "gcr: refused by policy rule {}: {}",
                s("rule"),
                s("reason")
            );
        }
        return;
    }
    let _ = e
        .write_all(line.as_bytes())
        .and_then(|()| e.write_all(b"\n"));
}

/// The failure for an error writing to stdout: quiet for a closed pipe, reported otherwise.
pub fn failure(e: io::Error) -> Failure {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Failure::closed_stdout()
    } else {
        Failure::new(1, format!("cannot write to standard output: {e}"))
    }
}

/// Writes `args` and a newline to stdout.
pub fn line(args: fmt::Arguments<'_>) -> Result<(), Failure> {
    let mut o = io::stdout().lock();
    o.write_fmt(args)
        .and_then(|()| o.write_all(b"\n"))
        .map_err(failure)
}

/// Writes raw bytes to stdout.
pub fn bytes(b: &[u8]) -> Result<(), Failure> {
    io::stdout().lock().write_all(b).map_err(failure)
}

/// Flushes stdout (it is line-buffered, so a last partial line may still be pending).
pub fn flush() -> Result<(), Failure> {
    io::stdout().lock().flush().map_err(failure)
}

/// Output of a command that acts on several objects: a failed write stops the printing, not
/// the work, so `gcr rm a b | head -0` still removes both.
#[derive(Default)]
pub struct Report {
    unwritten: Option<Failure>,
}

impl Report {
    /// Writes a line unless an earlier one failed.
    pub fn line(&mut self, args: fmt::Arguments<'_>) {
        if self.unwritten.is_none() {
            self.unwritten = line(args).err();
        }
    }

    /// The command's result: `code` from the work, else the write failure.
    pub fn finish(self, code: i32) -> Result<i32, Failure> {
        match self.unwritten {
            Some(f) if code == 0 => Err(f),
            Some(f) => {
                if !f.message.is_empty() {
                    err_line(format_args!("Error: {}", f.message));
                }
                Ok(code)
            }
            None => Ok(code),
        }
    }
}

/// True when stdout is a pipe or socket whose reader has closed it. Lets a command that
/// waits between writes (`logs -f`) notice the reader is gone before it writes again.
pub fn reader_gone() -> bool {
    let mut p = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd for the duration of the call; timeout 0 never blocks.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n == 1 && p.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

/// Stdout for code that ignores write errors (the engine's log printer): remembers the first
/// error and fails every later write at once, so the caller can stop and report it.
pub struct Watched {
    err: RefCell<Option<io::Error>>,
}

impl Watched {
    pub fn new() -> Watched {
        Watched {
            err: RefCell::new(None),
        }
    }

    /// True once a write failed or the reader went away; the command should stop.
    pub fn broken(&self) -> bool {
        if self.err.borrow().is_some() {
            return true;
        }
        if reader_gone() {
            *self.err.borrow_mut() = Some(io::ErrorKind::BrokenPipe.into());
            return true;
        }
        false
    }

    /// A writer to stdout that records its errors here.
    pub fn writer(&self) -> WatchedWriter<'_> {
        WatchedWriter { watch: self }
    }

    /// Flushes stdout, then gives the first error as the command's failure.
    pub fn finish(self) -> Result<(), Failure> {
        if let Some(e) = self.err.into_inner() {
            return Err(failure(e));
        }
        flush()
    }

    fn check<T>(&self, r: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &r {
            let mut slot = self.err.borrow_mut();
            if slot.is_none() {
                *slot = Some(io::Error::new(e.kind(), e.to_string()));
            }
        }
        r
    }

    fn failed(&self) -> Option<io::Error> {
        self.err
            .borrow()
            .as_ref()
            .map(|e| io::Error::new(e.kind(), e.to_string()))
    }
}

/// See [`Watched::writer`].
pub struct WatchedWriter<'a> {
    watch: &'a Watched,
}

impl Write for WatchedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(e) = self.watch.failed() {
            return Err(e);
        }
        let r = io::stdout().lock().write(buf);
        self.watch.check(r)
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(e) = self.watch.failed() {
            return Err(e);
        }
        let r = io::stdout().lock().flush();
        self.watch.check(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pipe_is_quiet_and_other_errors_are_reported() {
        let quiet = failure(io::ErrorKind::BrokenPipe.into());
        assert_eq!(quiet.code, 0);
        assert!(quiet.message.is_empty());
        let full = failure(io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(full.code, 1);
        assert!(
            full.message
                .starts_with("cannot write to standard output: "),
            "{}",
            full.message
        );
    }
}
