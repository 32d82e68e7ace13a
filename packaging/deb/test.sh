#!/usr/bin/env bash
# `make deb-test`: the package from `make deb` installed into a fresh Debian 12 (bookworm)
# chroot with apt (Depends resolved from the mirror), then checked there:
#   - systemd-analyze verify (the chroot's systemd) accepts lbd.service and lb-slowpath.service
#   - `lbd --check` accepts the shipped /etc/lbd/lbd.toml (lbd's default --config),
#     `lb-slowpath --check` the shipped keepalived.conf
#   - no library of the binaries is missing, every DPDK plugin lbd loads is installed
#   - lbd starts from the package (net_ring ports, no hugepages): the EAL finds its plugins,
#     systemd's READY=1 arrives on $NOTIFY_SOCKET, lbctl -Ln shows the shipped service, SIGHUP
#     brings RELOADING=1 (MONOTONIC_USEC) and READY=1 with the changed keepalived.conf applied,
#     SIGTERM brings STOPPING=1 and exit 0
#   - `lbctl --help`, the man pages render without warnings and are indexed, the bash
#     completion sources and completes
# The chroot is removed on every path (trap). Needs root, mmdebstrap and the mirror.
# Environment: LBD_DEB (default: the newest target/deb/lbd_*.deb), LBD_DEB_TEST_MIRROR
# (default http://deb.debian.org/debian), LBD_DEB_TEST_TIMEOUT (seconds for the chroot
# build, default 600).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
mirror=${LBD_DEB_TEST_MIRROR:-http://deb.debian.org/debian}
security=${LBD_DEB_TEST_SECURITY:-http://deb.debian.org/debian-security}
build_timeout=${LBD_DEB_TEST_TIMEOUT:-600}
step=setup
started=$(date +%s)

fail() { echo "deb-test: FAILED at '$step': $*" >&2; exit 1; }
say() { step=$1; echo "== deb-test: $1"; }

[ "$(id -u)" = 0 ] || fail "must run as root (chroot, mounts)"
command -v python3 >/dev/null || fail "python3 not installed (the notify listener)"
command -v mmdebstrap >/dev/null || fail "mmdebstrap not installed (scripts/setup.sh installs it)"
deb=${LBD_DEB:-$(ls -t "$root"/target/deb/lbd_*.deb 2>/dev/null | head -n1)}
[ -n "$deb" ] && [ -f "$deb" ] || fail "no package: run make deb first (or set LBD_DEB)"

dir=$(mktemp -d /var/tmp/lbd-deb-test.XXXXXX)
lbd_pid=""
cleanup() {
  local rc=$?
  set +e +o pipefail
  [ -n "$lbd_pid" ] && kill -KILL "$lbd_pid" 2>/dev/null || true
  [ -n "${listener_pid:-}" ] && kill "$listener_pid" 2>/dev/null || true
  # Unmount whatever is mounted below the chroot (deepest first), then remove it without ever
  # crossing into another file system.
  findmnt -rn -o TARGET | grep -F "$dir/" | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf --one-file-system "$dir"
  if [ -e "$dir" ]; then
    echo "deb-test: could not remove $dir" >&2
    [ $rc = 0 ] && rc=1
  fi
  echo "deb-test: $([ $rc = 0 ] && echo passed || echo failed) in $(( $(date +%s) - started )) s"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_chroot() { chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root "$@"; }

say "mmdebstrap bookworm into $dir"
timeout "$build_timeout" mmdebstrap --quiet --variant=apt --include=systemd,man-db,groff-base,bash-completion \
  --dpkgopt='path-exclude=/usr/share/locale/*' --skip=cleanup/apt/lists \
  bookworm "$dir" \
  "deb $mirror bookworm main" "deb $mirror bookworm-updates main" "deb $security bookworm-security main" \
  || fail "mmdebstrap (exit $?; a timeout is 124)"

say "apt install $(basename "$deb")"
cp "$deb" "$dir/tmp/"
# apt resolves Depends from the mirror: the package lists are kept, the host's resolver lent.
cp -L /etc/resolv.conf "$dir/etc/resolv.conf"
timeout 300 chroot "$dir" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "/tmp/$(basename "$deb")" \
  > "$dir/tmp/apt.log" 2>&1 || { tail -n 30 "$dir/tmp/apt.log" >&2; fail "apt-get install of the package"; }
in_chroot dpkg-query -W -f='${Status} ${Version}\n' lbd | grep -q "install ok installed" || fail "lbd is not installed"

say "systemd-analyze verify"
out=$(in_chroot systemd-analyze verify /lib/systemd/system/lbd.service /lib/systemd/system/lb-slowpath.service 2>&1) \
  || fail "systemd-analyze verify exited non-zero: $out"
if grep -E 'lbd|lb-slowpath' <<<"$out"; then fail "systemd-analyze verify complains about the units"; fi

say "lbd --check (default config /etc/lbd/lbd.toml), lb-slowpath --check"
out=$(in_chroot lbd --check 2>&1) || fail "lbd --check refused the shipped configuration: $out"
grep -q "/etc/lbd/lbd.toml is valid" <<<"$out" || fail "lbd --check did not read /etc/lbd/lbd.toml: $out"
grep -q "services: 1" <<<"$out" || fail "the shipped keepalived.conf should hold one service: $out"
out=$(in_chroot lb-slowpath --check 2>&1) || fail "lb-slowpath --check: $out"

say "libraries and DPDK plugins"
for b in /usr/sbin/lbd /usr/sbin/lb-slowpath /usr/bin/lbctl; do
  missing=$(in_chroot ldd "$b" | grep "not found" || true)
  [ -z "$missing" ] || fail "$b: $missing"
done
for p in mempool_ring bus_vdev bus_pci net_af_packet net_af_xdp net_memif net_ring net_tap net_virtio; do
  [ -e "$dir/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0/librte_$p.so.23" ] || fail "DPDK plugin librte_$p is not installed by the Depends"
done

say "lbd runs from the package (READY=1, reload, STOPPING=1 on \$NOTIFY_SOCKET)"
mount -t proc proc "$dir/proc"
mount --rbind /sys "$dir/sys" && mount --make-rslave "$dir/sys"
mount --rbind /dev "$dir/dev" && mount --make-rslave "$dir/dev"
cat > "$dir/tmp/ring.toml" <<EOF
idle_sleep_us = 100
api_socket = "/run/lbd/lbd.sock"
services = "/tmp/services.conf"
[eal]
no_huge = true
memory_mb = 128
file_prefix = "lbd-deb-test-$$"
[[port]]
name = "wan"
vdev = "net_ring0"
addresses = ["192.0.2.1/24"]
[[port]]
name = "lan"
vdev = "net_ring1"
addresses = ["198.51.100.1/24"]
EOF
cp "$dir/etc/lbd/keepalived.conf" "$dir/tmp/services.conf"
mkdir -p "$dir/run/lbd"
# The listener (the host's python3, on a socket inside the chroot) plays systemd: it prints
# each notification it gets.
python3 - "$dir/run/notify.sock" > "$dir/tmp/notify.log" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
while True:
    try:
        m = s.recv(4096).decode()
    except socket.timeout:
        break
    print(m.replace("\n", " ").strip(), flush=True)
    if "STOPPING=1" in m:
        break
EOF
listener_pid=$!
for _ in $(seq 50); do [ -S "$dir/run/notify.sock" ] && break; sleep 0.1; done
[ -S "$dir/run/notify.sock" ] || fail "notify listener did not start"
chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin NOTIFY_SOCKET=/run/notify.sock lbd --config /tmp/ring.toml > "$dir/tmp/lbd.log" 2>&1 &
lbd_pid=$!
for _ in $(seq 300); do
  grep -q "READY=1" "$dir/tmp/notify.log" && break
  kill -0 "$lbd_pid" 2>/dev/null || { cat "$dir/tmp/lbd.log" >&2; fail "lbd exited before READY=1"; }
  sleep 0.1
done
grep -q "READY=1" "$dir/tmp/notify.log" || { cat "$dir/tmp/lbd.log" >&2; fail "no READY=1 within 30 s"; }
in_chroot lbctl -Ln > "$dir/tmp/lbctl.log" 2>&1 || { cat "$dir/tmp/lbctl.log" >&2; fail "lbctl -Ln against the packaged lbd"; }
grep -q "192.0.2.100:80" "$dir/tmp/lbctl.log" || { cat "$dir/tmp/lbctl.log" >&2; fail "lbctl -Ln does not show the shipped service"; }
# systemctl reload = SIGHUP: RELOADING=1 (with MONOTONIC_USEC) then READY=1, services re-read.
sed -i 's/198.51.100.12 80/198.51.100.13 80/' "$dir/tmp/services.conf"
kill -HUP "$lbd_pid"
for _ in $(seq 100); do [ "$(grep -c 'READY=1' "$dir/tmp/notify.log")" -ge 2 ] && break; sleep 0.1; done
grep -q "RELOADING=1 MONOTONIC_USEC=[0-9]" "$dir/tmp/notify.log" || fail "no RELOADING=1 with MONOTONIC_USEC after SIGHUP: $(cat "$dir/tmp/notify.log")"
[ "$(grep -c 'READY=1' "$dir/tmp/notify.log")" -ge 2 ] || fail "no READY=1 after the reload: $(cat "$dir/tmp/notify.log")"
in_chroot lbctl -Ln > "$dir/tmp/lbctl.log" 2>&1 || fail "lbctl -Ln after the reload"
grep -q "198.51.100.13:80" "$dir/tmp/lbctl.log" || { cat "$dir/tmp/lbctl.log" >&2; fail "the reload did not apply the changed keepalived.conf"; }
kill -TERM "$lbd_pid"
rc=0
timeout 30 tail --pid="$lbd_pid" -f /dev/null || fail "lbd did not stop within 30 s of SIGTERM"
wait "$lbd_pid" || rc=$?
lbd_pid=""
[ "$rc" = 0 ] || { cat "$dir/tmp/lbd.log" >&2; fail "lbd exited $rc after SIGTERM"; }
wait "$listener_pid" || true
listener_pid=""
grep -q "STOPPING=1" "$dir/tmp/notify.log" || fail "no STOPPING=1 after SIGTERM: $(cat "$dir/tmp/notify.log")"
umount -l "$dir/dev" "$dir/sys" "$dir/proc"

say "lbctl --help"
out=$(in_chroot lbctl --help 2>&1) || fail "lbctl --help exited non-zero"
grep -q "ipvsadm" <<<"$out" || fail "lbctl --help: $out"

say "man pages"
for page in man8/lbd.8 man8/lb-slowpath.8 man8/lbctl.8 man5/lbd.toml.5; do
  f=/usr/share/man/$page.gz
  [ -f "$dir$f" ] || fail "$f not installed"
  err=$(in_chroot sh -c "MANWIDTH=80 man --warnings -l $f 2>&1 >/dev/null") || fail "man -l $f failed: $err"
  [ -z "$err" ] || fail "man -l $f warns: $err"
done
in_chroot man -w 5 lbd.toml >/dev/null || fail "man 5 lbd.toml is not found by man (index)"
in_chroot man -w 8 lbctl >/dev/null || fail "man 8 lbctl is not found by man (index)"

say "bash completion"
got=$(in_chroot bash -c '
  source /usr/share/bash-completion/bash_completion
  source /usr/share/bash-completion/completions/lbctl
  complete -p lbctl >/dev/null || exit 3
  COMP_WORDS=(lbctl --sched); COMP_CWORD=1; _lbctl; echo "${COMPREPLY[*]}"
  COMP_WORDS=(lbctl svc ""); COMP_CWORD=2; _lbctl; echo "${COMPREPLY[*]}"' 2>&1) || fail "sourcing the completion: $got"
[ "$got" = $'--scheduler --sched-flags\nlist add edit del clear' ] || fail "unexpected completions: $got"

step=done
