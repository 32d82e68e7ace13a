#!/usr/bin/env python3
"""Draws the perf lab's PNG plots from an lb-bench record.

Usage: plot.py RESULTS.json PREFIX   ->  PREFIX-throughput.png, -latency.png, -sessions.png, -wrk.png

Each bar is the median of the scenario's runs; error bars span min to max.
Needs matplotlib (Debian: python3-matplotlib; `scripts/setup.sh --bench` installs it).
"""
import json
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def runs(rec, key):
    return [r for r in rec.get("scenarios", {}).get(key, {}).get("runs", []) if not r.get("error")]


def values(rec, key, get):
    out = []
    for r in runs(rec, key):
        try:
            v = get(r)
        except (KeyError, TypeError):
            v = None
        if v is not None:
            out.append(float(v))
    return out


def med(vs):
    return statistics.median(vs) if vs else None


def bar(ax, labels, series, ylabel, scale=1.0, colors=None):
    xs = range(len(labels))
    meds, lo, hi = [], [], []
    for vs in series:
        m = med(vs)
        meds.append((m or 0) / scale)
        lo.append(((m - min(vs)) / scale) if vs else 0)
        hi.append(((max(vs) - m) / scale) if vs else 0)
    ax.bar(xs, meds, yerr=[lo, hi], capsize=4, color=colors)
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, rotation=15, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    for x, m in zip(xs, meds):
        if m:
            ax.annotate(f"{m:.2f}", (x, m), ha="center", va="bottom", fontsize=8)


def pps(r):
    return r["gen"]["rx_pps"]


