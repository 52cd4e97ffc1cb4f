//! Namespace selection from the spec and the `--network` choice, joining namespaces by
//! path, and bringing up `lo` in a fresh network namespace.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::Stage;
use crate::sys::{child_fail, errno};
use crate::{Network, RuntimeError};

/// Namespaces of one container start, prepared before clone.
pub(crate) struct NsPlan {
    /// CLONE_NEW* flags for clone3 (without CLONE_NEWCGROUP, see `cgroupns`).
    pub clone_flags: u64,
    /// Unshare a cgroup namespace once the child sits in its cgroup.
    pub cgroupns: bool,
    /// Namespaces to join: (fd, CLONE_NEW* type).
    pub join: Vec<(OwnedFd, i32)>,
    /// A pid namespace to start in (joined by the parent around clone, see
    /// [`NsPlan::enter_pid_for_children`]).
    pub pid_join: Option<OwnedFd>,
    /// With a new or joined user namespace: the namespaces to join (by path), joined by the parent
    /// around clone like `pid_join` (the child, already in its user namespace, has no
    /// privilege over namespaces the host's owns). Empty otherwise.
    pub parent_join: Vec<(OwnedFd, i32)>,
    /// A user namespace to join by path (see [`crate::userns`]).
    pub user_join: Option<OwnedFd>,
    pub loopback: bool,
    pub hostname: Option<CString>,
    /// `domainname` of the spec, set in a new UTS namespace.
    pub domainname: Option<CString>,
    /// A new time namespace (see [`crate::timens`]).
    pub time: Option<crate::timens::TimeNs>,
}

pub(crate) fn open_ns(path: &Path) -> Result<OwnedFd, RuntimeError> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        RuntimeError::InvalidSpec(format!(
            "namespace path {} contains a NUL byte",
            path.display()
        ))
    })?;
    // SAFETY: open on a NUL-terminated path; the result is checked and owned below.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(RuntimeError::Sys {
            what: "opening a namespace",
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: fd was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl NsPlan {
    pub(crate) fn prepare(spec: &Spec, network: Network) -> Result<NsPlan, RuntimeError> {
        let mut clone_flags = 0u64;
        let mut cgroupns = false;
        let mut join = Vec::new();
        let mut pid_join = None;
        let mut time = None;
        let mut user_join = None;
        let namespaces = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_deref())
            .unwrap_or(&[]);
        for ns in namespaces {
            let flag = match ns.typ() {
                LinuxNamespaceType::Network => continue,
                LinuxNamespaceType::Time => {
                    match ns.path() {
                        Some(p) => join.push((open_ns(p)?, libc::CLONE_NEWTIME)),
                        None => time = Some(crate::timens::TimeNs::prepare(spec)?),
                    }
                    continue;
                }
                LinuxNamespaceType::User => {
                    match ns.path() {
                        Some(p) => user_join = Some(open_ns(p)?),
                        None => clone_flags |= libc::CLONE_NEWUSER as u64,
                    }
                    continue;
                }
                t => t as i32,
            };
            match ns.path() {
                Some(p) if flag == libc::CLONE_NEWPID => pid_join = Some(open_ns(p)?),
                Some(p) => join.push((open_ns(p)?, flag)),
                None if flag == libc::CLONE_NEWCGROUP => cgroupns = true,
                None => clone_flags |= flag as u64,
            }
        }
        let mut loopback = false;
        match network {
            Network::NewLoopback => {
                clone_flags |= libc::CLONE_NEWNET as u64;
                loopback = true;
            }
            Network::Host => {}
            Network::Join(p) => join.push((open_ns(&p)?, libc::CLONE_NEWNET)),
            Network::JoinFd(fd) => join.push((fd, libc::CLONE_NEWNET)),
        }
        // In a new user namespace the child cannot join the host's namespaces itself.
        let mut parent_join = Vec::new();
        if clone_flags & libc::CLONE_NEWUSER as u64 != 0 || user_join.is_some() {
            if let Some((_, t)) = join.iter().find(|(_, t)| *t == libc::CLONE_NEWNS) {
                return Err(RuntimeError::InvalidSpec(format!(
                    "joining a mount namespace by path (type {t:#x}) with a user namespace is not supported; give the container its own mount namespace"
                )));
            }
            parent_join = std::mem::take(&mut join);
        }
        let hostname = match spec.hostname() {
            Some(h) if clone_flags & libc::CLONE_NEWUTS as u64 != 0 => {
                Some(CString::new(h.as_str()).map_err(|_| {
                    RuntimeError::InvalidSpec("the hostname contains a NUL byte".into())
                })?)
            }
            _ => None,
        };
        let domainname = match spec.domainname() {
            Some(d) if clone_flags & libc::CLONE_NEWUTS as u64 != 0 => {
                Some(CString::new(d.as_str()).map_err(|_| {
                    RuntimeError::InvalidSpec("the domainname contains a NUL byte".into())
                })?)
            }
            _ => None,
        };
        Ok(NsPlan {
            clone_flags,
            cgroupns,
            join,
            pid_join,
            parent_join,
            user_join,
            loopback,
            hostname,
            domainname,
            time,
        })
    }

    /// Parent side: when the container starts in an existing pid namespace, makes it the
    /// namespace of this thread's next children; returns this thread's own pid namespace to
    /// go back to with [`leave_pid_for_children`] once the child exists.
    /// Also the namespaces of [`NsPlan::parent_join`] (a start with a new user namespace);
    /// every entry of the result is to be left again.
    pub(crate) fn enter_pid_for_children(&self) -> Result<Vec<(OwnedFd, i32)>, RuntimeError> {
        let mut back = Vec::new();
        let all = self
            .pid_join
            .iter()
            .map(|f| (f, libc::CLONE_NEWPID))
            .chain(self.parent_join.iter().map(|(f, t)| (f, *t)));
        for (target, typ) in all {
            let own = open_ns(Path::new(&format!("/proc/thread-self/ns/{}", ns_file(typ))));
            let own = match own {
                Ok(f) => f,
                Err(e) => {
                    leave_for_children(back);
                    return Err(e);
                }
            };
            // SAFETY: setns on a descriptor we own.
            if unsafe { libc::setns(target.as_raw_fd(), typ) } != 0 {
                let source = std::io::Error::last_os_error();
                leave_for_children(back);
                return Err(RuntimeError::Sys {
                    what: "joining a namespace to share",
                    source,
                });
            }
            back.push((own, typ));
        }
        Ok(back)
    }

    pub(crate) fn keep_fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.join.iter().map(|(fd, _)| fd.as_raw_fd())
    }

    /// Child side: joins namespaces by path, sets the hostname, brings up `lo`.
    pub(crate) fn apply(&self, errfd: RawFd) {
        // SAFETY: setns/sethostname/socket/ioctl on prepared values and stack data.
        unsafe {
            for (fd, typ) in &self.join {
                if libc::setns(fd.as_raw_fd(), *typ) != 0 {
                    child_fail(errfd, Stage::Namespace as u32, errno());
                }
                libc::close(fd.as_raw_fd());
            }
            if let Some(t) = &self.time {
                t.enter(errfd);
            }
            if let Some(h) = &self.hostname {
                if libc::sethostname(h.as_ptr(), h.as_bytes().len()) != 0 {
                    child_fail(errfd, Stage::Hostname as u32, errno());
                }
            }
            if let Some(d) = &self.domainname {
                if libc::setdomainname(d.as_ptr(), d.as_bytes().len()) != 0 {
                    child_fail(errfd, Stage::Hostname as u32, errno());
                }
            }
            if self.loopback && !lo_up() {
                child_fail(errfd, Stage::Loopback as u32, errno());
            }
        }
    }
}

