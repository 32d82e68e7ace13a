#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian 12 machine, as root. Idempotent:
# a second run installs nothing. Options:
#   --hugepages N   also reserve N 2 MiB hugepages and mount hugetlbfs (benchmarks)
#   --bench         also install what `make bench` needs beyond the tests (python3-matplotlib)
#   --image         also install what `make image` and `make image-test` need (mmdebstrap,
#                   qemu, OVMF, systemd-boot, mtools)
# Everything else also runs with --no-huge, so tests never need hugepages.
set -euo pipefail

hugepages=""
bench=""
image=""
while [ $# -gt 0 ]; do
  case "$1" in
    --hugepages) hugepages="${2:?--hugepages needs a count}"; shift 2 ;;
    --bench) bench=1; shift ;;
    --image) image=1; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: must run as root (it installs packages and builds network namespaces)" >&2
  exit 1
fi

pkgs=(
  # DPDK 22.11 and what the bindings build needs
  dpdk libdpdk-dev dpdk-dev libclang-dev clang pkg-config build-essential
  # gRPC/protobuf code generation (control plane)
  protobuf-compiler
  # testbed: namespaces, real clients, servers and peers
  iproute2 ethtool iputils-ping arping tcpdump tshark nginx-light curl wrk keepalived
  python3 socat netcat-openbsd procps psmisc
  # SYN-proxy e2e test: spoofed SYN floods from the client namespace
  hping3
  # promtool (Debian ships it in prometheus): the metrics test lints a real scrape with it
  prometheus
  # make deb / deb-test: dpkg-shlibdeps, strip, a fresh Debian 12 chroot
  dpkg-dev binutils mmdebstrap
)
if [ -n "$bench" ]; then
  # perf/plot.py draws the benchmark PNGs with Debian's matplotlib (for /usr/bin/python3).
  pkgs+=(python3-matplotlib)
fi
if [ -n "$image" ]; then
  # The appliance image: built from Debian's packages with mmdebstrap, an EFI system partition
  # written with mtools (nothing is mounted), booted in qemu with OVMF and systemd-boot.
  pkgs+=(mmdebstrap qemu-system-x86 ovmf systemd-boot-efi dosfstools mtools fdisk e2fsprogs openssh-client)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -q
  extra=()
  if [[ " ${missing[*]} " == *" qemu-system-x86 "* ]]; then
    # Some machines carry a newer qemu-utils (backports) that Debian 12's qemu-system-x86
    # cannot sit beside: take both at Debian 12's version.
    qv=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ {print $2}')
    extra=(--allow-downgrades "qemu-utils=$qv")
  fi
  # Only promtool is wanted from prometheus: its server is not started by the install.
  no_start=""
  if [[ " ${missing[*]} " == *" prometheus "* ]] && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && no_start=1
  fi
  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}" "${extra[@]}" || { [ -z "$no_start" ] || rm -f /usr/sbin/policy-rc.d; exit 1; }
  if [ -n "$no_start" ]; then
    rm -f /usr/sbin/policy-rc.d
    systemctl disable prometheus >/dev/null 2>&1 || true
  fi
fi

# Rust: rustup's stable toolchain in ~/.cargo when there is none or it is older than the
# workspace's rust-version (Debian 12's rustc is 1.63; the locked dependencies need 1.88).
# The Makefile and .ci/run put ~/.cargo/bin on PATH, ahead of any other rustc.
export PATH="$HOME/.cargo/bin:$PATH"
rust_need=$(sed -n 's/^rust-version *= *"1\.\([0-9][0-9]*\)[."].*/\1/p' "$(dirname "$0")/../Cargo.toml" | head -n1)
if [ -z "$rust_need" ]; then
  echo "setup.sh: no rust-version = \"1.N\" in the workspace's Cargo.toml" >&2
  exit 1
fi
rust_minor() { { rustc --version 2>/dev/null || true; } | sed -n 's/^rustc 1\.\([0-9]*\).*/\1/p'; }
rust_ok() { local m; m=$(rust_minor); [ -n "$m" ] && [ "$m" -ge "$rust_need" ] && command -v cargo >/dev/null 2>&1; }
if ! rust_ok; then
  echo "setup.sh: $(rustc --version 2>/dev/null || echo 'no rustc') found, the workspace needs 1.$rust_need: installing rustup's stable toolchain"
  if command -v rustup >/dev/null 2>&1; then
    rustup toolchain install stable --profile minimal
    rustup default stable
  else
    # rustup-init acts by the name it is run as: keep the file's name.
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    curl --proto '=https' --tlsv1.2 -sSfL --retry 3 -o "$tmp/rustup-init" \
      "https://static.rust-lang.org/rustup/dist/$(uname -m)-unknown-linux-gnu/rustup-init"
    chmod +x "$tmp/rustup-init"
    "$tmp/rustup-init" -y -q --no-modify-path --profile minimal --default-toolchain stable
    rm -rf "$tmp"
    trap - EXIT
  fi
  hash -r
fi
if ! rust_ok; then
  echo "setup.sh: still no cargo with rustc 1.$rust_need or newer: found $(command -v rustc || echo 'no rustc') ($(rustc --version 2>/dev/null || echo '-')), cargo: $(command -v cargo || echo 'none'). Does RUSTUP_TOOLCHAIN, a rust-toolchain file or \`rustup override list\` pin an older one?" >&2
  exit 1
fi

# Services must never start on their own here: the testbed starts its own instances.
for svc in nginx keepalived; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done

if [ -n "$hugepages" ]; then
  mkdir -p /dev/hugepages
  mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages
  echo "$hugepages" > /proc/sys/vm/nr_hugepages
  echo "setup.sh: hugepages: $(cat /proc/sys/vm/nr_hugepages) x 2 MiB"
fi

pkg-config --modversion libdpdk >/dev/null
echo "setup.sh: ready (DPDK $(pkg-config --modversion libdpdk), $(cargo --version))"
