"""Batch-1 latency of exported models: LambdaResNet-50 and LambdaResNet26T against
`keras.applications.ResNet50`, in Keras, ONNX Runtime and TFLite (LiteRT).

LambdaResNet-50 also races its convolutional twin (`TWIN`: the same ResNet-RS base,
with 3x3 convolutions where its lambda layers are), so that the record separates
what the lambda layers cost from what the paper's base (deep stem, squeeze-excitation,
average-pool shortcuts) costs against a plain ResNet50.

`keras-lambda bench --export-latency`. Every model is exported with
`keras_lambda.export` (random weights: latency does not depend on them), then
all (model, runtime) pairs are timed in one process in interleaved rounds, the
order rotating each round, so that a slower moment of the machine falls on every
pair alike. A round's figure for a pair is the median of `calls` batch-1 calls;
the ratio ResNet50 / model (above 1: the model is faster) is taken within each
round, and reported as the median with the spread (min-max) over rounds.
Each model's multiply-adds (`keras_lambda.models.flops.count_macs`) are in the
record too: at batch 1 a runtime's time follows them closely, which is what
ResNet50's fewer multiply-adds mean for the race.
Keras runs the model as a `tf.function` (its graph, as `model.predict` would,
without predict's per-call overhead).
"""

import os
import tempfile
import time

import numpy as np

MODELS = ("lambda_resnet50", "conv_twin50", "lambda_resnet26t", "resnet50")
BASELINE = "resnet50"
TWINNED = "lambda_resnet50"
TWIN = "conv_twin50"  # TWINNED with 3x3 convolutions in place of its lambda layers
RUNTIMES = ("keras", "onnx", "tflite")


def build(name, size):
    import keras

    if name == BASELINE:
        return keras.applications.ResNet50(weights=None, input_shape=(size, size, 3))
    from keras_lambda.models import LambdaResNet, build_preset, presets

    if name == TWIN:
        arguments = {**presets.get(TWINNED).arguments, "placement": "CCCC"}
        return LambdaResNet(**arguments, input_shape=(size, size, 3), name=TWIN)
    return build_preset(name, input_shape=(size, size, 3))


def _keras_runner(model):
    from keras_lambda import _startup

    tf = _startup.tensorflow_for("keras-lambda bench --export-latency")
    call = tf.function(lambda x: model(x, training=False), autograph=False)
    return lambda x: call(tf.constant(x)).numpy()


def runners(size, scratch, models=MODELS):
    """({(model, runtime): batch-1 callable}, each called once (warm-up),
    {model: its multiply-adds per image, in billions})."""
    from keras_lambda.export import _run_onnx, _run_tflite, export
    from keras_lambda.models.flops import count_macs

    found, gmacs = {}, {}
    for name in models:
        model = build(name, size)
        gmacs[name] = round(count_macs(model) / 1e9, 3)
        found[(name, "keras")] = _keras_runner(model)
        for format in ("onnx", "tflite"):
            path = os.path.join(scratch, f"{name}.{format}")
            export(model, path, format, check=False)
            # ONNX Runtime's threads would otherwise spin-wait after each call, taking
            # the cores from the call of another runtime that follows in the round.
            found[(name, format)] = (_run_onnx(path, spinning=False) if format == "onnx"
                                     else _run_tflite(path, threads=os.cpu_count()))
    image = np.random.default_rng(0).normal(size=(1, size, size, 3)).astype("float32")
    for run in found.values():
        run(image)
    return found, gmacs


def race(found, rounds, calls, size):
    """{(model, runtime): [median seconds a call, one per round]}, interleaved."""
    image = np.random.default_rng(1).normal(size=(1, size, size, 3)).astype("float32")
    keys = list(found)
    times = {key: [] for key in keys}
    for round_index in range(rounds):
        shift = round_index % len(keys)
        for key in keys[shift:] + keys[:shift]:
            samples = []
            for _ in range(calls):
                started = time.perf_counter()
                found[key](image)
                samples.append(time.perf_counter() - started)
            times[key].append(float(np.median(samples)))
    return times


