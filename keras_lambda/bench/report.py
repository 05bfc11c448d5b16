"""What `keras-lambda bench` makes of its measurements: ratios against
MultiHeadAttention, tables and a markdown report (the figures: `figures`)."""

import statistics

from keras_lambda.bench.methods import BASELINE, HEADLINE_RIVALS, MODEL_BASELINE, Method
from keras_lambda.bench.policy import MODEL_RACER, RACE_WITHIN, SLOWER_LIMIT

MIB = 2**20


def is_model(result):
    return Method.parse(result["method"]).kind == "model"


def key(result):
    return (result["size"], result["dim"], result["batch"])


def find(results, method, size, dim=None):
    """The result of `method` at `size` (and d), or None."""
    for result in results:
        if result["method"] == method and result["size"] == size and (
            dim is None or result["dim"] == dim
        ):
            return result
    return None


def ok(result):
    return result is not None and result["status"] == "ok"


def with_ratios(results):
    """Adds `speedup` (attention's train time / this one's) and `memory_ratio`
    (this peak / attention's) to every layer result whose baseline ran."""
    baselines = {key(r): r for r in results if r["method"] == BASELINE}
    models = {r["size"]: r for r in results if r["method"] == MODEL_BASELINE}
    rows = []
    for result in results:
        row = dict(result)
        base = models.get(row["size"]) if is_model(row) else baselines.get(
            key(row)
        )
        if ok(row) and ok(base):
            row["speedup"] = base["train_s"] / row["train_s"]
            row["memory_ratio"] = row["peak_bytes"] / base["peak_bytes"]
        rows.append(row)
    return rows


def _cell(row, compiled):
    if row["status"] != "ok":
        return [row["status"]] + [""] * (6 + compiled)
    speedup = f"{row['speedup']:.2f}x" if "speedup" in row else "–"
    memory = f"{row['memory_ratio']:.2f}" if "memory_ratio" in row else "–"
    cells = [
        f"{row['train_s'] * 1e3:,.0f}",
        speedup,
        f"{row['infer_s'] * 1e3:,.0f}",
        f"{row['peak_bytes'] / MIB:,.0f}",
        memory,
    ]
    if compiled:
        cells.append(f"{row['compiled_bytes'] / MIB:,.0f}" if "compiled_bytes" in row else "–")
    return cells + [row.get("implementation", "")]


