//! OCI hooks that the container's own process runs (runc's model): `createContainer`
//! after the mounts, before pivot_root (in the container's namespaces, the path resolved
//! in the runtime's root, which is still visible), and `startContainer` after the start
//! released the process, right before execve (resolved in the container's root).
//!
//! Before its `createContainer` hooks the child stops at a sync point: it reports
//! [`crate::sys::HOOKS`] on its error pipe and waits while the parent runs the runtime's
//! own `prestart`/`createRuntime` hooks ([`ContainerHooks::create_runtime`]) and then sends
//! the two state documents (statuses `creating` and `created`) into a buffer the child
//! was given before clone. Nothing here allocates in the child: each hook is a raw
//! fork-like `clone`, its stdin a pipe holding the state, its stdout and stderr a memfd
//! whose start is quoted in the error, its end awaited with `waitpid(WNOHANG)` up to its
//! timeout (then SIGKILL).

use std::cell::UnsafeCell;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::ptr;

use libc::c_char;

use crate::error::Stage;
use crate::sys::{self, errno};
use crate::RuntimeError;

/// One hook of the runtime spec (`path`, `args` with argv[0], `env`, `timeout` seconds).
#[derive(Clone, Debug, Default)]
pub struct Hook {
    pub path: PathBuf,
    pub args: Vec<String>,
    /// `None`: the runtime's own environment.
    pub env: Option<Vec<String>>,
    pub timeout: Option<u32>,
}

/// The state document (JSON) for a pid and a status.
pub type StateDoc = Box<dyn Fn(i32, &str) -> Vec<u8>>;

/// The hooks of one container start (see the module comment).
pub struct ContainerHooks {
    pub create_container: Vec<Hook>,
    pub start_container: Vec<Hook>,
    /// Runs in the parent at the sync point, given the container process's pid: the
    /// runtime's `prestart` and `createRuntime` hooks. An error (naming the hook) fails
    /// the start; the child is killed.
    pub create_runtime: Box<dyn FnOnce(i32) -> Result<(), String>>,
    pub state: StateDoc,
    /// Where the process writes why a `startContainer` hook failed (nobody reads its
    /// error pipe after the hold); closed on execve.
    pub start_report: Option<OwnedFd>,
}

/// The parent's part: what runs at the sync point and the pipe that releases the child.
pub(crate) struct ParentSide {
    pub(crate) create_runtime: Box<dyn FnOnce(i32) -> Result<(), String>>,
    state: StateDoc,
    sync_w: OwnedFd,
    capacity: usize,
}

struct HookPlan {
    path: CString,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    _env: Vec<CString>,
    env_ptrs: Option<Vec<*const c_char>>,
    timeout_s: Option<u32>,
    /// `createContainer hook #0 (/path)`.
    label: Vec<u8>,
}

/// The child's part, prepared before clone.
pub(crate) struct HooksPlan {
    create: Vec<HookPlan>,
    start: Vec<HookPlan>,
    sync_r: OwnedFd,
    report: Option<OwnedFd>,
    /// `[len creating u32][len created u32][creating][created]`, filled by the child at the
    /// sync point (its own copy of this memory: it is single-threaded after clone).
    docs: UnsafeCell<Vec<u8>>,
}

fn cstring(s: &[u8], what: &str) -> Result<CString, RuntimeError> {
    CString::new(s).map_err(|_| RuntimeError::InvalidSpec(format!("{what} contains a NUL byte")))
}

fn plan(kind: &str, i: usize, h: &Hook) -> Result<HookPlan, RuntimeError> {
    let what = format!("{kind} hook #{i}");
    let path = cstring(h.path.as_os_str().as_bytes(), &what)?;
    let argv: Vec<CString> = if h.args.is_empty() {
        vec![path.clone()]
    } else {
        h.args
            .iter()
            .map(|a| cstring(a.as_bytes(), &what))
            .collect::<Result<_, _>>()?
    };
    let env: Vec<CString> = h
        .env
        .iter()
        .flatten()
        .map(|e| cstring(e.as_bytes(), &what))
        .collect::<Result<_, _>>()?;
    let ptrs = |v: &[CString]| -> Vec<*const c_char> {
        v.iter().map(|a| a.as_ptr()).chain([ptr::null()]).collect()
    };
    Ok(HookPlan {
        argv_ptrs: ptrs(&argv),
        env_ptrs: h.env.as_ref().map(|_| ptrs(&env)),
        path,
        _argv: argv,
        _env: env,
        timeout_s: h.timeout,
        label: format!("{what} ({})", h.path.display()).into_bytes(),
    })
}

