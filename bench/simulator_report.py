"""Measure the simulator against its scenarios and write the figures docs/SIMULATOR.md quotes.

    python bench/simulator_report.py [--seeds 20] [--impact-seeds 8] [SCENARIO.json ...]

Prints markdown tables (calibration per scenario, microstructure, the square-root law fit)
and writes docs/img/sqrt_law.svg, a log-log plot of impact against order size (with no
scenario named; --svg PATH for another place).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from execution.cli_args import exit_code, whole  # noqa: E402
from execution.sim.diagnostics import microstructure, quiet_day, square_root_law  # noqa: E402
from execution.sim.scenario import ScenarioError, load_scenario  # noqa: E402

SHARED = ROOT.parent / "shared" / "scenarios"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenarios", nargs="*", type=Path)
    ap.add_argument("--seeds", type=whole(1, 1_000_000), default=20)
    ap.add_argument("--impact-seeds", type=whole(1, 1_000_000), default=8)
    ap.add_argument(
        "--svg",
        type=Path,
        help="where to write the square-root-law plot (default: docs/img/sqrt_law.svg when "
        "no scenario is named, else none: the docs' figure is of the docs' scenarios)",
    )
    args = ap.parse_args()
    svg_out = args.svg or (None if args.scenarios else ROOT / "docs" / "img" / "sqrt_law.svg")
    paths = args.scenarios or sorted(SHARED.glob("*.json")) + sorted(
        (ROOT / "execution" / "scenarios").glob("*.json")
    )
    print(f"Measured {date.today()} with {args.seeds} seeds per scenario, no strategy trading.\n")
    print(
        "| scenario | volume / ADV | spread, ticks (target) | realised vol (target) | open-to-close sd | first, mid, last 30-min bucket share |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for p in paths:
        sc = load_scenario(p)
        ds = [quiet_day(sc, 1000 + s) for s in range(args.seeds)]
        vol = statistics.mean(d.volume for d in ds) / sc.instrument.adv_shares
        spread = statistics.mean(d.time_avg_spread_ticks for d in ds)
        rv = statistics.mean(d.realized_vol**2 for d in ds) ** 0.5
        o2c = statistics.pstdev(d.open_to_close for d in ds)
        b = [statistics.mean(d.bucket_volume[i] for d in ds) for i in range(13)]
        tot = sum(b)
        regimes = " (regimes)" if sc.regimes else ""
        print(
            f"| {sc.name}{regimes} | {vol:.3f} | {spread:.2f} ({sc.instrument.spread_ticks:g}) | "
            f"{rv:.4f} ({sc.instrument.daily_volatility:g}) | {o2c:.4f} | "
            f"{b[0] / tot:.3f}, {b[6] / tot:.3f}, {b[-1] / tot:.3f} |",
            flush=True,
        )
    print(
        "\n| scenario | imbalance → next mid move | microprice → next mid move | when abs(imbalance) > 0.5 | mid moves | trade-sign autocorrelation, lags 1, 2, 5, 10 |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for p in paths:
        sc = load_scenario(p)
        ms = [microstructure(sc, s) for s in (1, 2, 3)]
        ac = [statistics.mean(m.trade_sign_autocorr[k] for m in ms) for k in (0, 1, 4, 9)]
        print(
            f"| {sc.name} | {statistics.mean(m.imbalance_agreement for m in ms):.1%} | "
            f"{statistics.mean(m.microprice_agreement for m in ms):.1%} | "
            f"{statistics.mean(m.strong_imbalance_agreement for m in ms):.1%} | "
            f"{sum(m.mid_moves for m in ms) // 3:,} | {', '.join(f'{a:.3f}' for a in ac)} |",
            flush=True,
        )
    impact_paths = [
        p
        for p in paths
        if p.stem
        in ("midcap-500k-buy", "smallcap-wide-spread", "largecap-sell-2h", "demo-midcap-buy")
    ]
    print(
        f"\nSquare-root law: TWAP over the whole day, cost minus a 0.02%-of-ADV order's on the same {args.impact_seeds} seeds.\n"
    )
    print(
        "| scenario | impact bps at Q/ADV = 1%, 3%, 10%, 30% (± s.e.) | log-log slope | Y (slope fixed at 1/2) |"
    )
    print("|---|---|---:|---:|")
    fits = []
    for p in impact_paths:
        sc = load_scenario(p)
        fit = square_root_law(sc, seeds=range(2000, 2000 + args.impact_seeds))
        fits.append((sc, fit))
        cells = ", ".join(
            f"{i:.1f} ± {e:.1f}" for i, e in zip(fit.impact_bps, fit.stderr_bps, strict=True)
        )
        print(f"| {sc.name} | {cells} | {fit.slope:.3f} | {fit.y:.3f} |", flush=True)
    if svg_out is not None:
        svg_out.parent.mkdir(parents=True, exist_ok=True)
        svg_out.write_text(svg(fits))
        print(f"\nwrote {svg_out}")
    return 0


def svg(fits: list) -> str:
    """A small hand-drawn log-log plot: impact / sigma against Q / ADV, with sqrt lines."""
    w, h, pad = 560, 380, 60
    xs = (math.log10(0.005), math.log10(0.5))
    ys = (math.log10(0.02), math.log10(1.0))

    def px(x: float, y: float) -> tuple[float, float]:
        fx = (math.log10(x) - xs[0]) / (xs[1] - xs[0])
        fy = (math.log10(y) - ys[0]) / (ys[1] - ys[0])
        return pad + fx * (w - 2 * pad), h - pad - fy * (h - 2 * pad)

    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
    ]
    for gx in (0.01, 0.03, 0.1, 0.3):
        x, _ = px(gx, 0.02)
        out.append(f'<line x1="{x:.1f}" y1="{pad}" x2="{x:.1f}" y2="{h - pad}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{h - pad + 16}" text-anchor="middle">{gx:.0%}</text>')
    for gy in (0.03, 0.1, 0.3, 1.0):
        _, y = px(0.005, gy)
        out.append(f'<line x1="{pad}" y1="{y:.1f}" x2="{w - pad}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{pad - 6}" y="{y + 4:.1f}" text-anchor="end">{gy:g}</text>')
    for yref in (0.3, 1.5):
        a, b = px(0.005, yref * math.sqrt(0.005)), px(0.5, yref * math.sqrt(0.5))
        out.append(
            f'<line x1="{a[0]:.1f}" y1="{a[1]:.1f}" x2="{b[0]:.1f}" y2="{b[1]:.1f}" stroke="#999" stroke-dasharray="4 4"/>'
        )
        out.append(f'<text x="{b[0] + 2:.1f}" y="{b[1]:.1f}" fill="#666">Y={yref:g}</text>')
    for k, (sc, fit) in enumerate(fits):
        sigma = sc.instrument.daily_volatility * 1e4
        c = colours[k % len(colours)]
        pts = [
            px(f, max(i / sigma, 0.021)) for f, i in zip(fit.fractions, fit.impact_bps, strict=True)
        ]
        out.append(
            '<polyline fill="none" stroke="{}" points="{}"/>'.format(
                c, " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            )
        )
        out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{c}"/>' for x, y in pts]
        out.append(
            f'<text x="{pad + 8}" y="{pad + 14 + 16 * k}" fill="{c}">{sc.name}: slope {fit.slope:.2f}, Y {fit.y:.2f}</text>'
        )
    out.append(
        f'<text x="{w / 2}" y="{h - 14}" text-anchor="middle">order size Q / ADV (log)</text>'
    )
    out.append(
        f'<text x="16" y="{h / 2}" transform="rotate(-90 16 {h / 2})" text-anchor="middle">impact / daily sigma (log)</text>'
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(exit_code(main, ScenarioError))
