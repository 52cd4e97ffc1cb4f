#!/usr/bin/env bash
# Audit ledger bars (issue 16), in one run:
#   the start bar with every transition in the ledger: gcr run --rm --network none vs runc
#     (bench/run.sh's first figure, ≤ 0.27× runc; BENCH_AUDIT_RUN=0 skips it)
#   the ledger's own cost per entry: N appends to `events` with the trigger (actor + RFC 6962
#     leaf) vs the same appends with the trigger dropped, batched and one transaction each
#     (≤ 50 µs per entry)
#   `gcr audit verify` of 1,000,000 entries (≤ 5 s) and `gcr audit prove` at that size (≤ 5 ms)
#   bytes the ledger adds per entry: the 1M-entry database with the ledger's columns and
#     tables vs the same rows without them, both VACUUMed (≤ 300 bytes)
source "$(dirname "$0")/lib.sh"
need_pkgs hyperfine sqlite3
N=${BENCH_AUDIT_ENTRIES:-1000000}
GCR=${GCR:-}
[ -n "$GCR" ] || build_gcr
(cd "$REPO" && cargo build --release -q -p gcr-store --example ledger_bench >&2)
LB=${CARGO_TARGET_DIR:-$REPO/target}/release/examples/ledger_bench
work=$(mktemp -d /tmp/gcr-bench-audit.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [ "${BENCH_AUDIT_RUN:-1}" = 1 ]; then
  "$BENCH_DIR/run.sh" | grep -E "run --rm --network none|gcr run \(|runc run \(" || true
fi

# 1. append cost
"$LB" append "$work/a" "$work/b" 20000 | tee "$work/append.txt"
cost=$(awk '/^ledger_cost_per_entry_us/{print $2}' "$work/append.txt")
python3 - "$cost" <<'PY' | tee -a "$RESULTS/summary.txt"
import sys
c = float(sys.argv[1])
print(f"{'ledger append (trigger: actor + leaf), per entry':<48} {c:8.2f} us | bar 50 us {'PASS' if c <= 50 else 'FAIL'}")
PY

# 2. verify and prove at N entries
store="$work/store"
"$LB" fill "$store" "$N"
export GCR_ROOT=$store GCR_RUN_DIR=$work/run
t0=$(date +%s.%N); "$GCR" audit checkpoint >/dev/null; t1=$(date +%s.%N)
echo "first checkpoint of $N entries (tree caught up): $(python3 -c "print(f'{$t1-$t0:.2f}')") s"
sync
hf audit-verify 3 "$GCR audit verify"
hf audit-prove 50 "$GCR audit prove $((N / 2))"
"$GCR" audit verify
report "gcr audit verify ($N entries)" "$(median_ms audit-verify)" "-" "-" 5000
report "gcr audit prove $((N / 2)) ($N entries)" "$(median_ms audit-prove)" "-" "-" 5

# 3. bytes per entry: the same rows with and without the ledger, both VACUUMed.
sqlite3 "$store/gcr.db" "PRAGMA wal_checkpoint(TRUNCATE); VACUUM INTO '$work/with.db';"
sqlite3 "$store/gcr.db" "VACUUM INTO '$work/without.db';"
sqlite3 "$work/without.db" "DROP TRIGGER events_ledger; ALTER TABLE events DROP COLUMN actor;
  ALTER TABLE events DROP COLUMN leaf; ALTER TABLE events DROP COLUMN compacted;
  DROP TABLE ledger_hashes; DROP TABLE ledger_checkpoints; VACUUM;"
python3 - "$work/with.db" "$work/without.db" "$N" <<'PY' | tee -a "$RESULTS/summary.txt"
import os, sys
w, wo, n = os.path.getsize(sys.argv[1]), os.path.getsize(sys.argv[2]), int(sys.argv[3])
b = (w - wo) / n
print(f"{'ledger bytes per entry (db with vs without)':<48} {b:8.1f} B  | {w/1e6:.1f} MB vs {wo/1e6:.1f} MB | bar 300 B {'PASS' if b <= 300 else 'FAIL'}")
PY
