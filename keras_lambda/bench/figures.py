"""The figures of a bench record: a headline figure (lambda layers as users run
them against attention and the paper's pseudo-code) and one of the
implementations behind `auto`, one small panel per context.

Every series keeps one colour and marker across figures and runs (`HEADLINE`,
`KERNEL_STYLES`), carries a label at its line's end, and a case that ran out
of memory or time is drawn at the panel's top edge (markers in
`FAILURE_MARKERS`) instead of vanishing. Redraw a record's figures with
`python -m keras_lambda.bench.figures benchmarks/history/bench-cpu.json`.
"""

import json
import os
import sys

from keras_lambda.bench import report
from keras_lambda.bench.methods import (
    BASELINE,
    CONTEXTS,
    IMPLEMENTATIONS,
    KERNELS,
    Method,
)

MIB = 2**20
HEADLINE_DIM = 128  # the d the README quotes; another when a run has no 128

# method → (label, colour, marker): a colour and a marker each, so that either tells them apart.
HEADLINE = {
    BASELINE: ("attention", "#222222", "s"),
    "paper": ("paper's pseudo-code", "#8c8c8c", "D"),
    "lambda/global/auto": ("lambda, global", "#1f77b4", "o"),
    "lambda/r23/auto": ("lambda, r = 23", "#ff7f0e", "^"),
    "lambda/r7/auto": ("lambda, r = 7", "#2ca02c", "v"),
    "lambda/content": ("lambda, content only", "#9467bd", "P"),
}
KERNEL_STYLES = {
    "einsum": ("#1f77b4", "o"),
    "conv": ("#ff7f0e", "s"),
    "depthwise": ("#2ca02c", "^"),
    "fft": ("#d62728", "D"),
    "dft": ("#8c564b", "v"),
    "auto": ("#222222", "*"),
}
FAILURE_MARKERS = {"OOM": "X", "timeout": "P"}  # drawn at the top edge
FAILURE_STEP = 0.06  # of the panel's height, between failures at the same n
LABEL_GAP_POINTS = 9  # between labels at the lines' ends (their font is 7 points)


def record_title(record):
    """Machine (with backend and versions) and date of a record, for a title."""
    date = record.get("date")
    return f"{record['machine']}{' · ' + date if date else ''}"


def _layer_dim(results):
    dims = sorted({r["dim"] for r in results if Method.parse(r["method"]).kind != "model"})
    if not dims:
        return None
    return HEADLINE_DIM if HEADLINE_DIM in dims else dims[0]


def _sizes(results, dim):
    return sorted({r["size"] for r in results if r["dim"] == dim})


def _series(results, method, dim):
    """(n, train ms, peak MiB) of the cases of `method` at d that ran, by n, and
    (n, status) of those that ran out of memory or time."""
    ran, failed = [], []
    for result in results:
        if result["method"] != method or result["dim"] != dim:
            continue
        n = result["size"] ** 2
        if result["status"] == "ok":
            ran.append((n, result["train_s"] * 1e3, max(result["peak_bytes"], 1) / MIB))
        elif result["status"] in FAILURE_MARKERS:
            failed.append((n, result["status"]))
    return sorted(ran), sorted(failed)


def _line(axis, xs, ys, label, colour, marker, **style):
    """One series with its label at the line's end (gid "end label", for
    `_spread_end_labels`)."""
    axis.plot(xs, ys, color=colour, marker=marker, label=label, **style)
    text = axis.annotate(label, (xs[-1], ys[-1]), xytext=(6, 0), textcoords="offset points",
                         color=colour, fontsize=7, va="center", gid="end label")
    text.set_clip_on(False)  # the label may reach past the panel's right edge


