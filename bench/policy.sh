#!/usr/bin/env bash
# Policy gate bars (issue 15), same run, medians:
#   gcr run --rm --network none IMG /bin/true with a 50-rule policy (image policy with 48
#   scopes + run policy) vs the same run without policy   (bar: within 0.3 ms)
#   gcr policy check IMG, whole process                     (bar 5 ms)
source "$(dirname "$0")/lib.sh"
need_pkgs hyperfine busybox-static
build_gcr
export GCR_ROOT=$(mktemp -d /tmp/gcr-bench-policy.XXXXXX)
work=$(mktemp -d)
cleanup() {
  "$GCR" ps -aq 2>/dev/null | xargs -r "$GCR" rm -f >/dev/null 2>&1 || true
  rm -rf "$GCR_ROOT" "$work"
}
trap cleanup EXIT

mk_busybox_tar "$work/busybox.tar"
"$GCR" import "$work/busybox.tar" bench/busybox:1 >/dev/null
# 50 rules: 48 scopes in two transports plus the default, and a run policy.
python3 - "$work/policy.json" "$work/run-policy.json" <<'PY'
import json, sys
docker = {f"reg{i}.example.com/team/app{i}": [{"type": "insecureAcceptAnything"}] for i in range(24)}
gcr = {f"docker.io/other/app{i}:1": [{"type": "reject"}] for i in range(23)}
gcr["docker.io/bench/busybox"] = [{"type": "insecureAcceptAnything"}]
json.dump({"default": [{"type": "reject"}], "transports": {"docker": docker, "gcr": gcr}},
          open(sys.argv[1], "w"), indent=1)
json.dump({"registries": ["local"], "capAdd": ["NET_ADMIN"], "memory": "1g", "cpus": 2, "pids": 1000},
          open(sys.argv[2], "w"))
PY
P="--policy $work/policy.json --run-policy $work/run-policy.json"
# The run policy's ceilings give the container these limits; the run without policy gets
# them as flags, so both make the same container and the difference is the gate itself
# (cgroup limit writes are the container's cost, not the policy's). The run without
# limits is shown too.
LIMITS="--memory 1g --cpus 2 --pids-limit 1000"
sync
# Interleaved, so both see the same machine state.
hf policy-none 200 "$GCR run --rm --network none $LIMITS bench/busybox:1 /bin/true"
hf policy-50 200 "$GCR $P run --rm --network none bench/busybox:1 /bin/true"
hf policy-none-2 200 "$GCR run --rm --network none $LIMITS bench/busybox:1 /bin/true"
hf policy-nolimits 200 "$GCR run --rm --network none bench/busybox:1 /bin/true"
hf policy-check 100 "$GCR $P policy check bench/busybox:1"
NONE=$(python3 -c "print(min($(median_ms policy-none), $(median_ms policy-none-2)))")
WITH=$(median_ms policy-50)
DIFF=$(python3 -c "print('%.2f' % ($WITH - $NONE))")
OK=$(python3 -c "print('PASS' if $WITH - $NONE <= 0.3 else 'FAIL')")
report "gcr run --rm with a 50-rule policy" "$WITH" "no policy, same limits" "$NONE" "-"
report "gcr run --rm, no policy, no limits" "$(median_ms policy-nolimits)" "-" "-" "-"
echo "policy overhead on run --rm: ${DIFF} ms (bar 0.3 ms) $OK" | tee -a "$RESULTS/summary.txt"
report "gcr policy check IMG" "$(median_ms policy-check)" "-" "-" 5
