"""Which position-lambda kernel is fastest on each Keras backend: a race, in one
process, of the kernels at the geometries where `implementation="auto"` draws
its lines (benchmarks/records/auto.md), on the backend Keras runs.

    KERAS_BACKEND=jax python benchmarks/auto_backends.py    # appends to auto_backends.json
    python benchmarks/auto_backends.py --report             # writes auto_backends.md

Train step (forward + backward, gradients of every weight and the input) of one
LambdaLayer as `keras-lambda bench` steps it on each backend (tf.function, jitted
`stateless_call`, eager autograd), b = 8, d = 128, h = 4, k = 16, u = 1. A kernel
more than `HOPELESS`x slower than the fastest on its first timed step is left out
of the race (its one step is recorded). Then `ROUNDS` interleaved rounds in
rotating order; medians, and each kernel's min-max over the rounds.
"""

import json
import os
import pathlib
import statistics
import sys
import time

HERE = pathlib.Path(__file__).parent
RECORD = HERE / "records" / "auto_backends.json"
REPORT = HERE / "records" / "auto_backends.md"
ROUNDS = 5
HOPELESS = 3.0
# (context, scope, image side, kernels): the lines of auto.md, and where they lie.
GEOMETRIES = (
    ("r3", 3, 32, ("depthwise", "conv", "fft", "einsum")),
    ("r5", 5, 32, ("depthwise", "conv", "fft", "einsum")),
    ("r7", 7, 32, ("depthwise", "conv", "fft", "einsum")),
    ("r7", 7, 64, ("depthwise", "conv", "fft")),
    ("r23", 23, 32, ("fft", "einsum", "depthwise")),
    ("global", None, 16, ("einsum", "fft")),
    ("global", None, 32, ("einsum", "fft")),
)


SCOPES = {context: scope for context, scope, _, _ in GEOMETRIES}


def train_step(scope, side, implementation):
    from keras_lambda.bench.measure import steps
    from keras_lambda.layers import LambdaLayer

    layer = LambdaLayer(128, key_dim=16, num_heads=4, scope=scope, implementation=implementation)
    step, _, x, _ = steps(layer, (8, side, side, 128), False, 8)
    return step, x, layer.position_implementation((side, side))


def seconds_of(step, x, calls=1):
    from keras_lambda.bench.measure import wait

    started = time.perf_counter()
    for _ in range(calls):
        result = step(x)
    wait(result)
    return (time.perf_counter() - started) / calls


def race_geometry(scope, side, kernels):
    timed, first = {}, {}
    for kernel in kernels + ("auto",):
        step, x, picked = train_step(scope, side, kernel)
        seconds_of(step, x)  # warm-up: tracing, compiling
        first[kernel] = seconds_of(step, x)
        timed[kernel] = (step, x)
        if kernel == "auto":
            auto_picks = picked
    fastest = min(first.values())
    racing = [k for k in timed if first[k] <= HOPELESS * fastest]
    rounds = {kernel: [] for kernel in racing}
    for index in range(ROUNDS):
        shift = index % len(racing)
        for kernel in racing[shift:] + racing[:shift]:
            step, x = timed[kernel]
            rounds[kernel].append(seconds_of(step, x, max(1, round(0.25 / first[kernel]))))
    return {"auto_picks": auto_picks, "first_s": first, "rounds_s": rounds}


def measure():
    import keras

    from keras_lambda.bench.runner import machine

    backend = keras.backend.backend()
    record = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    entry = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "geometries": []}
    for context, scope, side, kernels in GEOMETRIES:
        result = race_geometry(scope, side, kernels)
        entry["geometries"].append({"context": context, "side": side, **result})
        medians = {k: statistics.median(s) for k, s in result["rounds_s"].items()}
        print(f"{backend} {context} {side}x{side}: auto → {result['auto_picks']}; "
              + ", ".join(f"{k} {s * 1e3:,.0f} ms" for k, s in medians.items()), flush=True)
        record[backend] = entry
        RECORD.write_text(json.dumps(record, indent=1) + "\n")


def report():
    from keras_lambda.ops import choose_implementation

    record = json.loads(RECORD.read_text())
    lines = ["<!-- written by benchmarks/auto_backends.py --report from auto_backends.json -->",
             "# The fastest position-lambda kernel on each backend (CPU races)\n",
             "Train step of one LambdaLayer, b = 8, d = 128, h = 4 (v = 32), k = 16; one "
             f"process per backend, {ROUNDS} interleaved rounds, medians (min-max). `—`: more "
             f"than {HOPELESS}x the fastest on its first step, not raced (that step in "
             "brackets). Bold: the fastest. `auto` then: its pick in the race (the rule of "
             "that day); `auto` now: `choose_implementation` for the backend today.\n"]
    for backend, entry in record.items():
        lines += [f"## {backend}\n", f"{entry['machine']}, {entry['date']}\n",
                  "| context | s | `auto` then | `auto` now | einsum | conv | depthwise | fft |",
                  "|---|---|---|---|---:|---:|---:|---:|"]
        for geometry in entry["geometries"]:
            rounds = geometry["rounds_s"]
            medians = {k: statistics.median(s) for k, s in rounds.items() if k != "auto"}
            fastest = min(medians, key=medians.get)
            cells = []
            for kernel in ("einsum", "conv", "depthwise", "fft"):
                if kernel in medians:
                    s = rounds[kernel]
                    cell = (f"{medians[kernel] * 1e3:,.0f} ms "
                            f"({min(s) * 1e3:,.0f}-{max(s) * 1e3:,.0f})")
                    cells.append(f"**{cell}**" if kernel == fastest else cell)
                elif kernel in geometry["first_s"]:
                    cells.append(f"— ({geometry['first_s'][kernel] * 1e3:,.0f} ms)")
                else:
                    cells.append("")
            scope = SCOPES[geometry["context"]]
            now = choose_implementation((geometry["side"],) * 2, scope=scope, value_dim=32,
                                        backend=backend)
            lines.append(f"| {geometry['context']} | {geometry['side']} | "
                         f"{geometry['auto_picks']} | {now} | " + " | ".join(cells) + " |")
        lines.append("")
    REPORT.write_text("\n".join(lines))
    print("written:", REPORT)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    os.chdir(HERE.parent)
    report() if "--report" in sys.argv else measure()