def _spread_end_labels(axis, gap_points=LABEL_GAP_POINTS):
    """Moves the labels at the lines' ends apart vertically, each by as little as
    lets neighbours keep `gap_points` between them (after the limits are set)."""
    labels = [text for text in axis.texts if text.get_gid() == "end label"]
    points_per_pixel = 72 / axis.figure.dpi
    heights = sorted((axis.transData.transform(text.xy)[1] * points_per_pixel, index)
                     for index, text in enumerate(labels))
    placed = []
    for height, index in heights:
        placed.append((max(height, placed[-1][0] + gap_points) if placed else height, index))
    middle_shift = (sum(p for p, _ in placed) - sum(h for h, _ in heights)) / len(placed or [1])
    for (height, _), (position, index) in zip(heights, placed):
        labels[index].xyann = (6, position - height - middle_shift)


def _failures(axis, failed, label, colour):
    """Cases that ran out of memory or time: a marker at the top edge, named; a
    second one at the same n goes below the first."""
    for n, status in failed:
        below = sum(1 for line in axis.get_lines() if line.get_gid() and line.get_xdata()[0] == n)
        height = 1.0 - FAILURE_STEP * below
        axis.plot([n], [height], transform=axis.get_xaxis_transform(), clip_on=False,
                  linestyle="none", marker=FAILURE_MARKERS[status], markersize=9,
                  color=colour, gid=f"{status}: {label}")
        axis.annotate(status, (n, height), xycoords=axis.get_xaxis_transform(),
                      xytext=(7, -1), textcoords="offset points", va="top",
                      color=colour, fontsize=6, clip_on=False)


def _log_axes(axis, sizes, ylabel, title):
    """Log axes, n ticked at the image sides that ran."""
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    axis.set_xticks([size**2 for size in sizes], [f"{size}x{size}" for size in sizes])
    axis.minorticks_off()
    axis.set_xlabel("image s x s (n = s² positions)")
    axis.set_ylabel(ylabel)
    axis.set_title(title, fontsize=9, pad=10)  # above the failure markers
    axis.grid(True, alpha=0.25)
    axis.margins(x=0.3)  # room for the labels at the lines' ends


def _laid_out(figure):
    """`figure` laid out, then the end labels of each panel spread (they need the
    final limits and sizes)."""
    figure.tight_layout()
    for axis in figure.axes:
        _spread_end_labels(axis)
    return figure


def headline_race_speeds(races, dim):
    """{n: (median, slowest, fastest round)} of attention's step over the global
    layer's in the headline races at d = `dim`."""
    speeds = {}
    for race in races:
        if (report.purpose(race) == "headline" and race["status"] == "ok"
                and race["dim"] == dim and BASELINE in race["rounds_s"]):
            speeds[race["size"] ** 2] = report.ratio_spread(race, BASELINE, race["methods"][0])
    return speeds


