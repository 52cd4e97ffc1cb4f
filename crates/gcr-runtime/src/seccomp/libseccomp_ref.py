#!/usr/bin/python3
"""Reference compiler for the seccomp differential test (differential.rs).

Reads gcr's profile text with its own parser (independent of compile.rs), gates the rules by
capability names, resolves syscall names with libseccomp's tables and builds the filter with
libseccomp (python3-seccomp), then writes libseccomp's BPF to a file.

    libseccomp_ref.py PROFILE TABLE < jobs

Each job line: ARCH OUT CAPS, where ARCH is x86_64 or aarch64 and CAPS a comma-separated
list of capability names without CAP_ ("-" for none). Prints one line per syscall name the
table and libseccomp disagree on ("mismatch ARCH NAME TABLE LIB"), per name libseccomp does
not know ("fallback ARCH NAME NR" when the table's number was used, which libseccomp allows
for the machine's own architecture only; "skipped ARCH NAME NR" otherwise, as libseccomp
translates numbers from the native architecture by name), and per job the number of names
libseccomp resolved ("resolved ARCH N").

Syscall numbers above the table (ENOSYS in gcr's programs) have no rule here: libseccomp
answers them with the default action, and the test expects exactly that difference.
"""

import sys

import seccomp
from seccomp import Arch, Arg, Attr, SyscallFilter

ARCHES = {"x86_64": (Arch.X86_64, 1), "aarch64": (Arch.AARCH64, 2)}
OPS = {"==": seccomp.EQ, "!=": seccomp.NE}


def number(tok):
    return int(tok, 16) if tok.startswith("0x") else int(tok)


def parse_profile(text):
    """Returns (default errno, [(gate, action, names, conds)])."""
    default, gate, rules = None, ("all", None), []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            words = line[1:-1].split()
            gate = ("all", None) if words == ["all"] else (words[0], words[1])
            continue
        toks = line.split()
        if toks[:2] == ["default", "errno"]:
            default = number(toks[2])
            continue
        if toks[0] == "allow":
            action, rest = seccomp.ALLOW, toks[1:]
        elif toks[0] == "kill":
            action, rest = seccomp.KILL_PROCESS, toks[1:]
        elif toks[0] == "errno":
            action, rest = seccomp.ERRNO(number(toks[1])), toks[2:]
        else:
            raise SystemExit(f"unknown rule {line!r}")
        names, conds = rest, []
        if "if" in rest:
            at = rest.index("if")
            names, ctoks = rest[:at], rest[at + 1 :]
            cur = []
            for t in ctoks + ["and"]:
                if t != "and":
                    cur.append(t)
                    continue
                arg = int(cur[0][3:])
                if len(cur) == 3:
                    conds.append(Arg(arg, OPS[cur[1]], number(cur[2])))
                elif len(cur) == 5 and cur[1] == "&" and cur[3] == "==":
                    conds.append(Arg(arg, seccomp.MASKED_EQ, number(cur[2]), number(cur[4])))
                else:
                    raise SystemExit(f"bad condition {' '.join(cur)!r}")
                cur = []
        rules.append((gate, action, names, conds))
    if default is None:
        raise SystemExit("profile has no default line")
    return default, rules


def parse_table(text, column):
    table = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        cols = line.split()
        table[cols[0]] = None if cols[column] == "-" else int(cols[column])
    return table


def resolve(arch, name):
    try:
        nr = seccomp.resolve_syscall(arch, name)
    except (ValueError, RuntimeError):
        return None
    # libseccomp answers negative pseudo-numbers for syscalls an architecture lacks.
    return nr if nr >= 0 else None


def build(profile, table_text, arch_name, out, caps):
    arch, column = ARCHES[arch_name]
    table = parse_table(table_text, column)
    default, rules = profile
    f = SyscallFilter(seccomp.ERRNO(default))
    if not f.exist_arch(arch):
        f.add_arch(arch)
        f.remove_arch(Arch.NATIVE)
    f.set_attr(Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
    native = seccomp.resolve_syscall(Arch.NATIVE, "read") == seccomp.resolve_syscall(arch, "read")
    resolved, fallback, skipped, mismatch = set(), set(), set(), set()
    for (kind, cap), action, names, conds in rules:
        if kind == "cap" and cap not in caps or kind == "nocap" and cap in caps:
            continue
        for name in names:
            lib = resolve(arch, name)
            ours = table.get(name)
            if lib is not None and lib != ours or lib is None and ours is not None:
                mismatch.add((name, ours, lib))
            if lib is not None:
                resolved.add(name)
                f.add_rule(action, name, *conds)
            elif ours is not None and native:
                fallback.add((name, ours))
                f.add_rule(action, ours, *conds)
            elif ours is not None:
                skipped.add((name, ours))
    with open(out, "wb") as fh:
        f.export_bpf(fh)
    for name, ours, lib in sorted(mismatch, key=str):
        print(f"mismatch {arch_name} {name} {ours} {lib}")
    for name, nr in sorted(fallback):
        print(f"fallback {arch_name} {name} {nr}")
    for name, nr in sorted(skipped):
        print(f"skipped {arch_name} {name} {nr}")
    print(f"resolved {arch_name} {len(resolved)}")


def main():
    profile_path, table_path = sys.argv[1], sys.argv[2]
    with open(profile_path) as fh:
        profile = parse_profile(fh.read())
    with open(table_path) as fh:
        table_text = fh.read()
    for line in sys.stdin:
        if not line.strip():
            continue
        arch_name, out, caps = line.split()
        caps = set() if caps == "-" else set(caps.split(","))
        build(profile, table_text, arch_name, out, caps)


if __name__ == "__main__":
    main()
