# Two entry points do everything on a fresh Debian 12 machine (as root):
#   make demo   - installs what is needed, builds, brings up a testbed and shows the director
#   make test   - installs what is needed, builds, runs every test (unit, DPDK, netns end-to-end)
SHELL := /bin/bash
CARGO ?= cargo
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: all setup build build-release test unit-test e2e-test demo deb deb-test image image-test bench bench-health bench-takeover bench-sync bench-synflood clippy fmt clean

all: build

setup:
	scripts/setup.sh

build: setup
	$(CARGO) build --workspace --bins

build-release: setup
	$(CARGO) build --workspace --release --bins

# Unit and DPDK-wrapper tests first, then the namespace end-to-end tests one at a time
# (each builds its own uniquely named topology; on 2 vCPUs one at a time keeps them steady),
# then the Debian package in a fresh chroot (deb-test: the release build, about 3 minutes on
# 2 vCPUs when only lbd's crates changed, then 35-70 s in the chroot), then the appliance image
# booted in qemu (image-test: about 2 minutes to build, 2 to boot and check under TCG).
test: build
	$(CARGO) test --workspace --exclude lb-testbed
	LBD_BIN=$(CURDIR)/target/debug/lbd LBCTL_BIN=$(CURDIR)/target/debug/lbctl $(CARGO) test -p lb-testbed -- --test-threads=1
	$(MAKE) deb-test
	$(MAKE) image-test

demo: build-release
	LBD_BIN=$(CURDIR)/target/release/lbd scripts/demo.sh

# Debian package into target/deb/ (packaging/deb/build.sh): release builds of lbd, lb-slowpath
# and lbctl, systemd units, /etc/lbd examples, man pages and bash completion generated from the
# sources, Depends from dpkg-shlibdeps plus the DPDK plugins. Install: apt install ./target/deb/lbd_*.deb
deb: setup
	packaging/deb/build.sh

# The package installed with apt into a fresh Debian 12 chroot (mmdebstrap) and checked there:
# systemd-analyze verify, lbd --check of the shipped config, lbd started from the package
# (READY=1/STOPPING=1), lbctl, man pages, bash completion (packaging/deb/test.sh).
deb-test: deb
	packaging/deb/test.sh

# The appliance disk image (images/build.sh, as root): Debian 12 from Debian's packages with
# mmdebstrap plus the package above, EFI (systemd-boot), hugepages reserved at boot, data NICs
# handed to DPDK (uio_pci_generic), virtio-user exception path, management NIC by DHCP. Writes
# target/image/lbd-appliance.{raw,qcow2}.
image: deb
	scripts/setup.sh --image
	images/build.sh

# Boots the image in qemu (KVM when a kernel boots under it, else TCG) between a client and two
# nginx backends and checks it end to end (images/test.sh): ready, virtio-user exception path,
# curl to both backends, sshd through the exception path, lbctl -Ln, systemctl reload/restart.
# qga_test.py first checks the guest-agent client's options and its bound on waiting.
image-test: image
	python3 images/qga_test.py
	images/test.sh

# Perf lab, never part of `make test` (perf/README.md): testpmd io-fwd, lbd FNAT over a memif
# pair, new connections, session scale, wrk in the namespace testbed (lbd with lb-slowpath, as
# deployed). About 7 minutes; writes
# perf/results/YYYY-MM-DD.{md,json,*.png}. Options for lb-bench go in BENCH_ARGS.
bench:
	scripts/setup.sh --bench
	$(CARGO) build --release -p lbd -p lb-slowpath -p lb-perf
	$(CARGO) build --release -p fastpath --examples
	target/release/lb-bench $(BENCH_ARGS)

# lb-slowpath at scale (perf/README.md): 10,000 real servers at delay_loop 1, TCP_CHECK and
# HTTP_GET; writes perf/results/YYYY-MM-DD-health.{md,json}. Options in BENCH_HEALTH_ARGS.
bench-health:
	scripts/setup.sh --bench
	$(CARGO) build --release -p lbd -p lb-slowpath -p lbctl -p lb-perf
	target/release/lb-bench-health $(BENCH_HEALTH_ARGS)

# VRRP takeover of a director pair (our directors), VRRPv2 advert_int 1 and VRRPv3 0.1: writes
# perf/results/YYYY-MM-DD-takeover.{md,json}. About 3 minutes.
bench-takeover: build-release
	scripts/bench-takeover.sh

# Session sync's cost (perf/README.md): new connections per second with sync off vs on (memif lab,
# alternating rounds), records per second a backup absorbs and sessions on the backup vs the master
# after a wrk burst (testbed pair of configs/sync-pair.conf): writes
# perf/results/YYYY-MM-DD-sync.{md,json}. About 5 minutes after the build (more while other
# processes load the CPUs: it waits up to 10 minutes for quiet). Options in BENCH_SYNC_ARGS.
bench-sync:
	scripts/setup.sh --bench
	$(CARGO) build --release -p lbd -p lb-slowpath -p lbctl -p lb-perf
	target/release/lb-bench-sync $(BENCH_SYNC_ARGS)

# SYN proxy under a SYN flood (perf/README.md): real connections per second through lbd's SYN
# proxy (one worker, memif lab) with lb-pktgen's spoofed-source flood beside them vs without,
# cookie answers per second, half-open connections and flood sources at the real servers, and
# the SYN proxy's own cost (off vs on): writes perf/results/YYYY-MM-DD-synflood.{md,json}.
# About 6 minutes after the build. Options in BENCH_SYNFLOOD_ARGS.
bench-synflood:
	scripts/setup.sh --bench
	$(CARGO) build --release -p lbd -p lb-perf
	target/release/lb-bench-synflood $(BENCH_SYNFLOOD_ARGS)

clippy:
	$(CARGO) clippy --workspace --all-targets

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
