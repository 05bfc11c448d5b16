"""What `keras-lambda bench` makes of its measurements: ratios against
MultiHeadAttention, the issue's targets, a markdown report and a plot."""

import math
import statistics

from keras_lambda.bench import (
    BASELINE,
    MODEL_BASELINE,
    RACE_WITHIN,
    SLOWER_LIMIT,
    explicit_implementations,
)

GIB = 2**30
MIB = 2**20


def _key(result):
    return (result["size"], result["dim"], result["batch"])


def _find(results, method, size, dim=None):
    for result in results:
        if result["method"] == method and result["size"] == size and (
            dim is None or result["dim"] == dim
        ):
            return result
    return None


def _ok(result):
    return result is not None and result["status"] == "ok"


def with_ratios(results):
    """Adds `speedup` (attention's train time / this one's) and `memory_ratio`
    (this peak / attention's) to every layer result whose baseline ran."""
    baselines = {_key(r): r for r in results if r["method"] == BASELINE}
    models = {r["size"]: r for r in results if r["method"] == MODEL_BASELINE}
    rows = []
    for result in results:
        row = dict(result)
        base = models.get(row["size"]) if row["method"].startswith("model/") else baselines.get(
            _key(row)
        )
        if _ok(row) and _ok(base):
            row["speedup"] = base["train_s"] / row["train_s"]
            row["memory_ratio"] = row["peak_bytes"] / base["peak_bytes"]
        rows.append(row)
    return rows


def _cell(row):
    if row["status"] != "ok":
        return [row["status"]] + [""] * 5
    speedup = f"{row['speedup']:.2f}x" if "speedup" in row else "–"
    memory = f"{row['memory_ratio']:.2f}" if "memory_ratio" in row else "–"
    return [
        f"{row['train_s'] * 1e3:,.0f}",
        speedup,
        f"{row['infer_s'] * 1e3:,.0f}",
        f"{row['peak_bytes'] / MIB:,.0f}",
        memory,
        row.get("implementation", ""),
    ]


def layer_table(rows):
    """Markdown table of the layer cases, one row per (d, s, method)."""
    header = (
        "| d | s | method | train ms | speed vs MHA | infer ms | peak MiB | memory vs MHA | auto chose |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---|\n"
    )
    lines = [
        f"| {row['dim']} | {row['size']} | {row['method']} | " + " | ".join(_cell(row)) + " |"
        for row in rows
        if not row["method"].startswith("model/")
    ]
    return header + "\n".join(lines) + "\n"


SUMMARY_METHODS = ("lambda/global/auto", "lambda/r23/auto", "lambda/r7/auto", "lambda/content",
                   BASELINE, "paper")


