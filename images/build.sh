#!/bin/bash
# Builds the appliance disk image from Debian 12 packages and our .deb (make image; root).
#
#   images/build.sh [OUT_DIR]    (default target/image)
#
# Output: OUT_DIR/lbd-appliance.raw (GPT: an EFI system partition with systemd-boot, the kernel
# and initrd; an ext4 root labelled lbroot) and OUT_DIR/lbd-appliance.qcow2. Nothing is mounted:
# the root file system is written by mkfs.ext4 -d, the ESP by mtools.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
out=${1:-$repo/target/image}
suite=bookworm
mirror=${LB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
hugepages=${LB_IMAGE_HUGEPAGES:-256}
esp_mb=128

die() { echo "image: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (mmdebstrap root mode, device nodes in the image)"
for t in mmdebstrap mkfs.ext4 mkfs.vfat mcopy sfdisk qemu-img; do
    command -v "$t" >/dev/null || die "$t not found: run scripts/setup.sh (make image installs its tools)"
done
[ -f /usr/lib/systemd/boot/efi/systemd-bootx64.efi ] || die "systemd-boot-efi is not installed"
deb=$(ls -t "$repo"/target/deb/lbd_*.deb 2>/dev/null | head -1 || true)
[ -n "$deb" ] || die "no target/deb/lbd_*.deb: run make deb first"

work=$(mktemp -d "${TMPDIR:-/tmp}/lbd-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
start=$(date +%s)
echo "image: root file system from $suite ($mirror) with $(basename "$deb")"
# Only what the appliance runs: systemd, the kernel, sshd for the management NIC, the QEMU guest
# agent (how a hypervisor asks the appliance things), and lbd with its DPDK dependencies.
mmdebstrap --variant=apt --quiet \
    --include=systemd,systemd-sysv,udev,kmod,dbus,linux-image-amd64,iproute2,openssh-server,qemu-guest-agent,pciutils,less \
    --include="$deb" \
    --hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount \
    --customize-hook="sync-in $here/overlay /" \
    --customize-hook='chroot "$1" systemctl enable lbd-appliance.service lbd.service lb-slowpath.service systemd-networkd.service ssh.service' \
    --customize-hook='chroot "$1" systemctl disable apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer 2>/dev/null || true' \
    --customize-hook='chroot "$1" systemctl mask systemd-timesyncd.service 2>/dev/null || true' \
    --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
    --customize-hook='chroot "$1" passwd -l root' \
    "$suite" "$root" "$mirror"
# Host keys are made on first boot, per appliance: Ed25519 and ECDSA (an RSA key takes minutes
# on a slow first boot; sshd starts with the keys that exist).
mkdir -p "$root/etc/systemd/system/ssh.service.d"
cat > "$root/etc/systemd/system/ssh.service.d/hostkeys.conf" <<'UNIT'
[Service]
ExecStartPre=
ExecStartPre=/bin/sh -c 'for t in ed25519 ecdsa; do f=/etc/ssh/ssh_host_$${t}_key; [ -e $$f ] || ssh-keygen -q -t $$t -N "" -f $$f; done'
ExecStartPre=/usr/sbin/sshd -t
UNIT
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\nHostKey /etc/ssh/ssh_host_ecdsa_key\n' > "$root/etc/ssh/sshd_config.d/10-lbd-hostkeys.conf"
echo "image: root file system in $(( $(date +%s) - start )) s, $(du -sm "$root" | cut -f1) MiB"

kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -1)
initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -1)
esp=$work/esp.img
truncate -s ${esp_mb}M "$esp"
mkfs.vfat -F 32 -n LBESP "$esp" >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
mcopy -i "$esp" /usr/lib/systemd/boot/efi/systemd-bootx64.efi ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$esp" "$kernel" ::/vmlinuz
mcopy -i "$esp" "$initrd" ::/initrd.img
printf 'default lbd.conf\ntimeout 0\n' > "$work/loader.conf"
# Hugepages are reserved on the kernel command line, before memory fragments.
printf 'title lbd appliance\nlinux /vmlinuz\ninitrd /initrd.img\noptions root=LABEL=lbroot rw console=tty0 console=ttyS0,115200 hugepages=%s\n' "$hugepages" > "$work/lbd.conf"
mcopy -i "$esp" "$work/loader.conf" ::/loader/loader.conf
mcopy -i "$esp" "$work/lbd.conf" ::/loader/entries/lbd.conf

rootimg=$work/root.img
used=$(du -sm "$root" | cut -f1)
mkfs.ext4 -q -L lbroot -d "$root" "$rootimg" $((used + 512))M
root_mb=$(( $(stat -c %s "$rootimg") / 1048576 ))
mkdir -p "$out"
raw=$out/lbd-appliance.raw
rm -f "$raw"
truncate -s $((1 + esp_mb + root_mb + 1))M "$raw"
sfdisk -q "$raw" <<PT
label: gpt
start=1MiB, size=${esp_mb}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp
start=$((1 + esp_mb))MiB, size=${root_mb}MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root
PT
dd if="$esp" of="$raw" bs=1M seek=1 conv=notrunc status=none
dd if="$rootimg" of="$raw" bs=1M seek=$((1 + esp_mb)) conv=notrunc status=none
qemu-img convert -O qcow2 "$raw" "$out/lbd-appliance.qcow2"
echo "image: $raw ($(du -m --apparent-size "$raw" | cut -f1) MiB raw) and lbd-appliance.qcow2 ($(du -m "$out/lbd-appliance.qcow2" | cut -f1) MiB) in $(( $(date +%s) - start )) s"
