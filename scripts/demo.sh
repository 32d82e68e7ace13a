#!/usr/bin/env bash
# The main job: bring up a testbed (client, director running lbd and lb-slowpath, nginx backends) and show the
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

conf=${DEMO_CONFIG:-testbed/configs/health.conf}
step "Bringing up topology '$name' from $conf (client, director with lbd on af_xdp (af_packet without AF_XDP), nginx + UDP echo backends)"
"$tb" up --name "$name" --config "$conf"   # lbd, and lb-slowpath beside it for the health checks
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

run() { "$tb" exec --name "$name" "$@"; }

step "HTTP through the VIP 10.70.1.100:80 (FNAT, rr): 10 requests from the client"
for i in $(seq 10); do
  printf '  request %2d -> %s\n' "$i" "$(run client -- curl -sS -m 5 http://10.70.1.100/)"
done

step "What the backends see: a local address (LIP) as the peer"
for rs in 10.70.2.11 10.70.2.12; do
  printf '  rs-%s access.log: %s\n' "$rs" "$(grep '"GET / ' "/run/lb-testbed/$name/rs-$rs/access.log" | tail -n 1)"
done

step "TOA: the client's address and port in TCP option 254 of the first ACK, captured on rs-10.70.2.11"
cap=$(mktemp)
run rs-10.70.2.11 -- timeout 20 tshark -l -i eth0 -f "tcp dst port 80" -T fields -e ip.src -e tcp.srcport -e tcp.options >"$cap" 2>"$cap.err" &
tpid=$!
for _ in $(seq 100); do grep -q "Capture started" "$cap.err" 2>/dev/null && break; sleep 0.1; done
sleep 1
port=$(run client -- curl -sS -m 5 -o /dev/null -w '%{local_port}' http://10.70.1.100/ || true)
port=$(run client -- curl -sS -m 5 -o /dev/null -w '%{local_port}' http://10.70.1.100/ || true)
sleep 0.5
kill -INT "$tpid" 2>/dev/null || true
wait "$tpid" 2>/dev/null || true
python3 - "$cap" "$port" <<'PY'
import sys
cap, port = sys.argv[1], int(sys.argv[2])
for line in open(cap):
    f = line.split("\t")
    opts = f[2].strip() if len(f) > 2 else ""
    i = opts.find("fe08")
    if i >= 0 and len(opts) >= i + 16:
        p = int(opts[i+4:i+8], 16)
        ip = ".".join(str(int(opts[i+8+2*k:i+10+2*k], 16)) for k in range(4))
        print(f"  segment from {f[0]}:{f[1]} carries TOA -> client {ip}:{p}" + ("  (the curl's own source port)" if p == port else ""))
        break
else:
    print("  no TOA seen in the capture")
PY
rm -f "$cap" "$cap.err"

step "UDP through the VIP 10.70.1.100:53 to the echo servers"
for i in 1 2; do
  printf '  sent hello-%d, got back: %s\n' "$i" "$(echo "hello-$i" | run client -- socat -t 2 - UDP4:10.70.1.100:53)"
done

step "wrk for 3 s through the VIP"
run client -- wrk -t 2 -c 16 -d 3s http://10.70.1.100/ | sed 's/^/  /'

step "Health checks: lb-slowpath runs keepalived's checkers beside lbd (TCP_CHECK on :80, HTTP_GET with alpha on :8080 where rs .12's url answers 404, UDP_CHECK on :53)"
x "$tb" exec --name "$name" director -- lbctl rs list

# Seconds until `lbctl -Ln` does (want=1) or does not (want=0) list 10.70.2.12:80; the demo
# stops with an error when that has not happened within 10 s.
wait_listed() {
  local want=$1 t0 now
  t0=$(date +%s.%N)
  while :; do
    if run director -- lbctl -Ln | grep -q ' 10.70.2.12:80 '; then now=1; else now=0; fi
    [ "$now" = "$want" ] && break
    python3 -c "import sys,time; sys.exit(time.time()-float(sys.argv[1]) >= 10)" "$t0" || {
      echo "demo: 10.70.2.12:80 is $([ "$now" = 1 ] && echo still || echo not) in lbctl -Ln after 10 s" >&2
      return 1
    }
    sleep 0.1
  done
  python3 -c "import sys,time; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$t0"
}

step "A backend dies: nginx and the UDP echo stop on rs-10.70.2.12"
x "$tb" backend stop --name "$name" rs-10.70.2.12
took=$(wait_listed 0)
echo "  gone from lbctl -Ln after $took s (keepalived's bound for this config: 5 s)"
grep 'rs 10.70.2.12' "/run/lb-testbed/$name/slowpath.log" | tail -n 2 | sed 's/^/  /'
for i in $(seq 6); do
  printf '  request %2d -> %s\n' "$i" "$(run client -- curl -sS -m 5 http://10.70.1.100/)"
done

step "It comes back: the backend starts again"
x "$tb" backend start --name "$name" rs-10.70.2.12
took=$(wait_listed 1)
echo "  back in lbctl -Ln after $took s (delay_loop 1 s)"
sleep 1.5   # the UDP check's next round

step "The running director through lbctl (gRPC), ipvsadm style: lbctl -Ln and lbctl -Lnc"
x "$tb" exec --name "$name" director -- lbctl -Ln
run director -- lbctl -Lnc | head -n 6 | sed 's/^/  /'

step "lbd counters (stats.json)"
python3 - "/run/lb-testbed/$name/stats.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
t = s["totals"]
print("  rx %(rx)d  tx %(tx)d  arp_replies %(arp_replies)d  icmp_echo_replies %(icmp_echo_replies)d  "
      "to_kernel %(to_kernel)d  from_kernel %(from_kernel)d  drops %(drops_total)d" % t)
print("  sessions created %(sessions_created)d (live %(sessions)d)  fnat_in %(fnat_in)d  fnat_out %(fnat_out)d  "
      "toa_inserted %(toa_inserted)d  arp_requests %(arp_requests)d" % t)
for svc in s["services"]:
    print(f"  service {svc['service']} {svc['scheduler']} -> " + ", ".join(r["addr"] for r in svc["real_servers"]))
for r, n in t["drops"].items():
    if n:
        print(f"    drop {r}: {n}")
for p in s["ports"]:
    print(f"  port {p['name']} ({p['device']}, {p['mac']}): in {p['ipackets']} out {p['opackets']} imissed {p['imissed']}")
PY
step "Done; tearing down"
