#!/usr/bin/env python3
"""Latency distribution plot for the bench: one percentile curve per histogram file.

    plot_latency.py OUT.png TITLE LABEL=HIST [LABEL=HIST ...]

HIST is what `sluice-loadgen --hist-out` writes (several, comma-separated, are merged): one "<upper edge in ns> <count>" line per
non-empty bucket. The x axis is the percentile on a log scale of 1/(1 - q) (50, 90, 99, 99.9 ...
equally spaced, as HDR histogram plots do), the y axis latency in microseconds, log scale, so
the median and the tail of every curve are readable at once. Needs matplotlib (Debian
python3-matplotlib).
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def percentile_curve(paths):
    buckets = {}
    for path in paths.split(","):
        with open(path) as f:
            for line in f:
                edge, count = line.split()
                buckets[int(edge)] = buckets.get(int(edge), 0) + int(count)
    rows = sorted(buckets.items())
    total = sum(c for _, c in rows)
    xs, ys = [], []
    seen = 0
    for edge, count in rows:
        seen += count
        q = seen / total
        # The last bucket is q = 1 (infinite on this axis): plot it at one request short of it.
        q = min(q, 1 - 0.5 / total)
        xs.append(1 / (1 - q))
        ys.append(edge / 1000.0)
    return xs, ys, total


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    out, title = sys.argv[1], sys.argv[2]
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for arg in sys.argv[3:]:
        label, path = arg.split("=", 1)
        xs, ys, total = percentile_curve(path)
        if total == 0:
            continue
        ax.step(xs, ys, where="post", label=f"{label} (n={total})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [2, 10, 100, 1000, 10000, 100000]
    ax.set_xticks(ticks)
    ax.set_xticklabels(["p50", "p90", "p99", "p99.9", "p99.99", "p99.999"])
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency from the scheduled send (us)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
