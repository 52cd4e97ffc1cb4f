//! The output of a foreground `gcr run` kept in the container's log while it is shown, as
//! Docker keeps it (`docker run --name x IMG; docker logs x`): the container writes into
//! two pipes, and the holding gcr process copies each chunk to its own stdout or stderr
//! (the streams `-a` attaches) and into `container.log` through the same [`LogFile`] and
//! record format the supervisor of a detached container uses. With a terminal the pty
//! relay hands its output over instead ([`LogSink`]). `--log-driver none` keeps nothing
//! and the caller's descriptors go to the container directly.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

use crate::logfile::{LogFile, LogRotation};
use crate::logs::LineWriter;
use crate::EngineError;

use super::record;

/// Once the container's process has exited, the copy ends after this long without output
/// (descendants may hold the pipes open, e.g. with `--pid host`); what is still in the
/// pipes is copied first, however slowly the caller reads.
const DRAIN: Duration = Duration::from_millis(200);

/// Without a pidfd (the runtime's, from clone3) the process's exit is looked for this often.
const EXIT_POLL: Duration = Duration::from_millis(100);

/// One stream: the read end of its pipe, its name in the log, where it is shown.
struct Stream {
    fd: OwnedFd,
    name: &'static str,
    show: Option<RawFd>,
    lines: LineWriter,
}

/// The read ends of a foreground container's stdout and stderr pipes.
pub(super) struct Tee {
    streams: Vec<Stream>,
}

/// The write ends of the pipes, for the container's stdout and stderr.
pub(super) struct TeeEnds {
    pub(super) stdout: OwnedFd,
    pub(super) stderr: OwnedFd,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), EngineError> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| EngineError::Io("making the output pipes".into(), e.into()))
}

impl Tee {
    /// Pipes for stdout and stderr, shown on this process's 1 and 2 when attached.
    pub(super) fn new(show_out: bool, show_err: bool) -> Result<(Tee, TeeEnds), EngineError> {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let stream = |fd, name, show: bool, n| Stream {
            fd,
            name,
            show: show.then_some(n),
            lines: LineWriter::default(),
        };
        Ok((
            Tee {
                streams: vec![
                    stream(out_r, "stdout", show_out, 1),
                    stream(err_r, "stderr", show_err, 2),
                ],
            },
            TeeEnds {
                stdout: out_w,
                stderr: err_w,
            },
        ))
    }

