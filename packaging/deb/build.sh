#!/usr/bin/env bash
# Builds the `lbd` Debian package into target/deb/ (`make deb`): release builds of lbd,
# lb-slowpath and lbctl, the systemd units and example configuration from packaging/, man
# pages and lbctl's bash completion generated from the sources (packaging/gen), Depends from
# dpkg-shlibdeps plus the DPDK plugins lbd loads at run time. Deterministic for a given commit
# and toolchain: timestamps are the commit's (SOURCE_DATE_EPOCH), gzip -n, root:root owners.
#
# Environment: CARGO (default cargo), LBD_DEB_VERSION (default: the workspace version plus
# +git<commits>.<hash>), LBD_DEB_MAINTAINER.
set -euo pipefail
umask 022

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
CARGO=${CARGO:-cargo}
pkg=lbd
out=target/deb
stage=$out/stage
pmd_dir=/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0
# DPDK plugins lbd needs at run time: the EAL dlopens them from $pmd_dir, so dpkg-shlibdeps
# cannot see them. mempool_ring: the mbuf pool's default ops; bus_vdev / bus_pci: the buses of
# vdev and PCI ports; net_tap / net_virtio: the exception path (TAP, virtio-user) and virtio
# NICs; net_af_packet, net_af_xdp, net_memif, net_ring: the vdev port drivers.
pmds=(mempool_ring bus_vdev bus_pci net_af_packet net_af_xdp net_memif net_ring net_tap net_virtio)

die() { echo "packaging/deb/build.sh: $*" >&2; exit 1; }
for tool in dpkg-deb dpkg-shlibdeps gzip strip; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install dpkg-dev binutils)"
done

ws_version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
[ -n "$ws_version" ] || die "no version in Cargo.toml's [workspace.package]"
if [ -n "${LBD_DEB_VERSION:-}" ]; then
  version=$LBD_DEB_VERSION
elif git rev-parse --git-dir >/dev/null 2>&1; then
  version="$ws_version+git$(git rev-list --count HEAD).$(git rev-parse --short=9 HEAD)"
else
  version=$ws_version
fi
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
arch=$(dpkg --print-architecture)

echo "== cargo build --release (lbd, lb-slowpath, lbctl, lb-gen-docs)"
$CARGO build --release -p lbd -p lb-slowpath -p lbctl -p lb-packaging
rel=target/release

rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$stage/usr/sbin" "$stage/usr/bin" "$stage/lib/systemd/system" \
  "$stage/etc/lbd" "$stage/usr/share/man/man5" "$stage/usr/share/man/man8" \
  "$stage/usr/share/bash-completion/completions" "$stage/usr/share/doc/$pkg"

# Binaries without their debug sections (the release profile keeps line tables), symbols kept.
for b in lbd lb-slowpath; do strip --strip-debug -o "$stage/usr/sbin/$b" "$rel/$b"; done
strip --strip-debug -o "$stage/usr/bin/lbctl" "$rel/lbctl"
chmod 0755 "$stage"/usr/sbin/* "$stage/usr/bin/lbctl"

install -m 0644 packaging/systemd/lbd.service packaging/systemd/lb-slowpath.service "$stage/lib/systemd/system/"
# 0640: lbd.toml may hold api_token.
install -m 0640 packaging/etc/lbd.toml packaging/etc/keepalived.conf "$stage/etc/lbd/"

gen=$out/gen
rm -rf "$gen"
"$rel/lb-gen-docs" "$gen" >/dev/null
for page in "$gen"/man5/*.5; do gzip -9n -c "$page" > "$stage/usr/share/man/man5/$(basename "$page").gz"; done
for page in "$gen"/man8/*.8; do gzip -9n -c "$page" > "$stage/usr/share/man/man8/$(basename "$page").gz"; done
install -m 0644 "$gen/completions/lbctl" "$stage/usr/share/bash-completion/completions/lbctl"
install -m 0644 packaging/deb/copyright "$stage/usr/share/doc/$pkg/copyright"

for s in postinst prerm postrm; do install -m 0755 "packaging/deb/$s" "$stage/DEBIAN/$s"; done
printf '/etc/lbd/lbd.toml\n/etc/lbd/keepalived.conf\n' > "$stage/DEBIAN/conffiles"

# Depends: the shared libraries the binaries link (dpkg-shlibdeps wants a debian/control).
shl=$out/shlibdeps
rm -rf "$shl"
mkdir -p "$shl/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$pkg" "$pkg" > "$shl/debian/control"
bins=("$root/$stage/usr/sbin/lbd" "$root/$stage/usr/sbin/lb-slowpath" "$root/$stage/usr/bin/lbctl")
shlibs=$(cd "$shl" && dpkg-shlibdeps -O "${bins[@]}" 2>&1 | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || die "dpkg-shlibdeps gave no dependencies"
# ... and the DPDK plugins, by the package that ships each (the one installed here).
plugins=()
for p in "${pmds[@]}"; do
  f=$pmd_dir/librte_$p.so.23
  owner=$(dpkg -S "$f" 2>/dev/null | cut -d: -f1) || true
  [ -n "$owner" ] || die "no installed package ships $f (apt-get install dpdk)"
  plugins+=("$owner (>= $(dpkg-query -W -f='${Version}' "$owner" | sed 's/^\([0-9]*\.[0-9]*\).*/\1/'))")
done
# procps: /bin/kill, the units' ExecReload.
depends="$shlibs, $(IFS=,; echo "${plugins[*]}" | sed 's/,/, /g'), procps"

installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<EOF
Package: $pkg
Version: $version
Architecture: $arch
Maintainer: ${LBD_DEB_MAINTAINER:-lbd maintainers <root@localhost>}
Installed-Size: $installed_size
Depends: $depends
Suggests: dpdk, librte-meta-net
Section: net
Priority: optional
Description: DPDK L4 load-balancer director (LVS/keepalived compatible)
 lbd forwards client connections to real servers in FULLNAT, NAT or DR mode
 from poll-mode DPDK workers: schedulers rr, wrr, lc, wlc, sh, dh, consh and
 Maglev, persistence, flow control, client lists, SYN proxy and LVS session
 sync. Services come from keepalived.conf.
 .
 This package holds lbd (the data plane daemon), lb-slowpath (keepalived's
 health checks and VRRP beside it) and lbctl (ipvsadm-style control), with
 their systemd units and an example configuration in /etc/lbd.
EOF

# Every file and directory dated by the commit, so two builds of one commit are identical.
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$out"
deb=$out/${pkg}_${version}_${arch}.deb
rm -f "$out/${pkg}"_*.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "== $deb"
dpkg-deb --field "$deb" Version Depends | sed 's/^/   /'
