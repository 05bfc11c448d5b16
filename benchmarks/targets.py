"""The six targets of the first performance issue, judged from a recorded run.

    python benchmarks/targets.py benchmarks/history/bench-cpu.json     # prints the table

Kept out of the package (they are an issue's, not a feature's); `keras-lambda
bench` writes the records this reads. Target 5 is judged from the race where
`auto` raced, target 6 from the LambdaResNet-50 race, where they ran.
"""

import json
import math
import sys

from keras_lambda.bench import BASELINE, MODEL_BASELINE, Method, report
from keras_lambda.bench.policy import MODEL_RACER, explicit_implementations

GIB = 2**30
LAMBDA_WITHIN = 8 * GIB  # target 2: the global layer's process peak at 128x128
MHA_NEEDS_MORE_THAN = 24 * GIB  # target 2: attention's need at 128x128


def auto_excess(auto, results, races):
    """How much slower `auto` is than the fastest explicit implementation of its
    context, size and d: (excess, auto, fastest method, how it was judged), or
    None. From their race when they raced (one process, interleaved rounds);
    else auto's pick was the only implementation within reach of the fastest,
    judged by its own case (auto runs that same kernel)."""
    if not (Method.parse(auto["method"]).is_auto and report.ok(auto)):
        return None
    race = report.race_of(auto, races)
    if race is not None:
        excess, fastest = report.race_verdict(race)
        return excess, auto, fastest, "race"
    context = Method.parse(auto["method"]).family
    explicit = explicit_implementations(results, context, auto["size"], auto["dim"],
                                        auto["batch"])
    if not explicit:
        return None
    fastest = min(explicit, key=lambda r: r["train_s"])
    picked = report.find(results, f"{context}/{auto.get('implementation')}", auto["size"], auto["dim"])
    timed = picked if report.ok(picked) else auto
    return timed["train_s"] / fastest["train_s"] - 1, auto, fastest["method"], "own cases"




def targets(results, memory_limit_bytes=None, races=None):
    """The issue's six targets: [(target, measured, met or None if not measured)].
    Target 5 is judged from `races` where auto raced (see `_auto_excess`)."""
    checks = []
    auto64 = report.find(results, "lambda/global/auto", 64, 128)
    mha64 = report.find(results, BASELINE, 64, 128)
    if report.ok(auto64) and report.ok(mha64):
        speedup = mha64["train_s"] / auto64["train_s"]
        memory = auto64["peak_bytes"] / mha64["peak_bytes"]
        checks.append(("1. global, 64x64, d=128: >= 2x faster than MHA, <= 1/4 of its memory",
                       f"{speedup:.2f}x faster, {memory:.2f} of its peak memory",
                       speedup >= 2 and memory <= 0.25))
    else:
        checks.append(("1. global, 64x64, d=128 vs MHA", "not measured", None))
    auto128 = report.find(results, "lambda/global/auto", 128, 128)
    mha128 = report.find(results, BASELINE, 128, 128)
    if report.ok(auto128) and mha128 is not None:
        used = auto128["process_peak_bytes"]
        if report.ok(mha128):
            mha_text, mha_over = f"MHA peak {mha128['process_peak_bytes'] / GIB:.1f} GiB", (
                mha128["process_peak_bytes"] > MHA_NEEDS_MORE_THAN
            )
        else:
            limit = f" under a {memory_limit_bytes / GIB:.0f} GiB limit" if memory_limit_bytes else ""
            scores = 8 * 4 * (128 * 128) ** 2 * 4 / GIB  # b·h·n² float32 attention scores
            mha_text = (f"MHA {mha128['status']}{limit} (its attention scores alone: "
                        f"{scores:.0f} GiB)")
            mha_over = mha128["status"] == "OOM" and scores * GIB > MHA_NEEDS_MORE_THAN
        checks.append(("2. global, 128x128: trains within 8 GiB; MHA needs > 24 GiB",
                       f"lambda process peak {used / GIB:.1f} GiB; {mha_text}",
                       used <= LAMBDA_WITHIN and mha_over))
    else:
        checks.append(("2. global, 128x128 vs MHA", "not measured", None))
    paper64 = report.find(results, "paper", 64, 128)
    if report.ok(auto64) and paper64 is not None:
        if report.ok(paper64):
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
        small = report.find(results, f"lambda/r{scope}/auto", 32, 128)
        large = report.find(results, f"lambda/r{scope}/auto", 128, 128)
        if report.ok(small) and report.ok(large):
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
        judged = auto_excess(auto, results, races or [])
        if judged and (worst is None or judged[0] > worst[0]):
            worst = judged
    if worst:
        excess, auto, fastest, how = worst
        checks.append(("5. implementation='auto' within 10% of the fastest, every configuration",
                       f"worst: {auto['method']} s={auto['size']} d={auto['dim']} picks "
                       f"{auto.get('implementation')}, {excess * 100:+.0f}% vs "
                       f"{Method.parse(fastest).implementation} ({how})", excess <= 0.10))
    else:
        checks.append(("5. auto vs the fastest implementation", "not measured", None))
    lambda50 = report.find(results, MODEL_RACER, 128)
    resnet50 = report.find(results, MODEL_BASELINE, 128)
    model_race = report.model_race(races or [])
    if model_race is not None:
        times = model_race["train_s"]
        ratio = times[MODEL_BASELINE] / times[MODEL_RACER]  # same batch
        checks.append(("6. LambdaResNet-50 >= 0.8x ResNet50's images/s at 128 px",
                       f"{ratio:.2f}x (race)", ratio >= 0.8))
    elif report.ok(lambda50) and report.ok(resnet50):
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

def main(path):
    record = json.load(open(path))
    print(targets_table(targets(record["results"], None, record.get("races", []))))


if __name__ == "__main__":
    main(sys.argv[1])
