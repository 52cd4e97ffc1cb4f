//! The device program in the real kernel (root only): a group made in the cgroup2
//! hierarchy (on a hybrid host the `unified` mount), containerd's default rules, and a
//! process in the group opening and making device nodes.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::super::{fs, testutil};
use super::*;

/// The cgroup2 mount point from this process's mountinfo.
fn v2_mount() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        (post.split(' ').next() == Some("cgroup2"))
            .then(|| pre.split(' ').nth(4).map(PathBuf::from))
            .flatten()
    })
}

/// A group removed on drop, whatever the test did.
struct Group(PathBuf);

impl Group {
    fn new(mount: &Path, name: &str) -> Self {
        let dir = mount.join(format!("{name}-{}", std::process::id()));
        let g = Group(dir);
        // A leftover of a killed run of this test: its processes are gone with it.
        let _ = std::fs::remove_dir(&g.0);
        std::fs::create_dir(&g.0).unwrap();
        g
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("cgroup.kill"), "1");
        let _ = fs::rmdir_cgroup(&self.0);
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn c(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// 0 when `open(path, flags)` works, else its errno.
fn try_open(path: &std::ffi::CStr, flags: i32) -> i32 {
    // SAFETY: NUL-terminated path; the descriptor is closed at once.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(255);
    }
    // SAFETY: our own fresh descriptor.
    unsafe { libc::close(fd) };
    0
}

fn try_mknod(path: &std::ffi::CStr, major: u32, minor: u32) -> i32 {
    // SAFETY: NUL-terminated path; mknod touches no memory of ours.
    let r = unsafe {
        libc::mknod(
            path.as_ptr(),
            libc::S_IFCHR | 0o600,
            libc::makedev(major, minor),
        )
    };
    if r < 0 {
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(255)
    } else {
        0
    }
}

/// What a process in `group` gets: one errno (0: it worked) per probe.
fn probe(group: &Path, tmp: &Path) -> Vec<i32> {
    let procs = std::fs::OpenOptions::new()
        .write(true)
        .open(group.join("cgroup.procs"))
        .unwrap();
    let null = c(Path::new("/dev/null"));
    let full = c(Path::new("/dev/full"));
    let mem = c(&tmp.join("mem"));
    let mem2 = c(&tmp.join("mem2"));
    let null2 = c(&tmp.join("null2"));
    let (code, out) = testutil::run_in_child(|w| {
        use std::os::fd::AsRawFd;
        // SAFETY: writing "0" (this process) to the group's cgroup.procs.
        if unsafe { libc::write(procs.as_raw_fd(), c"0".as_ptr().cast(), 1) } != 1 {
            return 3;
        }
        let results = [
            try_open(&null, libc::O_WRONLY),
            try_open(&full, libc::O_RDONLY),
            try_open(&full, libc::O_WRONLY),
            try_open(&mem, libc::O_RDONLY),
            try_mknod(&mem2, 1, 11),
            try_mknod(&null2, 1, 3),
        ];
        for r in results {
            let b = r as u8;
            // SAFETY: one byte from the stack to the report pipe.
            unsafe { libc::write(w, (&b as *const u8).cast(), 1) };
        }
        0
    });
    assert_eq!(code, 0, "the probe could not join {}", group.display());
    out.into_iter().map(i32::from).collect()
}

fn containerd_default() -> Vec<DeviceRule> {
    let mut rules = vec![DeviceRule::parse(false, "a").unwrap()];
    for r in ["1:3", "1:5", "1:8", "1:9", "5:0", "5:1", "5:2", "136:*"] {
        rules.push(DeviceRule::parse(true, &format!("c {r} rwm")).unwrap());
    }
    rules.push(DeviceRule::parse(true, "c 1:7 r").unwrap());
    rules
}

#[test]
fn the_program_holds_for_a_process_in_a_v2_group_and_update_replaces_it() {
    if !testutil::is_root_or_skip() {
        return;
    }
    let Some(mount) = v2_mount() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI host without a cgroup2 mount"
        );
        println!("skipped: no cgroup2 hierarchy mounted");
        return;
    };
    let group = Group::new(&mount, "gcr-test-devices");
    let tmp = TempDir(std::env::temp_dir().join(format!("gcr-devtest-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&tmp.0);
    std::fs::create_dir(&tmp.0).unwrap();
    // A node outside the allow list (1:11, /dev/kmsg; this kernel has no /dev/mem, 1:1),
    // made outside the group: it opens there (no nodev, a driver).
    let mem = c(&tmp.0.join("mem"));
    assert_eq!(try_mknod(&mem, 1, 11), 0);
    assert_eq!(try_open(&mem, libc::O_RDONLY), 0, "outside the group");

    apply(&group.0, &containerd_default()).unwrap();
    assert_eq!(attached_programs(&group.0).unwrap(), 1);
    let eperm = libc::EPERM;
    assert_eq!(
        probe(&group.0, &tmp.0),
        // null w, full r, full w, kmsg r, mknod 1:11, mknod 1:3
        vec![0, 0, eperm, eperm, eperm, 0],
        "containerd's default rules"
    );

    // The update: /dev/full writable too, mem still not; one program, the new one.
    let _ = std::fs::remove_file(tmp.0.join("null2"));
    let mut rules = containerd_default();
    rules.push(DeviceRule::parse(true, "c 1:7 w").unwrap());
    apply(&group.0, &rules).unwrap();
    assert_eq!(attached_programs(&group.0).unwrap(), 1);
    assert_eq!(
        probe(&group.0, &tmp.0),
        vec![0, 0, 0, eperm, eperm, 0],
        "updated"
    );

    // Allow everything: the denied node opens.
    let _ = std::fs::remove_file(tmp.0.join("null2"));
    let _ = std::fs::remove_file(tmp.0.join("mem2"));
    apply(&group.0, &[DeviceRule::parse(true, "a").unwrap()]).unwrap();
    assert_eq!(attached_programs(&group.0).unwrap(), 1);
    assert_eq!(probe(&group.0, &tmp.0), vec![0; 6], "allow all");
}
