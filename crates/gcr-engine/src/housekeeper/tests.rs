//! The housekeeper's socket, its checks and its messages, against a real server.

use super::*;
use std::os::fd::FromRawFd;

fn root_or_skip(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "{test}: needs root, and skipping is not allowed when CI=true"
    );
    eprintln!("skipped {test}: needs root");
    false
}

/// Serves `server` on a thread while `f` runs; the thread stops even when `f` panics.
fn serving(mut server: Server, f: impl FnOnce()) {
    use std::sync::atomic::{AtomicBool, Ordering};
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                let mut fds = server.poll_fds();
                // SAFETY: poll on a vector of pollfds we own, with its length.
                if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 10) } > 0 {
                    server.serve(&fds, None);
                }
            }
        });
        let _stop = Stop(&done);
        f();
    });
}

fn ns_inode(fd: BorrowedFd<'_>) -> u64 {
    rustix::fs::fstat(fd).unwrap().st_ino
}

/// A store root and a run dir, both temporary.
fn dirs() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let (root, run) = (t.path().join("root"), t.path().join("run"));
    std::fs::create_dir_all(&root).unwrap();
    (t, root, run)
}

/// Runs `f` in a forked child and returns its exit code.
fn in_child(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child only runs `f` (system calls and small allocations) and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        let code = f();
        // SAFETY: leaving the forked child without running the test's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    libc::WEXITSTATUS(status)
}

impl Client {
    /// A round trip: true when the housekeeper answered.
    fn ping(&self) -> bool {
        self.send(&Request::Ping, &[])
            .and_then(|seq| self.answer(seq))
            .is_some_and(|(a, _)| matches!(a, Answer::Pong))
    }
}

#[test]
fn serves_fresh_network_namespaces_and_holds_only_mount_namespaces() {
    if !root_or_skip("serves_fresh_network_namespaces_and_holds_only_mount_namespaces") {
        return;
    }
    let (_t, root, run) = dirs();
    let server = Server::bind(&root, &run).expect("bind");
    assert!(
        Server::bind(&root, &run).is_none(),
        "a second housekeeper of the same store must not listen"
    );
    serving(server, || {
        let ours = std::fs::File::open("/proc/self/ns/net").unwrap();
        let mut seen = Vec::new();
        for _ in 0..2 {
            // A client waits 5 ms for its namespace and goes without (its start makes one);
            // on a loaded machine the first tries may miss.
            let ns = (0..400)
                .find_map(|_| {
                    let c = Client::connect(&root, &run, true).expect("connect");
                    c.netns().or_else(|| {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        None
                    })
                })
                .expect("a namespace");
            let ino = ns_inode(ns.as_fd());
            assert_ne!(ino, ns_inode(ours.as_fd()), "not the host's namespace");
            assert!(!seen.contains(&ino), "each namespace is handed out once");
            seen.push(ino);
        }
        // A client that did not ask gets nothing.
        let c = Client::connect(&root, &run, false).expect("connect");
        assert!(c.netns().is_none());
        // Anything but a mount namespace is not held: the pipe's write end goes at once.
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills a two-element array.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: pipe2 returned two fresh descriptors that we now own.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        assert!(c.hold(&[w.as_fd()]));
        drop(w);
        assert!(c.ping());
        assert!(wire::poll_in(r.as_fd(), 2000), "a pipe was held");
    });
}