    /// Copies until both pipes are closed, or until they have been idle a while after
    /// process `pid` (its pidfd `pidfd`, when the runtime has one) has exited. A stream
    /// whose showing fails (the caller's stdout closed) is closed for the container too, as
    /// the caller's own descriptor would have been: it gets EPIPE/SIGPIPE.
    pub(super) fn run(mut self, log: &mut LogFile, pid: i32, pidfd: Option<&OwnedFd>) {
        let mut exited = false;
        let mut buf = vec![0u8; 16 * 1024];
        while !self.streams.is_empty() {
            let wait_ms = match (exited, pidfd) {
                (true, _) => DRAIN.as_millis() as i32,
                (false, Some(_)) => -1,
                (false, None) => EXIT_POLL.as_millis() as i32,
            };
            let mut polls: Vec<libc::pollfd> = self
                .streams
                .iter()
                .map(|s| libc::pollfd {
                    fd: s.fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            polls.push(libc::pollfd {
                fd: match (pidfd, exited) {
                    (Some(p), false) => p.as_raw_fd(),
                    _ => -1,
                },
                events: libc::POLLIN,
                revents: 0,
            });
            // SAFETY: `polls` is a valid array of pollfd of the given length.
            let n = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, wait_ms) };
            if n < 0 {
                if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                break;
            }
            if n == 0 {
                if exited {
                    // Idle since the exit: what holds the pipes is not the container.
                    break;
                }
                if pidfd.is_none() && has_exited(pid) {
                    exited = true;
                }
                continue;
            }
            if polls[self.streams.len()].revents != 0 {
                exited = true;
            }
            let mut closed = Vec::new();
            for (i, p) in polls[..self.streams.len()].iter().enumerate() {
                if p.revents == 0 {
                    continue;
                }
                let s = &mut self.streams[i];
                // SAFETY: reading into a buffer of the stated length from a pipe we own.
                let got =
                    unsafe { libc::read(s.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if got < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                if got <= 0 {
                    s.lines.flush(log, s.name, record::now_ns());
                    closed.push(i);
                    continue;
                }
                let data = &buf[..got as usize];
                s.lines.feed(log, s.name, data, record::now_ns());
                if let Some(fd) = s.show {
                    if !gcr_runtime::pty::write_all(fd, data) {
                        // The caller stopped reading (`| head`): the container's stream
                        // closes as the caller's descriptor would have.
                        s.lines.flush(log, s.name, record::now_ns());
                        closed.push(i);
                    }
                }
            }
            for i in closed.into_iter().rev() {
                self.streams.remove(i);
            }
        }
        for s in &mut self.streams {
            s.lines.flush(log, s.name, record::now_ns());
        }
    }
}

/// Whether process `pid` (our child) has exited, without reaping it.
fn has_exited(pid: i32) -> bool {
    // SAFETY: a zeroed siginfo_t filled by waitid; WNOWAIT leaves the child to be reaped
    // by the exit path.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid on our own child with a valid siginfo pointer.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: si_pid is set by waitid when a child was found (0 otherwise).
    r != 0 || unsafe { info.si_pid() } != 0
}

/// What a foreground run does with its container's output besides showing it.
pub(super) enum Keep {
    /// `--log-driver none`: the caller's descriptors go to the container directly.
    Nothing,
    /// Copied from pipes into the log (no terminal).
    Pipes(Tee, Option<LogRotation>),
    /// Handed over by the pty relay.
    Pty(Option<LogRotation>),
}

/// A foreground container's log, opened once the container's directory exists.
pub(super) fn open(dir: &Path, rotation: Option<LogRotation>) -> LogFile {
    LogFile::open(&dir.join("container.log"), rotation).unwrap_or_else(|_| LogFile::discard())
}

/// What a pty relay hands over, recorded as the container's stdout.
pub(super) struct LogSink<'a> {
    pub(super) log: &'a mut LogFile,
    pub(super) lines: LineWriter,
}

impl LogSink<'_> {
    pub(super) fn take(&mut self, data: &[u8]) {
        self.lines.feed(self.log, "stdout", data, record::now_ns());
    }

    pub(super) fn finish(&mut self) {
        self.lines.flush(self.log, "stdout", record::now_ns());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn pipes_are_copied_into_the_log_until_closed() {
        let dir = tempfile::tempdir().unwrap();
        let (tee, ends) = Tee::new(false, false).unwrap();
        let mut log = open(dir.path(), None);
        let writer = std::thread::spawn(move || {
            let mut out = std::fs::File::from(ends.stdout);
            let mut err = std::fs::File::from(ends.stderr);
            out.write_all(b"one\ntwo").unwrap();
            err.write_all(b"oops\n").unwrap();
            out.write_all(b" halves\n").unwrap();
        });
        // A pid that is not ours to wait for: only the pipes' ends stop the copy.
        tee.run(&mut log, i32::MAX, None);
        writer.join().unwrap();
        let text = std::fs::read_to_string(dir.path().join("container.log")).unwrap();
        let recs: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| crate::logs::parse(l.as_bytes()))
            .map(|r| {
                (
                    r.stream.to_string(),
                    String::from_utf8_lossy(r.text).into_owned(),
                )
            })
            .collect();
        assert!(recs.contains(&("stdout".into(), "one".into())), "{text}");
        assert!(
            recs.contains(&("stdout".into(), "two halves".into())),
            "{text}"
        );
        assert!(recs.contains(&("stderr".into(), "oops".into())), "{text}");
    }
}