impl HooksPlan {
    pub(crate) fn prepare(h: ContainerHooks) -> Result<(HooksPlan, ParentSide), RuntimeError> {
        let create = (h.create_container.iter().enumerate())
            .map(|(i, x)| plan("createContainer", i, x))
            .collect::<Result<_, _>>()?;
        let start = (h.start_container.iter().enumerate())
            .map(|(i, x)| plan("startContainer", i, x))
            .collect::<Result<_, _>>()?;
        // The largest documents a pid can give.
        let capacity =
            8 + (h.state)(i32::MAX, "creating").len() + (h.state)(i32::MAX, "created").len();
        let (sync_r, sync_w) = sys::pipe()?;
        Ok((
            HooksPlan {
                create,
                start,
                sync_r,
                report: h.start_report,
                docs: UnsafeCell::new(vec![0; capacity]),
            },
            ParentSide {
                create_runtime: h.create_runtime,
                state: h.state,
                sync_w,
                capacity,
            },
        ))
    }

    /// Descriptors the child keeps.
    pub(crate) fn keep_fds(&self) -> Vec<RawFd> {
        [self.sync_r.as_raw_fd()]
            .into_iter()
            .chain(self.report.as_ref().map(|f| f.as_raw_fd()))
            .collect()
    }

    fn doc(&self, second: bool) -> &[u8] {
        // SAFETY: only the (single-threaded) child reads or writes its copy of the buffer,
        // and no reference to it outlives one call.
        let d = unsafe { &*self.docs.get() };
        let a = u32::from_ne_bytes([d[0], d[1], d[2], d[3]]) as usize;
        let b = u32::from_ne_bytes([d[4], d[5], d[6], d[7]]) as usize;
        if second {
            &d[8 + a..8 + a + b]
        } else {
            &d[8..8 + a]
        }
    }

    /// Child side: the sync point, then the `createContainer` hooks. A failure is
    /// reported on `errfd` as [`Stage::Hook`] followed by the message, and the child exits.
    pub(crate) fn at_create(&self, errfd: RawFd) {
        let mut msg = [0u8; 8];
        msg[..4].copy_from_slice(&sys::HOOKS.to_ne_bytes());
        // SAFETY: write/read on stack buffers and on the child's copy of the docs buffer
        // (see `doc`), close and _exit.
        unsafe {
            libc::write(errfd, msg.as_ptr().cast(), msg.len());
            let d = &mut *self.docs.get();
            let mut got = 0;
            while got < d.len() {
                let n = libc::read(
                    self.sync_r.as_raw_fd(),
                    d[got..].as_mut_ptr().cast(),
                    d.len() - got,
                );
                if n < 0 && errno() == libc::EINTR {
                    continue;
                }
                if n <= 0 {
                    break;
                }
                got += n as usize;
            }
            libc::close(self.sync_r.as_raw_fd());
            if got < 8 {
                libc::_exit(125); // the parent failed (a createRuntime hook) and reports it
            }
        }
        for h in &self.create {
            let mut m = Msg::new();
            if !h.run(self.doc(false), &mut m) {
                let mut head = [0u8; 8];
                head[..4].copy_from_slice(&(Stage::Hook as u32).to_ne_bytes());
                let mut out = Msg::new();
                out.push(&head);
                out.push(m.bytes());
                // SAFETY: one write of a stack buffer (atomic: under PIPE_BUF), then _exit.
                unsafe {
                    libc::write(errfd, out.buf.as_ptr().cast(), out.len);
                    libc::_exit(125);
                }
            }
        }
    }