#[test]
fn the_socket_is_a_file_in_a_private_directory_never_abstract() {
    if !root_or_skip("the_socket_is_a_file_in_a_private_directory_never_abstract") {
        return;
    }
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let (_t, root, run) = dirs();
    let server = Server::bind(&root, &run).expect("bind");
    let path = wire::socket_path(&root, &run, false).expect("path");
    let md = std::fs::symlink_metadata(&path).unwrap();
    assert!(md.file_type().is_socket());
    let dir = std::fs::symlink_metadata(path.parent().unwrap()).unwrap();
    assert_eq!(
        dir.mode() & 0o777,
        0o700,
        "the socket's directory is root-only"
    );
    let unix = std::fs::read_to_string("/proc/net/unix").unwrap();
    assert!(
        !unix.lines().any(|l| l.contains("@gcr")),
        "an abstract gcr socket is listening:\n{unix}"
    );
    drop(server);
    assert!(
        !path.exists(),
        "the socket is removed when the housekeeper stops"
    );
    assert!(!path.parent().unwrap().exists(), "its empty directory too");
    // A run dir whose socket directory others can enter is closed before use.
    std::fs::create_dir(path.parent().unwrap()).unwrap();
    std::fs::set_permissions(
        path.parent().unwrap(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let again = Server::bind(&root, &run).expect("bind");
    let dir = std::fs::symlink_metadata(path.parent().unwrap()).unwrap();
    assert_eq!(dir.mode() & 0o777, 0o700);
    drop(again);
}

#[test]
fn other_users_and_other_mount_namespaces_are_refused() {
    if !root_or_skip("other_users_and_other_mount_namespaces_are_refused") {
        return;
    }
    let (_t, root, run) = dirs();
    let server = Server::bind(&root, &run).expect("bind");
    serving(server, || {
        assert!(Client::connect(&root, &run, false).expect("connect").ping());
        // 1 = connected and answered, 0 = refused.
        let nobody = in_child(|| {
            // SAFETY: plain set*id calls in the child.
            unsafe {
                libc::setgroups(0, std::ptr::null());
                libc::setgid(65534);
                libc::setuid(65534);
            }
            Client::connect(&root, &run, false).is_some_and(|c| c.ping()) as i32
        });
        assert_eq!(nobody, 0, "a non-root process was served");
        let other_ns = in_child(|| {
            // SAFETY: unshare in the child; its mounts are copied, the socket stays
            // reachable by path, and only the credentials check stands in the way.
            if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
                return 2;
            }
            Client::connect(&root, &run, false).is_some_and(|c| c.ping()) as i32
        });
        assert_eq!(
            other_ns, 0,
            "a process in another mount namespace was served"
        );
    });
}

#[test]
fn an_oversized_or_malformed_message_is_refused_and_changes_nothing() {
    if !root_or_skip("an_oversized_or_malformed_message_is_refused_and_changes_nothing") {
        return;
    }
    let (_t, root, run) = dirs();
    let server = Server::bind(&root, &run).expect("bind");
    serving(server, || {
        let c = Client::connect(&root, &run, false).expect("connect");
        for body in [vec![b'x'; wire::MAX_BODY + 4096], b"{not json".to_vec()] {
            rustix::net::send(&c.fd, &body, rustix::net::SendFlags::DONTWAIT).expect("send");
            assert!(wire::poll_in(c.fd.as_fd(), 2000), "no answer");
            match wire::recv::<Answer>(c.fd.as_fd()) {
                Recv::Msg(
                    Envelope {
                        seq: 0,
                        msg: Answer::Refused(why),
                        ..
                    },
                    _,
                ) => {
                    assert!(!why.is_empty())
                }
                _ => panic!("not refused"),
            }
        }
        // The connection is still served: a size error is not a hang-up.
        assert!(c.ping());
    });
}

#[test]
fn stale_sockets_go_live_ones_stay() {
    if !root_or_skip("stale_sockets_go_live_ones_stay") {
        return;
    }
    let (_t, root, run) = dirs();
    let server = Server::bind(&root, &run).expect("bind");
    let live = wire::socket_path(&root, &run, false).unwrap();
    let dead = live.with_file_name("0000-p3.sock");
    std::fs::write(&dead, "").unwrap();
    std::fs::write(dead.with_extension("lock"), "").unwrap();
    remove_stale_sockets(&run);
    assert!(live.exists(), "a live housekeeper's socket was removed");
    assert!(!dead.exists() && !dead.with_extension("lock").exists());
    // The dead one's files are gone: the live one removes its own and the directory.
    drop(server);
    assert!(
        !run.join("housekeeper").exists(),
        "the empty directory stays"
    );
}

#[test]
fn no_housekeeper_means_no_connection() {
    let (_t, root, run) = dirs();
    assert!(Client::connect(&root, &run, true).is_none());
}

#[test]
fn what_runs_sent_is_answered_before_the_housekeeper_stops() {
    if !root_or_skip("what_runs_sent_is_answered_before_the_housekeeper_stops") {
        return;
    }
    let (_t, root, run) = dirs();
    let mut server = Server::bind(&root, &run).expect("bind");
    let c = Client::connect(&root, &run, false).expect("connect");
    // Accepted while serving...
    let mut fds = server.poll_fds();
    // SAFETY: poll on a vector of pollfds we own, with its length.
    assert!(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 2000) } > 0);
    server.serve(&fds, None);
    // ...then a message arrives as the housekeeper is about to stop: it is answered.
    let seq = c.send(&Request::Ping, &[]).expect("send");
    drop(server.drain(None));
    drop(server);
    assert!(
        c.answer(seq)
            .is_some_and(|(a, _)| matches!(a, Answer::Pong)),
        "a message waiting when the housekeeper stopped was dropped"
    );
}