def summarise(times, models=MODELS, gmacs=None):
    """Per runtime: each model's median latency (ms, with min-max over rounds) and its
    speed against ResNet50 (ResNet50's time / the model's, per round); LambdaResNet-50's
    row also against its twin (the twin's time / its own). With `gmacs` ({model:
    billions of multiply-adds}), each row also has its model's and the speed those
    predict against ResNet50 (ResNet50's multiply-adds / the model's)."""
    rows = []
    for runtime in RUNTIMES:
        baseline = np.array(times[(BASELINE, runtime)])
        for name in models:
            own = np.array(times[(name, runtime)])
            row = {"runtime": runtime, "model": name,
                   **_spread(own * 1e3, ("ms", "ms_min", "ms_max"), digits=2),
                   **_spread(baseline / own, ("speed_vs_resnet50", "speed_min", "speed_max"))}
            if name == TWINNED and (TWIN, runtime) in times:
                row.update(_spread(np.array(times[(TWIN, runtime)]) / own,
                                   ("speed_vs_twin", "twin_min", "twin_max")))
            if gmacs:
                row.update(gmacs=gmacs[name],
                           speed_by_macs=round(gmacs[BASELINE] / gmacs[name], 3))
            rows.append(row)
    return rows


def _spread(values, keys, digits=3):
    """{keys[0]: median, keys[1]: min, keys[2]: max} of `values` (per round), rounded."""
    return {key: round(float(statistic(values)), digits)
            for key, statistic in zip(keys, (np.median, np.min, np.max))}


def measure(size=224, rounds=7, calls=10):
    """Exports, races and summarises; returns the record (JSON-ready)."""
    with tempfile.TemporaryDirectory() as scratch:
        started = time.time()
        found, gmacs = runners(size, scratch)
        exported = time.time() - started
        times = race(found, rounds, calls, size)
    import onnxruntime

    from keras_lambda.bench.runner import machine

    return {"date": time.strftime("%Y-%m-%d"), "machine": machine(),
            "onnxruntime": onnxruntime.__version__,
            "image_size": size, "rounds": rounds, "calls_per_round": calls,
            "export_seconds": round(exported, 1), "cores": os.cpu_count(),
            "rows": summarise(times, gmacs=gmacs),
            "times": {f"{model}/{runtime}": values for (model, runtime), values in times.items()}}


def report(record):
    """Markdown lines of the record."""
    lines = [
        "# Exported models: batch-1 latency against ResNet50",
        "",
        f"{record.get('date', '')}, {record.get('machine', '')}; ONNX Runtime "
        f"{record.get('onnxruntime', '')}. Batch-1 latency at {record['image_size']} px, "
        f"{record['rounds']} interleaved rounds of {record['calls_per_round']} calls; random "
        "weights. Speed vs ResNet50 above 1: faster than `keras.applications.ResNet50` "
        "exported the same way. conv_twin50: LambdaResNet-50 with 3x3 convolutions where "
        "its lambda layers are (the same ResNet-RS base); LambdaResNet-50's speed against it "
        "is what its lambda layers give. GMACs: multiply-adds per image, and the speed "
        "against ResNet50 they predict (ResNet50's / the model's).",
        "",
        "| runtime | model | ms (median, min-max) | speed vs ResNet50 (median, min-max) "
        "| vs its conv twin | GMACs (speed they predict) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in record["rows"]:
        twin = (f"{row['speed_vs_twin']:.2f}x ({row['twin_min']:.2f}-{row['twin_max']:.2f})"
                if "speed_vs_twin" in row else "")
        macs = (f"{row['gmacs']:.2f} ({row['speed_by_macs']:.2f}x)" if "gmacs" in row
                else "")
        lines.append(
            f"| {row['runtime']} | {row['model']} | {row['ms']} ({row['ms_min']}-"
            f"{row['ms_max']}) | {row['speed_vs_resnet50']:.2f}x ({row['speed_min']:.2f}-"
            f"{row['speed_max']:.2f}) | {twin} | {macs} |")
    return lines