    /// Child side, after the start released the process: the `startContainer` hooks. A
    /// failure is written to the start report and the process exits.
    pub(crate) fn at_start(&self) {
        for h in &self.start {
            let mut m = Msg::new();
            if !h.run(self.doc(true), &mut m) {
                // SAFETY: a write of a stack buffer, then _exit.
                unsafe {
                    if let Some(r) = &self.report {
                        libc::write(r.as_raw_fd(), m.buf.as_ptr().cast(), m.len);
                    }
                    libc::_exit(125);
                }
            }
        }
    }
}

impl ParentSide {
    /// Parent side at the sync point: the runtime's hooks, then the documents that release
    /// the child. `Err`: the child gets EOF and exits; the caller reaps it.
    pub(crate) fn release(self, pid: i32) -> Result<(), RuntimeError> {
        (self.create_runtime)(pid).map_err(RuntimeError::Hook)?;
        // The pid as the container sees it (1 in its own pid namespace), as runc reports
        // it to the hooks the container runs.
        let nspid = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("NSpid:"))
                    .and_then(|l| l.split_whitespace().last()?.parse().ok())
            })
            .unwrap_or(pid);
        let a = (self.state)(nspid, "creating");
        let b = (self.state)(nspid, "created");
        let mut buf = Vec::with_capacity(self.capacity);
        buf.extend_from_slice(&(a.len() as u32).to_ne_bytes());
        buf.extend_from_slice(&(b.len() as u32).to_ne_bytes());
        buf.extend_from_slice(&a);
        buf.extend_from_slice(&b);
        if buf.len() > self.capacity {
            return Err(RuntimeError::Hook(
                "the container state for the hooks grew during the start".into(),
            ));
        }
        let mut f = std::fs::File::from(self.sync_w);
        std::io::Write::write_all(&mut f, &buf)
            .map_err(|e| RuntimeError::Hook(format!("cannot hand the state to the hooks: {e}")))
    }
}

/// A message built without allocating.
struct Msg {
    buf: [u8; 2048],
    len: usize,
}

impl Msg {
    fn new() -> Msg {
        Msg {
            buf: [0; 2048],
            len: 0,
        }
    }

