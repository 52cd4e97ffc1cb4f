//! The generated programs: instruction listings for runc's own test rule sets, and every
//! program run in a small interpreter over (type, major, minor, access) and compared with a
//! model of the kernel's v1 device controller fed the same rules.

use super::program::*;
use super::rules::*;

fn rule(line: &str) -> DeviceRule {
    let (verb, rest) = line.split_once(' ').unwrap();
    DeviceRule::parse(verb == "allow", rest).unwrap()
}

fn rules(lines: &[&str]) -> Vec<DeviceRule> {
    lines.iter().map(|l| rule(l)).collect()
}

fn asm(p: &[Insn]) -> String {
    let mut out = String::new();
    for i in p {
        let line = match i.code {
            LDX_W => format!("ldxw r{}, [r{}+{}]", i.dst, i.src, i.off),
            AND32_K => format!("and32 r{}, {}", i.dst, i.imm),
            RSH32_K => format!("rsh32 r{}, {}", i.dst, i.imm),
            MOV32_K => format!("mov32 r{}, {}", i.dst, i.imm),
            MOV32_X => format!("mov32 r{}, r{}", i.dst, i.src),
            JNE_K => format!("jne r{}, {}, +{}", i.dst, i.imm, i.off),
            JNE_X => format!("jne r{}, r{}, +{}", i.dst, i.src, i.off),
            JEQ_K => format!("jeq r{}, {}, +{}", i.dst, i.imm, i.off),
            EXIT_OP => "exit".to_string(),
            c => format!("?{c:#x}"),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

const PROLOGUE: &str = "ldxw r2, [r1+0]\nand32 r2, 65535\nldxw r3, [r1+0]\nrsh32 r3, 16\n\
                        ldxw r4, [r1+4]\nldxw r5, [r1+8]\n";

fn listing(body: &str) -> String {
    let body: String = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    format!("{PROLOGUE}{body}")
}

/// Runs `p` as the kernel would for a request; None for anything it does not know.
fn run(p: &[Insn], typ: u32, major: u32, minor: u32, access: u32) -> Option<u64> {
    let ctx = [(access << 16) | typ, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    for _ in 0..4096 {
        let i = p.get(pc)?;
        let (d, s) = (usize::from(i.dst), usize::from(i.src));
        let imm = i64::from(i.imm) as u64; // sign-extended, as the kernel does
        let jump = |taken: bool| if taken { i.off as isize } else { 0 };
        let mut off = 0isize;
        match i.code {
            LDX_W => {
                assert_eq!(s, 1, "loads only from the context");
                r[d] = u64::from(*ctx.get(usize::try_from(i.off).ok()? / 4)?);
            }
            AND32_K => r[d] = u64::from((r[d] as u32) & (imm as u32)),
            RSH32_K => r[d] = u64::from((r[d] as u32) >> (imm as u32)),
            MOV32_K => r[d] = u64::from(imm as u32),
            MOV32_X => r[d] = u64::from(r[s] as u32),
            JNE_K => off = jump(r[d] != imm),
            JNE_X => off = jump(r[d] != r[s]),
            JEQ_K => off = jump(r[d] == imm),
            EXIT_OP => return Some(r[0]),
            _ => return None,
        }
        pc = usize::try_from(pc as isize + 1 + off).ok()?;
    }
    None
}

/// The kernel's v1 device controller (security/device_cgroup.c) for one group: a default
/// behaviour and a list of exceptions, written to as devices.allow / devices.deny.
#[derive(Default)]
struct V1 {
    allow_all: bool,
    ex: Vec<(DeviceKind, Option<u32>, Option<u32>, u8)>,
}

impl V1 {
    fn write(&mut self, r: &DeviceRule) {
        if r.kind == DeviceKind::All {
            self.allow_all = r.allow;
            self.ex.clear();
            return;
        }
        let key = (r.kind, r.major, r.minor);
        let pos = self.ex.iter().position(|e| (e.0, e.1, e.2) == key);
        if r.allow != self.allow_all {
            match pos {
                Some(p) => self.ex[p].3 |= r.access,
                None => self.ex.push((r.kind, r.major, r.minor, r.access)),
            }
        } else if let Some(p) = pos {
            self.ex[p].3 &= !r.access;
            if self.ex[p].3 == 0 {
                self.ex.remove(p);
            }
        }
    }

    fn allows(&self, kind: DeviceKind, major: u32, minor: u32, access: u8) -> bool {
        let num = |e: Option<u32>, n: u32| e.is_none_or(|e| e == n);
        if self.allow_all {
            // Denied when an exception overlaps the request at all.
            !self
                .ex
                .iter()
                .any(|e| e.0 == kind && num(e.1, major) && num(e.2, minor) && e.3 & access != 0)
        } else {
            // Allowed when an exception covers the whole request.
            self.ex
                .iter()
                .any(|e| e.0 == kind && num(e.1, major) && num(e.2, minor) && access & !e.3 == 0)
        }
    }
}

/// Every request over a grid of numbers around those in `lines`, the program against v1.
fn same_as_v1(lines: &[&str]) {
    let rs = rules(lines);
    let p = generate(&Folded::new(&rs).unwrap());
    let mut v1 = V1::default();
    for r in &rs {
        v1.write(r);
    }
    for (kind, typ) in [(DeviceKind::Block, 1), (DeviceKind::Char, 2)] {
        for major in [0, 1, 5, 8, 10, 136, 4095] {
            for minor in [0, 1, 2, 3, 5, 7, 8, 9, 200, 1 << 19] {
                for access in 1..=7u8 {
                    let want = v1.allows(kind, major, minor, access);
                    let got = run(&p, typ, major, minor, u32::from(access));
                    assert_eq!(
                        got,
                        Some(u64::from(want)),
                        "{lines:?}: {kind:?} {major}:{minor} access {access}\n{}",
                        asm(&p)
                    );
                }
            }
        }
    }
}

#[test]
fn no_rules_deny_everything() {
    let p = generate(&Folded::new(&[]).unwrap());
    assert_eq!(asm(&p), listing("mov32 r0, 0\nexit"));
}

#[test]
fn runcs_builtin_allow_list() {
    // runc's TestDeviceFilter_BuiltInAllowList rules (its specconv.AllowedDevices).
    let rs = rules(&[
        "allow c *:* m",
        "allow b *:* m",
        "allow c 1:3 rwm",
        "allow c 1:8 rwm",
        "allow c 1:7 rwm",
        "allow c 5:0 rwm",
        "allow c 1:5 rwm",
        "allow c 1:9 rwm",
        "allow c 136:* rwm",
        "allow c 5:2 rwm",
        "allow c 10:200 rwm",
    ]);
    let p = generate(&Folded::new(&rs).unwrap());
    let mut want = String::new();
    for t in [1, 2] {
        // (b|c, *, *, m)
        want += &format!(
            "jne r2, {t}, +5\nmov32 r1, r3\nand32 r1, 1\njne r1, r3, +2\nmov32 r0, 1\nexit\n"
        );
    }
    for (ma, mi) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 2),
        (10, 200),
    ] {
        want += &format!("jne r2, 2, +4\njne r4, {ma}, +3\njne r5, {mi}, +2\nmov32 r0, 1\nexit\n");
    }
    want += "jne r2, 2, +3\njne r4, 136, +2\nmov32 r0, 1\nexit\nmov32 r0, 0\nexit\n";
    assert_eq!(asm(&p), listing(&want));
}

#[test]
fn runcs_privileged() {
    let p = generate(&Folded::new(&rules(&["allow a"])).unwrap());
    assert_eq!(asm(&p), listing("mov32 r0, 1\nexit"));
}

#[test]
fn runcs_privileged_except_single_device() {
    let p = generate(&Folded::new(&rules(&["allow a", "deny b 8:0 rwm"])).unwrap());
    let want = "jne r2, 1, +4\njne r4, 8, +3\njne r5, 0, +2\nmov32 r0, 0\nexit\nmov32 r0, 1\nexit";
    assert_eq!(asm(&p), listing(want));
}

#[test]
fn runcs_weird() {
    // 8:1 allowed (the `a` rule after it wipes it), 8:2 denied, as runc on v1.
    let rs = rules(&["deny b 8:1 rwm", "allow a", "deny b 8:2 rwm"]);
    let p = generate(&Folded::new(&rs).unwrap());
    let want = "jne r2, 1, +4\njne r4, 8, +3\njne r5, 2, +2\nmov32 r0, 0\nexit\nmov32 r0, 1\nexit";
    assert_eq!(asm(&p), listing(want));
    assert_eq!(run(&p, 1, 8, 1, 2), Some(1));
    assert_eq!(run(&p, 1, 8, 2, 2), Some(0));
}

#[test]
fn containerd_default_matches_v1() {
    same_as_v1(&[
        "deny a",
        "allow c 1:3 rwm",
        "allow c 1:5 rwm",
        "allow c 1:8 rwm",
        "allow c 1:9 rwm",
        "allow c 5:0 rwm",
        "allow c 5:1 rwm",
        "allow c 5:2 rwm",
        "allow c 136:* rwm",
        "allow c 1:7 r",
    ]);
}

#[test]
fn assorted_rule_sets_match_v1() {
    for set in [
        &["allow a"][..],
        &["deny a"],
        &[],
        &["allow a", "deny c 1:3 w"],
        &["allow a", "deny c 1:* rw", "deny b *:* m"],
        &["allow a", "deny c *:5 r", "allow c *:5 r"],
        &["deny a", "allow c 1:3 r", "allow c 1:3 w", "allow c 1:* m"],
        &[
            "deny a",
            "allow c *:* m",
            "allow b *:* m",
            "allow c 10:200 rwm",
        ],
        &["deny a", "allow c 1:3 rwm", "deny c 1:3 w"],
        &["deny a", "allow c 1:3 rw", "allow b 8:0 r", "deny b 8:0 r"],
        &["deny c 1:1 rwm", "allow c 1:9 rwm"],
        &[
            "allow b 8:* rwm",
            "deny a",
            "allow c 136:* rw",
            "allow c 5:2 rwm",
        ],
    ] {
        same_as_v1(set);
    }
}

#[test]
fn a_partial_request_passes_no_deny_exception() {
    // Allow all but writes to 1:3: reading and writing at once is denied (v1 semantics;
    // runc's program would let it through).
    let p = generate(&Folded::new(&rules(&["allow a", "deny c 1:3 w"])).unwrap());
    assert_eq!(run(&p, 2, 1, 3, u32::from(ACC_READ | ACC_WRITE)), Some(0));
    assert_eq!(run(&p, 2, 1, 3, u32::from(ACC_READ)), Some(1));
}

#[test]
fn holes_in_wildcards_are_refused() {
    for set in [
        &["deny a", "allow c 1:* rw", "deny c 1:3 r"][..],
        &["allow a", "deny c *:* m", "allow c 1:3 m"],
        &["deny a", "allow c *:3 rwm", "deny c 1:3 w"],
    ] {
        let err = Folded::new(&rules(set)).unwrap_err().to_string();
        assert!(err.contains("wildcard"), "{set:?}: {err}");
    }
    // Taking away what the wildcard does not give is fine.
    Folded::new(&rules(&["deny a", "allow c 1:* r", "deny c 1:3 w"])).unwrap();
}

#[test]
fn bad_rules_are_errors() {
    for (allow, line) in [
        (true, "x 1:3 rwm"),
        (true, "c 1:3 rwx"),
        (true, "c 1-3 rwm"),
        (true, "c"),
        (true, "c 1:3 rwm extra"),
        (true, "c 99999999999:1 r"),
    ] {
        assert!(DeviceRule::parse(allow, line).is_err(), "{line}");
    }
    let oci: oci_spec::runtime::LinuxDeviceCgroup = serde_json::from_value(
        serde_json::json!({"allow": true, "type": "c", "major": 5_000_000_000_i64, "access": "r"}),
    )
    .unwrap();
    assert!(DeviceRule::from_oci(&oci).is_err());
    let oci: oci_spec::runtime::LinuxDeviceCgroup =
        serde_json::from_value(serde_json::json!({"allow": false, "access": "rwm"})).unwrap();
    let r = DeviceRule::from_oci(&oci).unwrap();
    assert_eq!(
        (r.kind, r.allow, r.access),
        (DeviceKind::All, false, ACC_ALL)
    );
}

#[test]
fn numbers_beyond_i32_match_nothing() {
    let p = generate(&Folded::new(&rules(&["deny a", "allow c 3000000000:1 rwm"])).unwrap());
    assert_eq!(asm(&p), listing("mov32 r0, 0\nexit"));
}

#[test]
fn encoding_is_struct_bpf_insn() {
    let p = [Insn {
        code: JNE_X,
        dst: 1,
        src: 3,
        off: 2,
        imm: -1,
    }];
    let b = encode(&p)[0].to_ne_bytes();
    assert_eq!(b[0], 0x5d);
    if cfg!(target_endian = "little") {
        assert_eq!(b[1], 0x31);
        assert_eq!(&b[2..], &[2, 0, 0xff, 0xff, 0xff, 0xff]);
    }
}
