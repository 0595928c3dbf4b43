"""Where would the control stand at the HyperTok lanes' tokens? (issue 21, CPU, no model run)

The issue's bars compare at an equal token budget. The first lease trained the HyperTok lanes to
20.4M (64k) and 23.0M (32k) tokens, each schedule complete; the control has complete schedules at
7.2M, 8.0M and 11.5M tokens (three leases), none at 20M yet. This reads every run's final figures
from the committed ``results.json`` files and fits, per dev text, the control's bits/char as a line
in log2(tokens) (each doubling of the budget takes off the same amount), then reads that line at
each HyperTok lane's tokens:

    python experiments/realmodel/project_control.py \\
        --control experiments/realmodel/results.json experiments/realmodel/equal-tokens/results.json \\
                  experiments/realmodel/control-11m/results.json \\
        --hypertok experiments/realmodel/equal-tokens/results.json experiments/realmodel/recipes-8m/results.json \\
                   experiments/realmodel/results.json --out experiments/realmodel/control-11m/projection.json

(the last ``--hypertok`` file's lanes are read against the projection; the earlier ones give their lines)

It is a projection, not a measurement: three points, close together, fitted by a line that knows no
saturation (a curve that flattens would leave the control higher, the gap smaller). ``slope_last_two``
is the line through the two largest budgets alone, a second reading of the same points; the gap is given
under both. RuBLiMP has no projection: the control's accuracy does not move with tokens here
(``control_rublimp``), and the base's 88.2% is a floor for the better reference in any case.

With more than one ``--hypertok`` file, a lane that ran complete schedules at two budgets or more (the
8M-token leases and the first lease's 20M) gets a line of its own, for bits/char and for RuBLiMP
points, and ``tokens_to_bar``: where its line meets the issue's bar against the control's line (bits/char
within 3%) or against the best accuracy measured (RuBLiMP within 1 point). It says how far off the bars
are in tokens if both lines held, which is what the next leases would test; it is read from lines
through two or three points each, far beyond the last of them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def control_points(paths: list[Path]) -> list[dict]:
    """The control's final figures in each run, by tokens (runs with the same tokens: the later file's)."""
    points = {}
    for p in paths:
        c = json.loads(p.read_text())["variants"].get("control")
        if c is None:
            raise SystemExit(f"{p}: no control lane")
        points[c["adapt_tokens"]] = {"tokens": c["adapt_tokens"], "run": str(p), "bpc_by_text": c["bpc_by_text"],
                                     "rublimp": c["rublimp"]}
    return sorted(points.values(), key=lambda x: x["tokens"])


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares y = a + b x: (a, b)."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my - b * mx, b


def crossing(a: float, b: float, c: float, d: float, bar: float) -> float | None:
    """Tokens where y = c + d x (a lane) meets bar x (a + b x) (the control's line), x = log2(tokens), when
    the lane's line comes down to it from above; None where it never does."""
    slope = d - bar * b
    if slope >= 0:
        return None
    return 2 ** ((bar * a - c) / slope)


def lane_lines(runs: list[dict], texts: list[str]) -> dict[str, dict]:
    """Each HyperTok lane seen at two budgets or more in ``runs``: its points and lines in log2(tokens)."""
    seen: dict[str, dict[int, dict]] = {}
    for r in runs:
        for name, v in r["variants"].items():
            if v["tokenizer"] == "ht":
                seen.setdefault(name, {})[v["adapt_tokens"]] = v
    out = {}
    for name, by_tokens in seen.items():
        if len(by_tokens) < 2:
            continue
        vs = [by_tokens[t] for t in sorted(by_tokens)]
        xs = [math.log2(v["adapt_tokens"]) for v in vs]
        out[name] = {"tokens": [v["adapt_tokens"] for v in vs],
                     "bpc_points": {t: [v["bpc_by_text"][t] for v in vs] for t in texts},
                     "rublimp_points": [100 * v["rublimp"] for v in vs]}
        out[name]["bpc"] = {t: fit_line(xs, ys) for t, ys in out[name]["bpc_points"].items()}
        out[name]["rublimp"] = fit_line(xs, out[name]["rublimp_points"])
        # the line through the two largest budgets alone: where the lane's curve flattens, the local reading
        out[name]["bpc_last_two"] = {t: fit_line(xs[-2:], ys[-2:]) for t, ys in out[name]["bpc_points"].items()}
        out[name]["rublimp_last_two"] = fit_line(xs[-2:], out[name]["rublimp_points"][-2:])
    return out


def rising_to(c: float, d: float, bar: float) -> float | None:
    """Tokens where y = c + d log2(tokens) (a lane's RuBLiMP points) rises to the flat ``bar``; None where
    the line does not rise."""
    return 2 ** ((bar - c) / d) if d > 0 else None


def project(points: list[dict], lanes: dict[str, dict], earlier: list[dict] = ()) -> dict:
    if len(points) < 2:
        raise SystemExit("the control needs final figures at two budgets at least")
    texts = sorted(set.intersection(*(set(p["bpc_by_text"]) for p in points)))
    out = {"control_points": points, "control_rublimp": {p["tokens"]: p["rublimp"] for p in points}, "texts": {}}
    lines = lane_lines([*earlier, {"variants": lanes}], texts)
    best_rublimp = 100 * max(p["rublimp"] for p in points)
    for text in texts:
        xs = [math.log2(p["tokens"]) for p in points]
        ys = [p["bpc_by_text"][text] for p in points]
        a, b = fit_line(xs, ys)
        a2, last = fit_line(xs[-2:], ys[-2:])  # the control's line through its two largest budgets
        t = {"line": [a, b], "slope_per_doubling": b, "slope_last_two": last, "lanes": {}}
        for name, v in lanes.items():
            x = math.log2(v["adapt_tokens"])
            fitted, through_last = a + b * x, a2 + last * x
            bpc = v["bpc_by_text"][text]
            t["lanes"][name] = {"tokens": v["adapt_tokens"], "bpc": bpc, "control_projected": fitted,
                                "control_projected_last_two": through_last,
                                "gap_vs_projected": bpc / fitted - 1, "gap_vs_projected_last_two": bpc / through_last - 1,
                                "gap_vs_last_measured": bpc / ys[-1] - 1}
            if name in lines:
                c, d = lines[name]["bpc"][text]
                c2, d2 = lines[name]["bpc_last_two"][text]
                t["lanes"][name].update(line_points=lines[name]["tokens"], line_bpc=lines[name]["bpc_points"][text],
                                        line=[c, d], slope_per_doubling=d,
                                        tokens_to_bar=crossing(a, b, c, d, 1.03),
                                        tokens_to_equal=crossing(a, b, c, d, 1.0),
                                        line_last_two=[c2, d2], slope_last_two=d2,
                                        tokens_to_bar_last_two=crossing(a2, last, c2, d2, 1.03))
        out["texts"][text] = t
    out["rublimp"] = {"better_reference_points": best_rublimp, "lanes": {}}
    for name, line in lines.items():
        c, d = line["rublimp"]  # points = c + d log2(tokens); the bar: best_rublimp - 1, flat
        c2, d2 = line["rublimp_last_two"]
        out["rublimp"]["lanes"][name] = {"line_points": line["tokens"], "line_rublimp": line["rublimp_points"],
                                         "line": [c, d], "points_per_doubling": d,
                                         "tokens_to_bar": rising_to(c, d, best_rublimp - 1),
                                         "line_last_two": [c2, d2], "points_per_doubling_last_two": d2,
                                         "tokens_to_bar_last_two": rising_to(c2, d2, best_rublimp - 1)}
    return out


def plot(out: dict, path: Path, up_to: float = 100e6) -> None:
    """Final figures against tokens (log scale): the control's points and line with the 3% bar above it, each
    lane's points and line, and RuBLiMP with its bar; the lines drawn from 4M on to ``up_to`` tokens."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    texts = list(out["texts"])
    fig, axes = plt.subplots(1, len(texts) + 1, figsize=(5 * (len(texts) + 1), 4))
    xs = [2 ** x for x in (22 + i / 10 for i in range(int(10 * (math.log2(up_to) - 22)) + 1))]  # 4M on
    pts = out["control_points"]
    for ax, text in zip(axes, texts):
        t = out["texts"][text]
        a, b = t["line"]
        ax.plot([p["tokens"] / 1e6 for p in pts], [p["bpc_by_text"][text] for p in pts], "ko", label="control")
        ax.plot([x / 1e6 for x in xs], [a + b * math.log2(x) for x in xs], "k-", lw=1, label="control's line")
        ax.plot([x / 1e6 for x in xs], [1.03 * (a + b * math.log2(x)) for x in xs], "k--", lw=1, label="the bar (+3%)")
        for name, v in sorted(t["lanes"].items()):  # (sorted: each lane one colour in every panel)
            if "line" in v:
                c, d = v["line"]
                ln, = ax.plot([x / 1e6 for x in xs], [c + d * math.log2(x) for x in xs], lw=1, label=f"{name}'s line")
                ax.plot([x / 1e6 for x in v["line_points"]], v["line_bpc"], "o", color=ln.get_color())
                last_two(ax, v["line_points"], v["line_last_two"], xs, ln.get_color())
        ax.set(xscale="log", title=f"{text} dev: final bits/char (complete schedules)", xlabel="adaptation tokens (M)",
               ylabel="bits/char")
        ax.legend(fontsize=7)
    ax, r = axes[-1], out["rublimp"]
    ax.plot([p["tokens"] / 1e6 for p in pts], [100 * p["rublimp"] for p in pts], "ko", label="control")
    ax.axhline(r["better_reference_points"] - 1, color="k", ls="--", lw=1, label="the bar (best - 1 point)")
    for name, v in sorted(r["lanes"].items()):
        c, d = v["line"]
        ln, = ax.plot([x / 1e6 for x in xs], [c + d * math.log2(x) for x in xs], lw=1, label=f"{name}'s line")
        ax.plot([x / 1e6 for x in v["line_points"]], v["line_rublimp"], "o", color=ln.get_color())
        last_two(ax, v["line_points"], v["line_last_two"], xs, ln.get_color())
    ax.set(xscale="log", title="RuBLiMP accuracy (all pairs)", xlabel="adaptation tokens (M)", ylabel="points")
    ax.legend(fontsize=7)
    fig.suptitle("python experiments/realmodel/project_control.py (a projection: lines through 2-3 points; "
                 "dotted, through a lane's two largest budgets)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def last_two(ax, points: list[float], line: list[float], xs: list[float], color) -> None:
    """A lane's line through its two largest budgets, dotted from the first of them on, where it has three
    points or more (with two, it is the line already drawn)."""
    if len(points) >= 3:
        c, d = line
        on = [x for x in xs if x >= points[-2]]
        ax.plot([x / 1e6 for x in on], [c + d * math.log2(x) for x in on], ":", lw=1.5, color=color)


def millions(tokens: float | None) -> str:
    return "never" if tokens is None else f"{tokens / 1e6:.0f}M"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--control", type=Path, nargs="+", required=True,
                    help="results.json files whose control lane ran a complete schedule (one point each)")
    ap.add_argument("--hypertok", type=Path, nargs="+", required=True,
                    help="results.json files with HyperTok lanes (tokenizer 'ht'): the last one's lanes are read against "
                         "the projection, and a lane found at two budgets or more gets a line of its own")
    ap.add_argument("--out", type=Path, required=True, help="the JSON to write (and its plot beside it, .png)")
    args = ap.parse_args(argv)
    for p in [*args.control, *args.hypertok]:
        if not p.is_file():
            raise SystemExit(f"{p}: no such file")
    runs = [json.loads(p.read_text()) for p in args.hypertok]
    lanes = {n: v for n, v in runs[-1]["variants"].items() if v["tokenizer"] == "ht"}
    if not lanes:
        raise SystemExit(f"{args.hypertok[-1]}: no HyperTok lane")
    out = {"issue": 21, "hypertok_runs": [str(p) for p in args.hypertok],
           **project(control_points(args.control), lanes, runs[:-1])}
    from hypertok.files import atomic_write

    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, json.dumps(out, indent=1, ensure_ascii=False))
    try:
        plot(out, args.out.with_suffix(".png"))
    except ImportError:
        print("matplotlib is not installed: no plot")
    for text, t in out["texts"].items():
        for name, v in t["lanes"].items():
            print(f"{text:7s} {name:15s} {v['tokens'] / 1e6:5.1f}M  bpc {v['bpc']:.4f}  control projected "
                  f"{v['control_projected']:.4f} ({v['control_projected_last_two']:.4f})  gap "
                  f"{100 * v['gap_vs_projected']:+.1f}% ({100 * v['gap_vs_projected_last_two']:+.1f}%)"
                  + (f"  within 3% at {millions(v['tokens_to_bar'])} ({millions(v['tokens_to_bar_last_two'])}), "
                     f"equal at {millions(v['tokens_to_equal'])}" if "tokens_to_bar" in v else ""))
    for name, v in out["rublimp"]["lanes"].items():
        print(f"rublimp {name:15s} {v['points_per_doubling']:+.2f} ({v['points_per_doubling_last_two']:+.2f}) points a "
              f"doubling, within 1 point of {out['rublimp']['better_reference_points']:.1f}% at "
              f"{millions(v['tokens_to_bar'])} ({millions(v['tokens_to_bar_last_two'])})")
    print("(in brackets: the lines through the two largest budgets alone)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