/// Back to this thread's own namespaces (see [`NsPlan::enter_pid_for_children`]).
pub(crate) fn leave_for_children(back: Vec<(OwnedFd, i32)>) {
    for (own, typ) in back.into_iter().rev() {
        // SAFETY: setns back to the caller's own namespace, always permitted to root.
        unsafe { libc::setns(own.as_raw_fd(), typ) };
    }
}

/// The /proc/PID/ns file name of a CLONE_NEW* type.
fn ns_file(typ: i32) -> &'static str {
    match typ {
        libc::CLONE_NEWPID => "pid",
        libc::CLONE_NEWNET => "net",
        libc::CLONE_NEWIPC => "ipc",
        libc::CLONE_NEWUTS => "uts",
        libc::CLONE_NEWCGROUP => "cgroup",
        libc::CLONE_NEWUSER => "user",
        _ => "mnt",
    }
}

/// Brings up `lo` in the calling thread's network namespace; false with errno set on failure.
/// Only system calls on stack data: safe in the child between clone and exec.
fn lo_up() -> bool {
    // SAFETY: socket/ioctl/close on a zeroed ifreq on our stack and a descriptor we own.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return false;
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        ifr.ifr_name[0] = b'l' as libc::c_char;
        ifr.ifr_name[1] = b'o' as libc::c_char;
        ifr.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        let ok = libc::ioctl(s, libc::SIOCSIFFLAGS as _, &ifr) == 0;
        let e = errno();
        libc::close(s);
        *libc::__errno_location() = e;
        ok
    }
}

/// A network namespace with only `lo` (up), being made on a helper thread so that its cost
/// (0.5-1 ms of kernel setup) overlaps the caller's own work. Pass the result to
/// [`Network::JoinFd`]; dropping it unused frees the namespace.
pub struct LoopbackNetns(std::thread::JoinHandle<Result<OwnedFd, RuntimeError>>);

impl LoopbackNetns {
    /// Starts making the namespace.
    pub fn start() -> LoopbackNetns {
        LoopbackNetns(std::thread::spawn(loopback_netns_here))
    }

    /// Waits for the namespace; an error means the caller should make one itself.
    pub fn wait(self) -> Result<OwnedFd, RuntimeError> {
        self.0.join().unwrap_or_else(|_| {
            Err(RuntimeError::Sys {
                what: "making a network namespace",
                source: std::io::Error::other("the helper thread panicked"),
            })
        })
    }
}

/// Moves the calling thread (it must be one that is about to end) into a new network
/// namespace, brings up `lo` and returns a descriptor of the namespace.
fn loopback_netns_here() -> Result<OwnedFd, RuntimeError> {
    let fail = |what| RuntimeError::Sys {
        what,
        source: std::io::Error::last_os_error(),
    };
    // SAFETY: unshare(2) changes only this thread's network namespace; the thread ends
    // right after.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(fail("unsharing a network namespace"));
    }
    if !lo_up() {
        return Err(fail("bringing up lo in a new network namespace"));
    }
    open_ns(Path::new("/proc/thread-self/ns/net"))
}