def throughput(rec, path):
    order = rec.get("order", [])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    keys = [k for k in ["loopback", "testpmd", "lbd-udp", "lbd-tcp"] if k in order]
    names = {"loopback": "generator\nloopback", "testpmd": "testpmd\nio-fwd", "lbd-udp": "lbd FNAT\nUDP", "lbd-tcp": "lbd FNAT\nTCP"}
    bar(axes[0], [names[k] for k in keys], [values(rec, k, pps) for k in keys], "Mpps (64 B, median of runs)", 1e6,
        ["#999999", "#4c72b0", "#dd8452", "#c44e52"][: len(keys)])
    axes[0].set_title("Forwarding rate, one core, memif pair")

    sizes = [64] + sorted(int(k.split("-")[1]) for k in order if k.startswith("testpmd-") and k.split("-")[1].isdigit())
    w = 0.38
    for i, (prefix, label, color) in enumerate([("testpmd", "testpmd io-fwd", "#4c72b0"), ("lbd-udp", "lbd FNAT UDP", "#dd8452")]):
        ys = []
        for s in sizes:
            key = prefix if s == 64 else f"{prefix}-{s}"
            ys.append((med(values(rec, key, pps)) or 0) / 1e6)
        axes[1].bar([x + (i - 0.5) * w for x in range(len(sizes))], ys, w, label=label, color=color)
    axes[1].set_xticks(list(range(len(sizes))))
    axes[1].set_xticklabels([f"{s} B" for s in sizes])
    axes[1].set_ylabel("Mpps")
    axes[1].set_title("By frame size")
    axes[1].legend(fontsize=8)

    flows = sorted(int(k.rsplit("-", 1)[1]) for k in order if k.startswith("lbd-udp-flows-"))
    pts = []
    for f in flows:
        m = med(values(rec, f"lbd-udp-flows-{f}", pps))
        if m:
            pts.append((f, m / 1e6))
    base = med(values(rec, "lbd-udp", pps))
    if base:
        flows_default = None
        for r in runs(rec, "lbd-udp"):
            flows_default = r["gen"].get("flows")
        if flows_default:
            pts.append((int(flows_default), base / 1e6))
    pts.sort()
    if pts:
        axes[2].plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color="#dd8452", label="lbd FNAT UDP 64 B")
        tp = med(values(rec, "testpmd", pps))
        if tp:
            axes[2].axhline(tp / 1e6, color="#4c72b0", linestyle="--", label="testpmd io-fwd")
            axes[2].axhline(tp / 2e6, color="#999999", linestyle=":", label="target: 0.5 x testpmd")
        axes[2].set_xscale("log")
        axes[2].legend(fontsize=8)
    axes[2].set_xlabel("established flows (sessions)")
    axes[2].set_ylabel("Mpps")
    axes[2].set_title("By number of flows")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def latency(rec, path):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    qs = ["p50", "p90", "p99", "p999"]
    w = 0.38
    for i, (key, label, color) in enumerate([("testpmd-lat", "testpmd io-fwd", "#4c72b0"), ("lbd-udp-lat", "lbd FNAT UDP", "#dd8452")]):
        ys = [(med(values(rec, key, lambda r, q=q: r["gen"]["latency_ns"][q])) or 0) / 1e3 for q in qs]
        axes[0].bar([x + (i - 0.5) * w for x in range(len(qs))], ys, w, label=label, color=color)
    axes[0].set_xticks(list(range(len(qs))))
    axes[0].set_xticklabels(["p50", "p90", "p99", "p99.9"])
    axes[0].set_yscale("log")
    axes[0].set_ylabel("one-way latency, µs (log)")
    title = rec.get("scenarios", {}).get("lbd-udp-lat", {}).get("title", "fixed rate")
    axes[0].set_title(f"At a fixed rate ({title.split(' at ')[-1] if ' at ' in title else ''})")
    axes[0].legend(fontsize=8)
    ys = [(med(values(rec, "lbd-conn", lambda r, q=q: r["gen"]["connect_latency_ns"][q])) or 0) / 1e3 for q in qs]
    hs = [(med(values(rec, "lbd-conn", lambda r, q=q: r["gen"]["handshake_latency_ns"][q])) or 0) / 1e3 for q in qs]
    axes[1].bar([x - w / 2 for x in range(len(qs))], hs, w, label="SYN -> SYN-ACK", color="#55a868")
    axes[1].bar([x + w / 2 for x in range(len(qs))], ys, w, label="SYN -> response", color="#8172b2")
    axes[1].set_xticks(list(range(len(qs))))
    axes[1].set_xticklabels(["p50", "p90", "p99", "p99.9"])
    axes[1].set_yscale("log")
    axes[1].set_ylabel("µs (log)")
    cps = med(values(rec, "lbd-conn", lambda r: r["gen"]["cps"]))
    axes[1].set_title(f"New connections through lbd ({(cps or 0) / 1e3:.0f}k conn/s)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def sessions(rec, path):
    pts = []
    for k in rec.get("order", []):
        if not k.startswith("sessions-"):
            continue
        for r in runs(rec, k):
            n = (r.get("lbd_totals") or {}).get("sessions")
            a, b = r.get("lbd_rss_ready_kb"), r.get("lbd_rss_after_kb")
            if n and a and b:
                pts.append((n, (b - a) / 1024.0, (b - a) * 1024.0 / n))
    if not pts:
        return False
    pts.sort()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color="#c44e52", label="lbd RSS growth")
    ax.plot([p[0] for p in pts], [p[0] * 200 / 2**20 for p in pts], linestyle=":", color="#999999", label="target: 200 B/session")
    for n, mib, b in pts:
        ax.annotate(f"{b:.0f} B/session", (n, mib), textcoords="offset points", xytext=(-10, 8), fontsize=8)
    ax.set_xlabel("sessions in lbd (one worker)")
    ax.set_ylabel("RSS growth, MiB")
    ax.set_title("Session memory")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def wrk(rec, path):
    w = rec.get("wrk") or {}
    if not w.get("direct") or not w.get("director"):
        return False
    ok = lambda rs: [r for r in rs if not r.get("error")]  # noqa: E731
    d, t = ok(w["direct"]), ok(w["director"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    bar(axes[0], ["direct", "through lbd"], [[r["rps"] for r in d if r.get("rps")], [r["rps"] for r in t if r.get("rps")]], "requests/s (thousands)", 1e3, ["#4c72b0", "#dd8452"])
    axes[0].set_title("wrk req/s (median, min-max)")
    qs = ["p50_us", "p90_us", "p99_us"]
    wd = 0.38
    for i, (rs, label, color) in enumerate([(d, "direct", "#4c72b0"), (t, "through lbd", "#dd8452")]):
        ys = [med([r[q] for r in rs if r.get(q) is not None]) or 0 for q in qs]
        axes[1].bar([x + (i - 0.5) * wd for x in range(len(qs))], ys, wd, label=label, color=color)
    axes[1].set_xticks(list(range(len(qs))))
    axes[1].set_xticklabels(["p50", "p90", "p99"])
    axes[1].set_ylabel("latency, µs")
    axes[1].set_title("wrk latency")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        rec = json.load(f)
    prefix = sys.argv[2]
    throughput(rec, f"{prefix}-throughput.png")
    latency(rec, f"{prefix}-latency.png")
    sessions(rec, f"{prefix}-sessions.png")
    wrk(rec, f"{prefix}-wrk.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