def layer_table(rows):
    """Markdown table of the layer cases, one row per (d, s, method); with XLA's
    compiled memory (JAX) where the run has it."""
    compiled = any("compiled_bytes" in row for row in rows)
    extra = (" compiled MiB |", "---:|") if compiled else ("", "")
    header = (
        "| d | s | method | train ms | speed vs MHA | infer ms | peak MiB | memory vs MHA |"
        f"{extra[0]} auto chose |\n"
        f"|---|---|---|---:|---:|---:|---:|---:|{extra[1]}---|\n"
    )
    lines = [
        f"| {row['dim']} | {row['size']} | {row['method']} | "
        + " | ".join(_cell(row, compiled)) + " |"
        for row in rows
        if not is_model(row)
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
            result = find(results, method, size, dim)
            if result is None:
                cells.append("")
            elif ok(result):
                cells.append(f"{result['train_s'] * 1e3:,.0f} ms · {result['peak_bytes'] / MIB:,.0f} MiB")
            else:
                cells.append(result["status"])
        lines.append(f"| {size}x{size} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def model_table(rows):
    lines = []
    for row in rows:
        if not is_model(row):
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


def race_verdict(race):
    """(excess, fastest rival) of the kernel auto (the race's first method)
    picked over the fastest other kernel in a race. auto runs the kernel it
    picks, so its rounds and those of that kernel's own method are pooled."""
    auto = race["methods"][0]
    twin = f"{Method.parse(auto).family}/{race['implementation'][auto]}"
    picked = statistics.median(race["rounds_s"][auto] + race["rounds_s"].get(twin, []))
    rivals = {m: t for m, t in race["train_s"].items() if m not in (auto, twin)}
    fastest = min(rivals, key=rivals.get)
    return picked / rivals[fastest] - 1, fastest


def purpose(race):
    """A race record's `Race.purpose` (records written before it existed: "models"
    or "auto", by their first method)."""
    if "purpose" in race:
        return race["purpose"]
    return "models" if Method.parse(race["methods"][0]).kind == "model" else "auto"


def race_of(auto, races):
    """The race that judged `auto` (a result of an auto method), or None."""
    for race in races:
        if (race["status"] == "ok" and purpose(race) == "auto"
                and race["methods"][0] == auto["method"]
                and (race["size"], race["dim"], race["batch"])
                == (auto["size"], auto["dim"], auto["batch"])):
            return race
    return None


def model_race(races):
    """The race of LambdaResNet-50 against ResNet50, or None."""
    for race in races:
        if race["status"] == "ok" and race["methods"][0] == MODEL_RACER:
            return race
    return None


def race_table(races):
    """Markdown table of the races: each method's median train step, and auto
    against the fastest of the others."""
    lines = []
    for race in races:
        if purpose(race) != "auto":
            continue
        where = f"| {Method.parse(race['methods'][0]).family} | {race['size']} | {race['dim']} |"
        if race["status"] != "ok":
            lines.append(f"{where} | {race['status']} | |")
            continue
        excess, fastest = race_verdict(race)
        lines.append(
            f"{where} {race['implementation'].get(race['methods'][0], '')} | "
            + ", ".join(f"{Method.parse(m).implementation} {t * 1e3:,.0f}"
                        for m, t in race["train_s"].items())
            + f" | {excess * 100:+.0f}% vs {Method.parse(fastest).implementation} |"
        )
    if not lines:
        return ""
    return (
        "| context | s | d | auto picks | median train ms | auto's kernel vs fastest other |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(lines) + "\n"
    )


def ratio_spread(race, slower, faster):
    """`slower`'s step time over `faster`'s, taken round by round (each round times
    both back to back): (median, lowest, highest) over the rounds."""
    ratios = sorted(s / f for s, f in zip(race["rounds_s"][slower], race["rounds_s"][faster]))
    return statistics.median(ratios), ratios[0], ratios[-1]


def race_summary(seconds, pairs):
    """Lines for a race's printout (the benchmarks/ scripts): each method's median
    step, then each (faster, slower) pair's `ratio_spread`. seconds: {method: the
    rounds' step times}, as `measure.race_rounds` gives them."""
    lines = []
    for name, rounds in seconds.items():
        milliseconds = statistics.median(rounds) * 1e3
        lines.append(f"{name}: {milliseconds:,.{1 if milliseconds < 100 else 0}f} ms a step")
    for faster, slower in pairs:
        middle, low, high = ratio_spread({"rounds_s": seconds}, slower, faster)
        lines.append(f"{faster} vs {slower}: {middle:.2f}x ({low:.2f}-{high:.2f})")
    return lines


def headline_table(races):
    """Markdown table of the headline races: the global layer's train step against
    attention's and the paper's, as the median and range of the per-round ratios."""
    lines = []
    for race in races:
        if purpose(race) != "headline":
            continue
        where = f"| {race['size']}x{race['size']} | {race['dim']} |"
        if race["status"] != "ok":
            lines.append(f"{where} {race['status']} | | | | |")
            continue
        layer, times = race["methods"][0], race["train_s"]
        cells = [f"{times[layer] * 1e3:,.0f} ms ({race['implementation'].get(layer, '')})"]
        for rival in HEADLINE_RIVALS:
            if rival not in times:
                cells += ["not run", ""]
                continue
            median, low, high = ratio_spread(race, rival, layer)
            cells += [f"{times[rival] * 1e3:,.0f} ms", f"**{median:.2f}x** ({low:.2f}-{high:.2f})"]
        lines.append(f"{where} " + " | ".join(cells) + " |")
    if not lines:
        return ""
    return (
        "| s | d | global lambda | attention | speed vs attention | paper | speed vs paper |\n"
        "|---|---|---:|---:|---:|---:|---:|\n" + "\n".join(lines) + "\n"
    )


def markdown(results, machine, command, races=None):
    rows = with_ratios(results)
    races = races or []
    parts = [
        "# keras-lambda bench\n",
        f"Machine: {machine}\n",
        f"Command: `{command}`\n",
        "Train step = forward + backward (models: + SGD update), inference = forward; "
        "median of the repeats after one warm-up call, each case in a fresh process. "
        "Peak memory: growth of resident memory over the train steps on a CPU, the "
        "device's peak allocation on a GPU; on JAX also XLA's compiled memory analysis of "
        "the train step (deterministic). Speed vs MHA = MultiHeadAttention's train time / this one's "
        "(same s, d, batch, same run); memory vs MHA = this peak / MHA's. "
        f"skipped: not run, because the same method was >= {SLOWER_LIMIT}x slower than "
        "another implementation of its context at the previous size (reasons in the JSON).\n",
    ]
    if any(not is_model(row) for row in rows):
        parts += [
            "## Summary: train step and peak memory\n",
            summary_table(results),
            "## Layers (batch 8, h = 4, k = 16, u = 1)\n",
            layer_table(rows),
        ]
    headline = headline_table(races)
    if headline:
        parts += [
            "## Headline ratios (races)\n",
            "The global lambda layer (`implementation='auto'`) raced attention and the "
            "paper's pseudo-code in one process: every round times each method's train step "
            "(short steps several in a row), in rotating order. Speed = the other's step time "
            "/ the lambda layer's, per round: the median and, in brackets, the slowest and "
            "fastest round. These, not the separate cases below, are the ratios to quote.\n",
            headline,
        ]
    lambda_races = race_table(races)
    if lambda_races:
        parts += [
            "## auto against the implementations within reach (races)\n",
            f"Where `auto`'s pick was not ahead of every other implementation by "
            f"{RACE_WITHIN}x, `auto` raced each implementation within {RACE_WITHIN}x of the "
            "fastest in one process: every round times each method's train step (short steps "
            "several in a row), in rotating order; medians over the rounds. `auto` runs the "
            "kernel it picks, so its rounds and that kernel's pool into the last column.\n",
            lambda_races,
        ]
    models = model_table(rows)
    if models:
        parts += ["## Models (train step, SGD)\n", models]
    raced = model_race(races)
    if raced is not None:
        times = raced["train_s"]
        _, low, high = ratio_spread(raced, MODEL_BASELINE, MODEL_RACER)
        parts.append(
            f"Raced in one process ({raced['rounds']} interleaved rounds, medians): "
            + ", ".join(f"{m} {t * 1e3:,.0f} ms a step ({raced['batch'] / t:.1f} images/s)"
                        for m, t in times.items())
            + f"; LambdaResNet-50 at {times[MODEL_BASELINE] / times[MODEL_RACER]:.2f}x "
            f"ResNet50's images/s (rounds {low:.2f}-{high:.2f}x).\n"
        )
    return "\n".join(parts)