    fn push(&mut self, b: &[u8]) {
        let n = b.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&b[..n]);
        self.len += n;
    }

    fn num(&mut self, mut n: u64) {
        let mut d = [0u8; 20];
        let mut i = d.len();
        loop {
            i -= 1;
            d[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&d[i..]);
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

fn errno_text(e: i32) -> &'static [u8] {
    match e {
        libc::ENOENT => b"no such file or directory",
        libc::EACCES => b"permission denied",
        libc::ENOEXEC => b"exec format error",
        libc::ENOTDIR => b"not a directory",
        libc::EPERM => b"operation not permitted",
        libc::ENOMEM => b"out of memory",
        libc::EAGAIN => b"resource temporarily unavailable",
        _ => b"errno",
    }
}

impl HookPlan {
    /// Child side: runs the hook with `state` on its stdin. False (with `m` saying why)
    /// when it could not run, failed, or outlived its timeout.
    fn run(&self, state: &[u8], m: &mut Msg) -> bool {
        m.push(&self.label);
        // SAFETY: raw system calls on prepared strings, stack buffers and descriptors made
        // here; the fork-like child only dups, resets signals and execs or _exits.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            libc::signal(libc::SIGCHLD, libc::SIG_DFL);
            let out = libc::syscall(
                libc::SYS_memfd_create,
                c"gcr-hook".as_ptr(),
                libc::MFD_CLOEXEC,
            ) as RawFd;
            let mut inp = [-1; 2];
            let mut ep = [-1; 2];
            if libc::pipe2(inp.as_mut_ptr(), libc::O_CLOEXEC) != 0
                || libc::pipe2(ep.as_mut_ptr(), libc::O_CLOEXEC) != 0
            {
                return self.cannot(m, errno());
            }
            if state.len() > 65536 {
                libc::fcntl(inp[1], libc::F_SETPIPE_SZ, state.len() as libc::c_int);
            }
            // fork-like: no CLONE_* flags, only the exit signal (clone3 may be refused by a
            // seccomp profile; glibc's fork would run atfork handlers).
            let pid =
                libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0, 0, 0, 0) as i32;
            if pid == 0 {
                libc::dup2(inp[0], 0);
                if out >= 0 {
                    libc::dup2(out, 1);
                    libc::dup2(out, 2);
                }
                crate::process::reset_signals();
                let envp = match &self.env_ptrs {
                    Some(e) => e.as_ptr(),
                    None => environ_ptr(),
                };
                libc::execve(self.path.as_ptr(), self.argv_ptrs.as_ptr(), envp);
                let e = errno().to_ne_bytes();
                libc::write(ep[1], e.as_ptr().cast(), 4);
                libc::_exit(127);
            }
            libc::close(inp[0]);
            libc::close(ep[1]);
            if pid < 0 {
                let e = errno();
                libc::close(inp[1]);
                libc::close(ep[0]);
                return self.cannot(m, e);
            }
            let fl = libc::fcntl(inp[1], libc::F_GETFL);
            libc::fcntl(inp[1], libc::F_SETFL, fl | libc::O_NONBLOCK);
            libc::write(inp[1], state.as_ptr().cast(), state.len());
            libc::close(inp[1]);
            let mut e = [0u8; 4];
            let n = loop {
                let n = libc::read(ep[0], e.as_mut_ptr().cast(), 4);
                if n < 0 && errno() == libc::EINTR {
                    continue;
                }
                break n;
            };
            libc::close(ep[0]);
            let (status, timed_out) = wait(pid, self.timeout_s);
            let ok = if n == 4 {
                self.cannot(m, i32::from_ne_bytes(e))
            } else if timed_out {
                m.push(b": timed out after ");
                m.num(self.timeout_s.unwrap_or(0) as u64);
                m.push(b" s (killed)");
                false
            } else if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                true
            } else if libc::WIFSIGNALED(status) {
                m.push(b": killed by signal ");
                m.num(libc::WTERMSIG(status) as u64);
                false
            } else {
                m.push(b": exit status ");
                m.num(libc::WEXITSTATUS(status) as u64);
                false
            };
            if !ok && out >= 0 {
                let mut b = [0u8; 512];
                let got = libc::pread(out, b.as_mut_ptr().cast(), b.len(), 0);
                if got > 0 {
                    m.push(b", output: ");
                    m.push(trim(&b[..got as usize]));
                }
            }
            if out >= 0 {
                libc::close(out);
            }
            ok
        }
    }

    fn cannot(&self, m: &mut Msg, e: i32) -> bool {
        m.push(b": cannot run it: ");
        m.push(errno_text(e));
        if errno_text(e) == b"errno" {
            m.push(b" ");
            m.num(e as u64);
        }
        false
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &b[..end]
}

fn environ_ptr() -> *const *const c_char {
    extern "C" {
        static environ: *const *const c_char;
    }
    // SAFETY: reading libc's environment pointer (this process's own copy).
    unsafe { environ }
}

/// Child side: waits for `pid`, killing it after `timeout_s` seconds. (raw status,
/// whether it was killed for the timeout).
fn wait(pid: i32, timeout_s: Option<u32>) -> (i32, bool) {
    let mut status = 0;
    let mut slept_us: u64 = 0;
    let mut delay_us: u64 = 50;
    let limit_us = timeout_s.map(|t| u64::from(t) * 1_000_000);
    // SAFETY: waitpid on our own child with a stack out-pointer; nanosleep; kill.
    unsafe {
        loop {
            let r = libc::waitpid(pid, &mut status, libc::WNOHANG | libc::__WALL);
            if r == pid || (r < 0 && errno() != libc::EINTR) {
                return (status, false);
            }
            if limit_us.is_some_and(|l| slept_us >= l) {
                libc::kill(pid, libc::SIGKILL);
                while libc::waitpid(pid, &mut status, libc::__WALL) < 0 && errno() == libc::EINTR {}
                return (status, true);
            }
            let ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: (delay_us * 1000) as libc::c_long,
            };
            libc::nanosleep(&ts, ptr::null_mut());
            slept_us += delay_us;
            delay_us = (delay_us * 2).min(10_000);
        }
    }
}