def headline_figure(record):
    """Train time, peak memory and the ratios against attention, against n, of
    the `HEADLINE` methods at d = `HEADLINE_DIM` (the global layer's speed also
    from its headline races, with their spread, where the record has them); a
    matplotlib Figure, or None when the record has no layer case."""
    results = record["results"]
    dim = _layer_dim(results)
    if dim is None:
        return None
    import matplotlib.pyplot as plt

    figure, (time_axis, memory_axis, ratio_axis) = plt.subplots(1, 3, figsize=(17, 5.2))
    baseline, _ = _series(results, BASELINE, dim)
    baseline = {n: (ms, mib) for n, ms, mib in baseline}
    for method, (label, colour, marker) in HEADLINE.items():
        ran, failed = _series(results, method, dim)
        wide = method in (BASELINE, "paper")
        style = dict(linewidth=2.4 if wide else 1.6, linestyle="--" if wide else "-")
        if ran:
            ns = [n for n, _, _ in ran]
            _line(time_axis, ns, [ms for _, ms, _ in ran], label, colour, marker, **style)
            _line(memory_axis, ns, [mib for _, _, mib in ran], label, colour, marker, **style)
        for axis in (time_axis, memory_axis):
            _failures(axis, failed, label, colour)
        shared = [(n, baseline[n][0] / ms, mib / baseline[n][1])
                  for n, ms, mib in ran if n in baseline]
        if method == BASELINE or not shared:
            continue
        ns = [n for n, _, _ in shared]
        _line(ratio_axis, ns, [speed for _, speed, _ in shared], f"{label}: speed", colour,
              marker, linewidth=1.6)
        ratio_axis.plot(ns, [memory for _, _, memory in shared], color=colour, marker=marker,
                        markerfacecolor="none", linestyle=":", linewidth=1.2,
                        label=f"{label}: memory")
        if method == "lambda/global/auto":  # the ratios the README quotes, as numbers
            raced = headline_race_speeds(record.get("races", []), dim)
            for n, speed, memory in shared:
                ratio_axis.annotate(f"{memory:.2f}", (n, memory), xytext=(0, -11),
                                    textcoords="offset points", ha="center", fontsize=7,
                                    color=colour)
                if n not in raced:
                    ratio_axis.annotate(f"{speed:.2f}x", (n, speed), xytext=(0, 6),
                                        textcoords="offset points", ha="center", fontsize=7,
                                        color=colour)
                    continue
                # The race's ratio, with the spread of its rounds: the one to quote.
                median, low, high = raced[n]
                ratio_axis.errorbar([n], [median], yerr=[[median - low], [high - median]],
                                    color=colour, marker="_", markersize=10, capsize=3,
                                    linewidth=1.0, label="_race")
                ratio_axis.annotate(f"{median:.2f}x race", (n, high), xytext=(0, 5),
                                    textcoords="offset points", ha="center", fontsize=7,
                                    color=colour)
    ratio_axis.axhline(1.0, color="#222222", linewidth=1.0)
    figure.suptitle(f"Lambda layers against attention as n grows — {record_title(record)}",
                    fontsize=9)
    sizes = _sizes(results, dim)
    _log_axes(time_axis, sizes, "train step (ms)", f"train step (forward + backward), d = {dim}")
    _log_axes(memory_axis, sizes, "peak memory (MiB)", f"peak memory of the train step, d = {dim}")
    _log_axes(ratio_axis, sizes, "ratio against attention",
              "against attention: speed (solid, > 1 faster; bars: races), memory (dotted)")
    return _laid_out(figure)


def implementations_figure(record):
    """Train time against n of every implementation of each context (einsum,
    conv, depthwise, fft, dft, auto), one panel a context, at d = `HEADLINE_DIM`; a
    Figure, or None when the record runs no kernel by name."""
    results = record["results"]
    dim = _layer_dim(results)
    methods = {r["method"] for r in results}
    # contexts with a kernel of their own in the run (auto alone compares nothing)
    contexts = [c for c in CONTEXTS if any(f"lambda/{c}/{i}" in methods for i in KERNELS)]
    if dim is None or not contexts:
        return None
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(contexts), figsize=(5.4 * len(contexts), 4.4),
                                squeeze=False)
    for axis, context in zip(axes[0], contexts):
        for implementation in IMPLEMENTATIONS:
            colour, marker = KERNEL_STYLES[implementation]
            ran, failed = _series(results, f"lambda/{context}/{implementation}", dim)
            auto = implementation == "auto"
            if ran:
                _line(axis, [n for n, _, _ in ran], [ms for _, ms, _ in ran], implementation,
                      colour, marker, linewidth=4 if auto else 1.4, alpha=0.45 if auto else 1)
            _failures(axis, failed, implementation, colour)
    figure.suptitle(f"Which kernel `auto` runs, and its rivals — {record_title(record)}",
                    fontsize=9)
    for axis, context in zip(axes[0], contexts):
        _log_axes(axis, _sizes(results, dim), "train step (ms)",
                  f"{context}: implementations, d = {dim}")
    return _laid_out(figure)


def draw(record, stem):
    """Writes STEM.png (headline) and STEM-implementations.png from `record`;
    returns the paths written (none without layer cases)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for path, make in ((f"{stem}.png", headline_figure),
                       (f"{stem}-implementations.png", implementations_figure)):
        figure = make(record)
        if figure is not None:
            figure.savefig(path, dpi=110)
            plt.close(figure)
            written.append(path)
    return written


def main(paths):
    for path in paths:
        with open(path) as file:
            record = json.load(file)
        print("written:", ", ".join(draw(record, os.path.splitext(path)[0])) or "nothing")


if __name__ == "__main__":
    main(sys.argv[1:])
