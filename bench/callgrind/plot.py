"""Charts of the instruction-count gate's results (needs the ``plot`` extra: matplotlib).

    python -m bench.callgrind.plot                  # docs/img/callgrind-peers.png, -history.png
    python -m bench.callgrind.plot --out bench/.results

peers:   instructions per request of vpseal (native, fallback) against the peer each is sold
         against (cryptography, pycryptodome), per operation, from the latest results
         (bench/.results/callgrind.json, else the baseline).
history: each gated operation relative to its first recorded value, one point per line of
         bench/callgrind/history.jsonl (one line per change to main).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .gate import BASELINE, HISTORY, RESULTS, ROOT
from .ops import ENGINES, PEER_OF, all_ops


def _counts() -> dict[str, float]:
    source = RESULTS if RESULTS.exists() else BASELINE
    counts: dict[str, float] = json.loads(source.read_text())["counts"]
    return counts


def peers_chart(counts: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ops = all_ops()
    fig, axes = plt.subplots(1, 2, figsize=(13, 6))
    for ax, engine in zip(axes, ENGINES, strict=True):
        peer = PEER_OF[engine]
        groups = [
            op.group
            for op in ops
            if op.impl == engine and f"{op.group} [{peer}]" in counts and op.key in counts
        ]
        mine = [counts[f"{g} [{engine}]"] / 1000 for g in groups]
        theirs = [counts[f"{g} [{peer}]"] / 1000 for g in groups]
        ys = range(len(groups))
        ax.barh([y - 0.2 for y in ys], mine, height=0.4, label=f"vpseal {engine}")
        ax.barh([y + 0.2 for y in ys], theirs, height=0.4, label=peer)
        ax.set_yticks(list(ys), groups)
        ax.invert_yaxis()
        ax.set_xscale("log")
        for y, a, b in zip(ys, mine, theirs, strict=True):
            ax.annotate(f"{a / b:.2f}x", (max(a, b), y), xytext=(4, -3),
                        textcoords="offset points", fontsize=8)  # fmt: skip
        ax.set_xlim(right=max(theirs + mine) * 2)
        ax.set_xlabel("thousand instructions per request (callgrind, log scale)")
        ax.set_title(f"vpseal {engine} vs {peer} (label: vpseal / peer)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    fig.suptitle("vpseal against the hand-written peers: CPU instructions per operation")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def history_chart(lines: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gated = [op.key for op in all_ops() if op.gated]
    fig, ax = plt.subplots(figsize=(11, 5.5))
    for key in gated:
        points = [(i, line["counts"][key]) for i, line in enumerate(lines) if key in line["counts"]]
        if not points:
            continue
        first = points[0][1]
        ax.plot([i for i, _ in points], [v / first for _, v in points], marker="o", label=key)
    ax.axhline(1.03, color="red", linestyle="--", linewidth=1, label="gate: +3 %")
    ax.set_xticks(range(len(lines)), [line.get("commit") or "?" for line in lines], rotation=45)
    ax.set_ylabel("instructions relative to the first record")
    ax.set_title("vpseal instruction counts over changes to main (bench/callgrind/history.jsonl)")
    ax.legend(fontsize=6, ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.callgrind.plot")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    peers_chart(_counts(), args.out / "callgrind-peers.png")
    print(args.out / "callgrind-peers.png")
    if HISTORY.exists():
        lines = [json.loads(line) for line in HISTORY.read_text().splitlines() if line.strip()]
        if lines:
            history_chart(lines, args.out / "callgrind-history.png")
            print(args.out / "callgrind-history.png")


if __name__ == "__main__":
    main()
