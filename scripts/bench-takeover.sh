#!/usr/bin/env bash
# VRRP takeover benchmark (make bench-takeover): a pair of our directors (lbd + lb-slowpath each)
# from testbed/configs/vrrp-dual.conf, director-1 master of VIP 1. Each round kills (or freezes)
# director-1 and measures, from the kill to the first successful curl of VIP 1 from the client,
# how long the VIP is unavailable; then director-1 comes back and preempts. Runs VRRPv2 with
# advert_int 1 and VRRPv3 with advert_int 0.1. Writes perf/results/YYYY-MM-DD-takeover.{md,json}.
# Options (environment): ROUNDS (default 5), PROFILE (default release).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PROFILE:-release}
rounds=${ROUNDS:-5}
tb="$PWD/target/$profile/lb-testbed"
export LBD_BIN=$PWD/target/$profile/lbd
[ -x "$tb" ] || { echo "bench-takeover: $tb is not built" >&2; exit 1; }
name="tko$$"
work=$(mktemp -d)
cleanup() { "$tb" down --name "$name" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
ms() { python3 -c "import sys; print(round((float(sys.argv[2]) - float(sys.argv[1])) * 1000))" "$1" "$2"; }

# Polls VIP 1 from the client until a request succeeds (at most 30 s); prints the end time.
until_served() {
  "$tb" exec --name "$name" client -- bash -c '
    end=$(( $(date +%s) + 30 ))
    until curl -s -o /dev/null --connect-timeout 0.2 -m 0.4 http://10.70.1.100/; do
      [ "$(date +%s)" -lt "$end" ] || { echo "bench-takeover: VIP 1 (10.70.1.100) not served within 30 s" >&2; exit 1; }
    done
    date +%s.%N'
}

# Waits until director-1 is master of VI_1 again (preempted back).
until_master() {
  for _ in $(seq 300); do
    if "$tb" exec --name "$name" director-1 -- lbctl -o json vrrp 2>/dev/null | python3 -c '
import json, sys
v = json.load(sys.stdin)
sys.exit(0 if any(i["name"] == "VI_1" and i["state"] == "MASTER" for i in v["instances"]) else 1)'; then
      return 0
    fi
    sleep 0.1
  done
  echo "bench-takeover: director-1 did not become master again" >&2
  return 1
}

results=()
run_variant() {
  local label=$1 conf=$2 bound_ms=$3
  "$tb" up --name "$name" --config "$conf" --directors 2 --peer-priority 120 >/dev/null
  until_master
  until_served >/dev/null
  for mode in kill freeze; do
    for r in $(seq "$rounds"); do
      t0=$(now)
      if [ "$mode" = kill ]; then "$tb" stop --name "$name" director-1 >/dev/null; else "$tb" stop --name "$name" director-1 --freeze >/dev/null; fi
      t1=$(until_served)
      took=$(ms "$t0" "$t1")
      echo "bench-takeover: $label $mode round $r: VIP 1 served again after $took ms (bound $bound_ms ms)"
      results+=("$label $mode $r $took $bound_ms")
      "$tb" start --name "$name" director-1 >/dev/null
      until_master
      sleep 2
      until_served >/dev/null
    done
  done
  "$tb" down --name "$name" >/dev/null
}

# VRRPv2, advert_int 1: bound 3 x 1 s + skew (256-120)/256 s + 1 s.
run_variant "v2 advert_int 1" testbed/configs/vrrp-dual.conf 4532
# VRRPv3, advert_int 0.1 (centiseconds): bound 3 x 0.1 s + skew (256-120)/256 x 0.1 s + 1 s.
sed -e 's/    advert_int 1/    version 3\n    advert_int 0.1/' -e '/authentication {/,/}/d' testbed/configs/vrrp-dual.conf > "$work/v3.conf"
run_variant "v3 advert_int 0.1" "$work/v3.conf" 1353

day=$(date +%F)
mkdir -p perf/results
python3 - "$day" "$(git rev-parse --short HEAD)" "${results[@]}" <<'PY'
import json, statistics, sys
day, commit, rows = sys.argv[1], sys.argv[2], [r.split() for r in sys.argv[3:]]
out = {}
for r in rows:
    label = " ".join(r[:3]); mode = r[3]; took = int(r[5]); bound = int(r[6])
    out.setdefault((label, mode), {"bound_ms": bound, "samples_ms": []})["samples_ms"].append(took)
md = [f"# VRRP takeover — {day}", "",
      f"commit {commit} · `make bench-takeover` (scripts/bench-takeover.sh) · a pair of our directors "
      "(lbd + lb-slowpath each, af_packet on veths, testbed/configs/vrrp-dual.conf, director-2 at "
      "priority 120); director-1 (priority 150) is killed (SIGKILL) or frozen (SIGSTOP); the time "
      "is from the signal to the first successful `curl` of VIP 1 from the client (polling with "
      "0.2 s connect timeouts). Bound: 3 × advert_int + skew + 1 s.", "",
      "| VRRP | failure | samples (ms) | median (ms) | max (ms) | bound (ms) |", "|---|---|---|---|---|---|"]
for (label, mode), v in out.items():
    s = v["samples_ms"]
    md.append(f"| {label} | {mode} | {', '.join(map(str, s))} | {statistics.median(s):.0f} | {max(s)} | {v['bound_ms']} |")
open(f"perf/results/{day}-takeover.md", "w").write("\n".join(md) + "\n")
json.dump({"date": day, "commit": commit, "results": [{"variant": k[0], "failure": k[1], **v} for k, v in out.items()]},
          open(f"perf/results/{day}-takeover.json", "w"), indent=2)
print("\n".join(md))
PY