def summary_table(results, dim=128):
    """Sizes down, methods across: train ms and peak MiB at one d."""
    present = [m for m in SUMMARY_METHODS if any(r["method"] == m and r["dim"] == dim
                                                  for r in results)]
    sizes = sorted({r["size"] for r in results if r["dim"] == dim})
    if not present or not sizes:
        return ""
    lines = [
        f"| s (n = s²), d = {dim} | " + " | ".join(present) + " |",
        "|---" + "|---:" * len(present) + "|",
    ]
    for size in sizes:
        cells = []
        for method in present:
            result = _find(results, method, size, dim)
            if result is None:
                cells.append("")
            elif _ok(result):
                cells.append(f"{result['train_s'] * 1e3:,.0f} ms · {result['peak_bytes'] / MIB:,.0f} MiB")
            else:
                cells.append(result["status"])
        lines.append(f"| {size}x{size} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def model_table(rows):
    lines = []
    for row in rows:
        if not row["method"].startswith("model/"):
            continue
        if row["status"] != "ok":
            lines.append(f"| {row['method']} | {row['size']} | {row['batch']} | {row['status']} | | |")
            continue
        ratio = f"{row['speedup']:.2f}x" if "speedup" in row else "–"
        lines.append(
            f"| {row['method']} | {row['size']} | {row['batch']} | {row['images_per_s']:.1f} | "
            f"{ratio} | {row['params'] / 1e6:.1f}M |"
        )
    if not lines:
        return ""
    return (
        "| model | px | batch | train images/s | vs ResNet50 | parameters |\n"
        "|---|---|---|---:|---:|---:|\n" + "\n".join(lines) + "\n"
    )


def _race_verdict(race):
    """(excess, fastest rival) of the kernel auto (the race's first method)
    picked over the fastest other kernel in a race. auto runs the kernel it
    picks, so its rounds and those of that kernel's own method are pooled."""
    auto = race["methods"][0]
    twin = f"{auto.rsplit('/', 1)[0]}/{race['implementation'][auto]}"
    picked = statistics.median(race["rounds_s"][auto] + race["rounds_s"].get(twin, []))
    rivals = {m: t for m, t in race["train_s"].items() if m not in (auto, twin)}
    fastest = min(rivals, key=rivals.get)
    return picked / rivals[fastest] - 1, fastest


def _race_of(auto, races):
    for race in races:
        if (race["status"] == "ok" and race["methods"][0] == auto["method"]
                and (race["size"], race["dim"], race["batch"])
                == (auto["size"], auto["dim"], auto["batch"])):
            return race
    return None


def _model_race(races):
    for race in races:
        if race["status"] == "ok" and race["methods"][0] == "model/lambda_resnet50":
            return race
    return None


def _auto_excess(auto, results, races):
    """How much slower `auto` is than the fastest explicit implementation of its
    context, size and d: (excess, auto, fastest method, how it was judged), or
    None. From their race when they raced (one process, interleaved rounds);
    else auto's pick was the only implementation within reach of the fastest,
    judged by its own case (auto runs that same kernel)."""
    if not (auto["method"].endswith("/auto") and _ok(auto)):
        return None
    race = _race_of(auto, races)
    if race is not None:
        excess, fastest = _race_verdict(race)
        return excess, auto, fastest, "race"
    context = auto["method"].rsplit("/", 1)[0]
    explicit = explicit_implementations(results, context, auto["size"], auto["dim"],
                                        auto["batch"])
    if not explicit:
        return None
    fastest = min(explicit, key=lambda r: r["train_s"])
    picked = _find(results, f"{context}/{auto.get('implementation')}", auto["size"], auto["dim"])
    timed = picked if _ok(picked) else auto
    return timed["train_s"] / fastest["train_s"] - 1, auto, fastest["method"], "own cases"


def race_table(races):
    """Markdown table of the races: each method's median train step, and auto
    against the fastest of the others."""
    lines = []
    for race in races:
        if race["methods"][0].startswith("model/"):
            continue
        where = f"| {race['methods'][0].rsplit('/', 1)[0]} | {race['size']} | {race['dim']} |"
        if race["status"] != "ok":
            lines.append(f"{where} | {race['status']} | |")
            continue
        excess, fastest = _race_verdict(race)
        lines.append(
            f"{where} {race['implementation'].get(race['methods'][0], '')} | "
            + ", ".join(f"{m.rsplit('/', 1)[1]} {t * 1e3:,.0f}" for m, t in race["train_s"].items())
            + f" | {excess * 100:+.0f}% vs {fastest.rsplit('/', 1)[1]} |"
        )
    if not lines:
        return ""
    return (
        "| context | s | d | auto picks | median train ms | auto's kernel vs fastest other |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(lines) + "\n"
    )


def targets(results, memory_limit_bytes=None, races=None):
    """The issue's six targets: [(target, measured, met or None if not measured)].
    Target 5 is judged from `races` where auto raced (see `_auto_excess`)."""
    checks = []
    auto64 = _find(results, "lambda/global/auto", 64, 128)
    mha64 = _find(results, BASELINE, 64, 128)
    if _ok(auto64) and _ok(mha64):
        speedup = mha64["train_s"] / auto64["train_s"]
        memory = auto64["peak_bytes"] / mha64["peak_bytes"]
        checks.append(("1. global, 64x64, d=128: >= 2x faster than MHA, <= 1/4 of its memory",
                       f"{speedup:.2f}x faster, {memory:.2f} of its peak memory",
                       speedup >= 2 and memory <= 0.25))
    else:
        checks.append(("1. global, 64x64, d=128 vs MHA", "not measured", None))
    auto128 = _find(results, "lambda/global/auto", 128, 128)
    mha128 = _find(results, BASELINE, 128, 128)
    if _ok(auto128) and mha128 is not None:
        used = auto128["process_peak_bytes"]
        if _ok(mha128):
            mha_text, mha_over = f"MHA peak {mha128['process_peak_bytes'] / GIB:.1f} GiB", (
                mha128["process_peak_bytes"] > 24 * GIB
            )
        else:
            limit = f" under a {memory_limit_bytes / GIB:.0f} GiB limit" if memory_limit_bytes else ""
            scores = 8 * 4 * (128 * 128) ** 2 * 4 / GIB  # b·h·n² float32 attention scores
            mha_text = (f"MHA {mha128['status']}{limit} (its attention scores alone: "
                        f"{scores:.0f} GiB)")
            mha_over = mha128["status"] == "OOM" and scores > 24
        checks.append(("2. global, 128x128: trains within 8 GiB; MHA needs > 24 GiB",
                       f"lambda process peak {used / GIB:.1f} GiB; {mha_text}",
                       used <= 8 * GIB and mha_over))
    else:
        checks.append(("2. global, 128x128 vs MHA", "not measured", None))
    paper64 = _find(results, "paper", 64, 128)
    if _ok(auto64) and paper64 is not None:
        if _ok(paper64):
            speedup = paper64["train_s"] / auto64["train_s"]
            checks.append(("3. >= 3x faster than the paper's pseudo-code at 64x64",
                           f"{speedup:.2f}x", speedup >= 3))
        else:
            checks.append(("3. >= 3x faster than the paper's pseudo-code at 64x64",
                           f"pseudo-code {paper64['status']}", True))
    else:
        checks.append(("3. vs the paper's pseudo-code at 64x64", "not measured", None))
    slopes = []
    for scope in (7, 23):
        small = _find(results, f"lambda/r{scope}/auto", 32, 128)
        large = _find(results, f"lambda/r{scope}/auto", 128, 128)
        if _ok(small) and _ok(large):
            slope = math.log(large["peak_bytes"] / small["peak_bytes"]) / math.log(16)
            slopes.append((scope, slope))
    if slopes:
        checks.append(("4. lambda convolution memory: log-log slope <= 1.1 from 32² to 128²",
                       ", ".join(f"r={scope}: {slope:.2f}" for scope, slope in slopes),
                       all(slope <= 1.1 for _, slope in slopes)))
    else:
        checks.append(("4. lambda convolution memory slope", "not measured", None))
    worst = None
    for auto in results:
        judged = _auto_excess(auto, results, races or [])
        if judged and (worst is None or judged[0] > worst[0]):
            worst = judged
    if worst:
        excess, auto, fastest, how = worst
        checks.append(("5. implementation='auto' within 10% of the fastest, every configuration",
                       f"worst: {auto['method']} s={auto['size']} d={auto['dim']} picks "
                       f"{auto.get('implementation')}, {excess * 100:+.0f}% vs "
                       f"{fastest.rsplit('/', 1)[1]} ({how})", excess <= 0.10))
    else:
        checks.append(("5. auto vs the fastest implementation", "not measured", None))
    lambda50 = _find(results, "model/lambda_resnet50", 128)
    resnet50 = _find(results, MODEL_BASELINE, 128)
    model_race = _model_race(races or [])
    if model_race is not None:
        times = model_race["train_s"]
        ratio = times[MODEL_BASELINE] / times["model/lambda_resnet50"]  # same batch
        checks.append(("6. LambdaResNet-50 >= 0.8x ResNet50's images/s at 128 px",
                       f"{ratio:.2f}x (race)", ratio >= 0.8))
    elif _ok(lambda50) and _ok(resnet50):
        ratio = lambda50["images_per_s"] / resnet50["images_per_s"]
        checks.append(("6. LambdaResNet-50 >= 0.8x ResNet50's images/s at 128 px",
                       f"{ratio:.2f}x (own cases)", ratio >= 0.8))
    else:
        checks.append(("6. LambdaResNet-50 vs ResNet50", "not measured", None))
    return checks


def targets_table(checks):
    marks = {True: "met", False: "**not met**", None: "not measured"}
    lines = [f"| {name} | {measured} | {marks[met]} |" for name, measured, met in checks]
    return "| target | measured | |\n|---|---|---|\n" + "\n".join(lines) + "\n"


def markdown(results, machine, command, memory_limit_bytes=None, races=None):
    rows = with_ratios(results)
    races = races or []
    parts = [
        "# keras-lambda bench\n",
        f"Machine: {machine}\n",
        f"Command: `{command}`\n",
        "Train step = forward + backward (models: + SGD update), inference = forward; "
        "median of the repeats after one warm-up call, each case in a fresh process. "
        "Peak memory: growth of resident memory over the train steps (GPU: TensorFlow's "
        "peak allocation). Speed vs MHA = MultiHeadAttention's train time / this one's "
        "(same s, d, batch, same run); memory vs MHA = this peak / MHA's. "
        f"skipped: not run, because the same method was >= {SLOWER_LIMIT}x slower than "
        "another implementation of its context at the previous size (reasons in the JSON).\n",
        "## Targets\n",
        targets_table(targets(results, memory_limit_bytes, races)),
    ]
    if any(not row["method"].startswith("model/") for row in rows):
        parts += [
            "## Summary: train step and peak memory\n",
            summary_table(results),
            "## Layers (batch 8, h = 4, k = 16, u = 1)\n",
            layer_table(rows),
        ]
    lambda_races = race_table(races)
    if lambda_races:
        parts += [
            "## auto against the implementations within reach (races)\n",
            f"Where `auto`'s pick was not ahead of every other implementation by "
            f"{RACE_WITHIN}x, `auto` raced each implementation within {RACE_WITHIN}x of the "
            "fastest in one process: every round times each method's train step (short steps "
            "several in a row), in rotating order; medians over the rounds. `auto` runs the "
            "kernel it picks, so its rounds and that kernel's pool into the last column. "
            "Target 5 is judged from these.\n",
            lambda_races,
        ]
    models = model_table(rows)
    if models:
        parts += ["## Models (train step, SGD)\n", models]
    model_race = _model_race(races)
    if model_race is not None:
        times = model_race["train_s"]
        parts.append(
            f"Raced in one process ({model_race['rounds']} interleaved rounds, medians): "
            + ", ".join(f"{m} {t * 1e3:,.0f} ms a step ({model_race['batch'] / t:.1f} images/s)"
                        for m, t in times.items())
            + f"; LambdaResNet-50 at {times[MODEL_BASELINE] / times['model/lambda_resnet50']:.2f}x "
            "ResNet50's images/s. Target 6 is judged from this race.\n"
        )
    return "\n".join(parts)


def plot(results, path, machine):
    """Train time and peak memory against resolution, log scales, one line a
    method. Returns False, writing nothing, when no layer case ran."""
    layer_results = [r for r in results if not r["method"].startswith("model/") and _ok(r)]
    dims = sorted({r["dim"] for r in layer_results})
    if not dims:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(dims), 2, figsize=(12, 4.5 * len(dims)), squeeze=False)
    methods = sorted({r["method"] for r in layer_results})
    for row, dim in enumerate(dims):
        for method in methods:
            points = sorted(
                (r["size"], r["train_s"], r["peak_bytes"])
                for r in layer_results
                if r["method"] == method and r["dim"] == dim
            )
            if not points:
                continue
            sizes = [p[0] ** 2 for p in points]
            style = dict(marker="o", label=method,
                         linestyle="--" if method in (BASELINE, "paper") else "-",
                         linewidth=2.5 if method in (BASELINE, "paper") else 1.2)
            axes[row][0].plot(sizes, [p[1] * 1e3 for p in points], **style)
            axes[row][1].plot(sizes, [max(p[2], 1) / MIB for p in points], **style)
        for column, label in enumerate(("train step (ms)", "peak memory (MiB)")):
            axis = axes[row][column]
            axis.set_xscale("log")
            axis.set_yscale("log")
            axis.set_xlabel("positions n = s²")
            axis.set_ylabel(label)
            axis.set_title(f"d = {dim}, batch 8: {label}")
            axis.grid(True, which="both", alpha=0.3)
    axes[0][1].legend(fontsize=7, loc="upper left")
    figure.suptitle(f"keras-lambda bench: {machine}", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
