//! The userland port proxy: a small process per container that accepts on the host
//! listeners gcr bound (so a taken port fails `run` itself) and relays to the container's
//! address; on a user network the same process serves the container's embedded DNS server
//! ([`crate::dns`]). TCP is relayed with splice(2) through a pipe in each direction (no copies to user
//! space); UDP by datagram with one connected socket per client. The proxy exits when the
//! process holding the container dies, so a crash cannot leave it behind.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{NetError, Proto};

/// One relay: an already-bound host socket and the container address it forwards to.
pub struct Relay {
    pub listener: OwnedFd,
    pub proto: Proto,
    pub target: SocketAddrV4,
}

const STACK: usize = 64 * 1024;
const CHUNK: usize = 1 << 20;
const UDP_IDLE: Duration = Duration::from_secs(60);

/// Detaches into the background: the caller gets the daemon's pid (the intermediate process
/// prints it on stdout and exits). Must be called while single-threaded.
pub fn daemonize() -> Result<(), NetError> {
    // SAFETY: the process is single-threaded here (documented precondition); the parent
    // only writes its child's pid and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(NetError::Os("fork".into(), io::Error::last_os_error()));
    }
    if pid > 0 {
        use std::io::Write;
        let mut out = io::stdout();
        let _ = writeln!(out, "{pid}");
        let _ = out.flush();
        // SAFETY: leaving the intermediate process without running destructors.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: setsid has no memory arguments; the daemon leaves the caller's session.
    unsafe { libc::setsid() };
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..3 {
            // SAFETY: dup2 onto this process's standard descriptors.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    Ok(())
}

/// Serves every relay, and the container's embedded DNS server when given, until `holder`
/// exits (the caller then exits: the serving threads end with the process).
pub fn serve(relays: Vec<Relay>, dns: Option<crate::dns::Resolver>, holder: i32) {
    for r in relays {
        let _ = spawn_relay(r);
    }
    if let Some(d) = dns {
        let _ = crate::dns::spawn(d);
    }
    wait_for_exit(holder);
}

/// Starts relaying `r` on a thread of its own.
pub fn spawn_relay(r: Relay) -> io::Result<()> {
    let spawn = std::thread::Builder::new().stack_size(STACK);
    match r.proto {
        Proto::Tcp => {
            // SAFETY: the descriptor is a listening TCP socket handed to us by gcr.
            let l = unsafe { TcpListener::from_raw_fd(into_raw(r.listener)) };
            spawn.spawn(move || tcp_accept(l, r.target)).map(|_| ())
        }
        Proto::Udp => {
            // SAFETY: the descriptor is a bound UDP socket handed to us by gcr.
            let s = unsafe { UdpSocket::from_raw_fd(into_raw(r.listener)) };
            spawn.spawn(move || udp_relay(s, r.target)).map(|_| ())
        }
    }
}

fn into_raw(fd: OwnedFd) -> RawFd {
    use std::os::fd::IntoRawFd;
    fd.into_raw_fd()
}

/// Blocks until process `pid` is gone.
fn wait_for_exit(pid: i32) {
    // SAFETY: pidfd_open with integer arguments; the result is checked.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if fd < 0 {
        return;
    }
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: polling one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, -1) };
        if n > 0 || (n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted) {
            return;
        }
    }
}

fn tcp_accept(l: TcpListener, target: SocketAddrV4) {
    loop {
        let Ok((client, _)) = l.accept() else {
            continue;
        };
        let _ = std::thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || tcp_conn(client, target));
    }
}

fn tcp_conn(client: TcpStream, target: SocketAddrV4) {
    let Ok(upstream) = TcpStream::connect_timeout(&SocketAddr::V4(target), Duration::from_secs(5))
    else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let back = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || pump(&u2, &c2));
    pump(&client, &upstream);
    if let Ok(h) = back {
        let _ = h.join();
    }
}

fn pipe() -> Option<(OwnedFd, OwnedFd)> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return None;
    }
    // SAFETY: pipe2 succeeded; both descriptors are fresh and ours.
    let p = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on our own pipe; a refusal keeps the default size.
    unsafe { libc::fcntl(p.1.as_raw_fd(), libc::F_SETPIPE_SZ, CHUNK as libc::c_int) };
    Some(p)
}

fn splice(from: RawFd, to: RawFd, len: usize) -> isize {
    loop {
        // SAFETY: splice between descriptors we own, with null offsets (sockets, pipes).
        let n = unsafe {
            libc::splice(
                from,
                std::ptr::null_mut(),
                to,
                std::ptr::null_mut(),
                len,
                libc::SPLICE_F_MOVE,
            )
        };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return n;
    }
}

/// Copies `from` to `to` until end of stream, then half-closes `to`.
fn pump(from: &TcpStream, to: &TcpStream) {
    if let Some((pr, pw)) = pipe() {
        'outer: loop {
            let n = splice(from.as_raw_fd(), pw.as_raw_fd(), CHUNK);
            if n <= 0 {
                break;
            }
            let mut left = n as usize;
            while left > 0 {
                let m = splice(pr.as_raw_fd(), to.as_raw_fd(), left);
                if m <= 0 {
                    break 'outer;
                }
                left -= m as usize;
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
    let _ = from.shutdown(std::net::Shutdown::Read);
}

fn udp_relay(s: UdpSocket, target: SocketAddrV4) {
    let s = Arc::new(s);
    let clients: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, from)) = s.recv_from(&mut buf) else {
            continue;
        };
        let existing = clients.lock().ok().and_then(|m| m.get(&from).cloned());
        let up = match existing {
            Some(u) => u,
            None => {
                let Ok(u) = UdpSocket::bind("0.0.0.0:0") else {
                    continue;
                };
                if u.connect(target).is_err() {
                    continue;
                }
                let _ = u.set_read_timeout(Some(UDP_IDLE));
                let u = Arc::new(u);
                if let Ok(mut m) = clients.lock() {
                    m.insert(from, u.clone());
                }
                let (u2, s2, c2) = (u.clone(), s.clone(), clients.clone());
                let _ = std::thread::Builder::new()
                    .stack_size(STACK)
                    .spawn(move || udp_back(&u2, &s2, from, &c2));
                u
            }
        };
        let _ = up.send(&buf[..n]);
    }
}

fn udp_back(
    up: &UdpSocket,
    host: &UdpSocket,
    client: SocketAddr,
    clients: &Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>,
) {
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = up.recv(&mut buf) {
        let _ = host.send_to(&buf[..n], client);
    }
    if let Ok(mut m) = clients.lock() {
        m.remove(&client);
    }
}
