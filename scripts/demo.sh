#!/usr/bin/env bash
# The main job: bring up a testbed (client, director running lbd, nginx backends) and show the
# director at work, then tear everything down (also on failure or Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PROFILE:-release}
tb="target/$profile/lb-testbed"
export LBD_BIN=${LBD_BIN:-$PWD/target/$profile/lbd}
name=${DEMO_NAME:-demo}
[ -x "$tb" ] || { echo "demo: $tb is not built (run make demo)" >&2; exit 1; }

cleanup() { "$tb" down --name "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
x() { printf '$ %s\n' "$*"; "$@"; }

step "Bringing up topology '$name' (client, director with lbd on af_packet, 2 nginx backends)"
"$tb" up --name "$name"
"$tb" status --name "$name"

step "The client resolves the director's address 10.70.1.1 by ARP (answered by lbd's worker lcore)"
x "$tb" exec --name "$name" client -- arping -c 3 -w 5 -I c0 10.70.1.1

step "ICMP echo to the director (answered by lbd, not the kernel)"
x "$tb" exec --name "$name" client -- ping -c 3 -i 0.3 -W 2 10.70.1.1

step "Exception path: HTTP to 10.70.1.2, an address only the kernel side of tap-wan holds"
"$tb" exec --name "$name" director -- python3 -m http.server --bind 10.70.1.2 8080 >/dev/null 2>&1 &
srv=$!
for _ in $(seq 50); do
  "$tb" exec --name "$name" director -- ss -ltn 2>/dev/null | grep -q 10.70.1.2:8080 && break
  sleep 0.1
done
x "$tb" exec --name "$name" client -- curl -sS -m 5 -o /dev/null -w 'HTTP %{http_code} from the kernel behind the TAP\n' http://10.70.1.2:8080/
kill "$srv" 2>/dev/null || true

step "lbd counters (stats.json)"
python3 - "/run/lb-testbed/$name/stats.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
t = s["totals"]
print("  rx %(rx)d  tx %(tx)d  arp_replies %(arp_replies)d  icmp_echo_replies %(icmp_echo_replies)d  "
      "to_kernel %(to_kernel)d  from_kernel %(from_kernel)d  drops %(drops_total)d" % t)
for r, n in t["drops"].items():
    if n:
        print(f"    drop {r}: {n}")
for p in s["ports"]:
    print(f"  port {p['name']} ({p['device']}, {p['mac']}): in {p['ipackets']} out {p['opackets']} imissed {p['imissed']}")
PY
step "Done; tearing down"
