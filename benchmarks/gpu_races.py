"""The GPU targets, raced on JAX in one process, within one command of at most 8
minutes (`--budget-s`: a group that would start later is skipped and recorded so).

    KERAS_BACKEND=jax python benchmarks/gpu_races.py --out DIR          # on the GPU
    KERAS_BACKEND=jax python benchmarks/gpu_races.py --out DIR --quick  # a CPU check

The targets: LambdaResNet-50 >= 1.0x ResNet50's train images/s (bfloat16, batch 64,
224 px); the global layer >= 1.0x fused attention at 64x64 and >= 2x at 128x128 in no
more memory than it at 128x128 (bfloat16, b = 8, d = 128). The record
(DIR/gpu_races.json) is what benchmarks/records/gpu.md quotes.

Groups, each a race (interleaved rounds, `keras_lambda.bench.measure.race_rounds`)
of train steps as `keras-lambda bench` takes them on JAX (jit of `stateless_call`,
gradients of every weight and the input; models add an SGD update), with XLA's
compiled memory analysis of each step:

- layers (b = 8, d = 128, h = 4, k = 16) at 64x64 and 128x128 in mixed bfloat16 and
  64x64 in float32: the global lambda layer (`auto`), its FFT kernel with other key
  chunks k_c (`fft_key_chunk` fixed while the step compiles) and with its correlation
  one key channel at a time (what a CPU runs), the dft kernel (its key chunks
  recomputed in the backward pass, as JAX runs it, and kept), the einsum kernel in
  either order and the paper's pseudo-code (64x64 only: E `[n, m, k]` at 128x128 is
  4.3 G entries), the content-only layer (no position lambdas: the floor) and
  `keras.layers.MultiHeadAttention` (cuDNN's fused attention in bfloat16);
- models in mixed bfloat16, batch 64, 224 px: LambdaResNet-50,
  keras.applications.ResNet50, LambdaResNet-50's convolutional twin (3x3
  convolutions where its lambda layers are, the same ResNet-RS base) and
  LambdaResNet-50 with its 1x1 convolutions as matmuls (what a CPU runs), each
  in a `fit`-like train step and, in a race of their own, in inference.

Before the races, every lambda kernel's output at 32x32 (float32, highest matmul
precision) is checked against the einsum kernel's with the same weights.
Writes DIR/gpu_races.json after every group; prints a line per result.
"""

import argparse
import contextlib
import datetime
import json
import os
import statistics
import sys
import time

# (size, dtype policy, with the n²-sized kernels), in the order they run: what the
# targets name first, float32 after the models.
LAYER_GROUPS = ((64, "mixed_bfloat16", True), (128, "mixed_bfloat16", False))
LATE_LAYER_GROUPS = ((64, "float32", True),)
QUICK_LAYER_GROUPS = ((16, "mixed_bfloat16", True),)
QUICK_LATE_LAYER_GROUPS = ((16, "float32", True),)
BATCH, DIM = 8, 128
MODELS = ("lambda_resnet50", "resnet50")
# LambdaResNet-50 with 3x3 convolutions where its lambda layers are (the same ResNet-RS
# base): what the lambda layers do to the network, apart from the base's cost.
TWIN = "twin"
# LambdaResNet-50 with its 1x1 convolutions as matmuls, as on a CPU (`PointwiseConv2D`
# runs the convolution on a GPU): whether the matmuls pay there too.
POINTWISE_MATMULS = "model/lambda_resnet50 1x1 matmuls"
MODEL_BATCH, MODEL_SIZE = 64, 224
QUICK_MODEL_BATCH, QUICK_MODEL_SIZE = 2, 64


@contextlib.contextmanager
def patched(module, name, value):
    """`module.name` = value inside the block (read while a step is traced)."""
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)


def layer_variants(size, with_quadratic):
    """{name: (bench method id, patches)}: the variants a layer group races."""
    from keras_lambda.ops import devices, position
    from keras_lambda.ops.position import dft, einsum, fft

    key_dim, value_dim = 16, DIM // 4
    lengths = position.fft_lengths((size, size), (2 * size - 1,) * 2)
    default_chunk = position.fft_key_chunk(value_dim, key_dim, lengths, devices.kind())
    variants = {"lambda/global/auto": ("lambda/global/auto", ())}
    for chunk in sorted({default_chunk, key_dim, 4, 1}, reverse=True):
        variants[f"fft k_c={chunk}"] = (
            "lambda/global/fft", ((fft, "fft_key_chunk", lambda *_, c=chunk, **__: c),))
    # The correlation one key channel at a time, as on a CPU (2.0-2.6x there): whether
    # it pays on the GPU too.
    variants[f"fft k_c={default_chunk} per key"] = (
        "lambda/global/fft", ((devices, "computes_on_cpu", lambda *_: True),))
    # The matmul-only kernel (`auto`'s pick on a CPU from 14x14 to 192x192 on JAX): not
    # yet raced on a GPU; its key chunks recomputed in the backward pass (JAX's default)
    # and kept, where it has chunks (64x64 and up).
    variants["dft"] = ("lambda/global/dft", ())
    if dft.dft_key_chunk(value_dim, key_dim, (size, size), 2 * size - 1) < key_dim:
        variants["dft chunks kept"] = (
            "lambda/global/dft", ((dft, "RECOMPUTED_CHUNK_BACKENDS", ()),))
    if with_quadratic:
        for order, first in (("lambdas first", False), ("queries first", True)):
            variants[f"einsum {order}"] = (
                "lambda/global/einsum",
                ((einsum, "einsum_queries_first", lambda *_, f=first: f),))
        variants["paper"] = ("paper", ())
    variants["lambda/content"] = ("lambda/content", ())
    variants["attention"] = ("attention", ())
    return variants


def compile_step(method_id, size, dim, batch, patches, inference=False):
    """(step, input, compiled bytes, auto's kernel or None) of a bench case, or of the
    twin (`TWIN`): its train step, or with `inference` its inference call."""
    from model_twin import build_twin  # benchmarks/, this script's folder

    from keras_lambda.bench import measure
    from keras_lambda.bench.methods import Case, Method

    with contextlib.ExitStack() as stack:
        for module, name, value in patches:
            stack.enter_context(patched(module, name, value))
        if method_id == TWIN:
            built = build_twin(size)
            shape, is_model, is_auto = (batch, size, size, 3), True, False
        else:
            method = Method.parse(method_id)
            built, shape = measure.build(Case(method_id, size, dim, batch))
            is_model, is_auto = method.kind == "model", method.is_auto
        train_step, infer_step, x, compiled_bytes = measure.steps(built, shape, is_model, batch)
    picked = built.position_implementation((size, size)) if is_auto else None
    if inference:  # the compiled memory is the train step's: not the inference call's
        return infer_step, x, None, picked
    return train_step, x, compiled_bytes, picked


def summarise(seconds, calls, baseline):
    """Per name: median ms, per-round ratio of `baseline`'s time to its own."""
    from keras_lambda.bench.report import ratio_spread

    rows = {}
    for name, times in seconds.items():
        speed, slowest, fastest = ratio_spread({"rounds_s": seconds}, baseline, name)
        rows[name] = {"median_ms": 1e3 * statistics.median(times),
                      "rounds_ms": [1e3 * t for t in times], "calls": calls[name],
                      f"speed_vs_{baseline}": speed, "spread": [slowest, fastest]}
    return rows


def race_group(title, entries, rounds, baseline, record, path, inference=False):
    """Compiles `entries` {name: (method id, size, dim, batch, patches)}, races them
    (train steps, or with `inference` inference calls), adds the group to `record` and
    writes it."""
    from keras_lambda.bench import measure

    timed, memory, picked = {}, {}, {}
    group_started = time.perf_counter()
    for name, (method_id, size, dim, batch, patches) in entries.items():
        started = time.perf_counter()
        try:
            train_step, x, compiled_bytes, kernel = compile_step(
                method_id, size, dim, batch, patches, inference)
            measure.wait(train_step(x))
        except Exception as error:  # noqa: BLE001 — an OOM or a failed compile is a result
            print(f"  {title} {name}: failed: {str(error)[:300]}", flush=True)
            memory[name] = f"failed: {str(error)[:300]}"
            continue
        timed[name] = (lambda step=train_step, x=x: step(x))
        memory[name] = compiled_bytes
        if kernel:
            picked[name] = kernel
        print(f"  {title} {name}: compiled in {time.perf_counter() - started:.1f} s, "
              f"{(compiled_bytes or 0) / 2**30:.3f} GiB", flush=True)
    seconds, calls = measure.race_rounds(timed, rounds)
    rows = summarise(seconds, calls, baseline)
    for name, row in rows.items():
        row["compiled_gib"] = memory[name] / 2**30 if memory[name] else None
        print(f"{title} {name:22s} {row['median_ms']:8.2f} ms  "
              f"x{row[f'speed_vs_{baseline}']:.2f} vs {baseline} "
              f"({row['spread'][0]:.2f}-{row['spread'][1]:.2f})  "
              f"{row['compiled_gib'] or 0:.3f} GiB", flush=True)
    failed = {name: reason for name, reason in memory.items() if name not in rows}
    record["groups"].append({"title": title, "baseline": baseline, "rounds": rounds,
                             "step": "inference" if inference else "train",
                             "results": rows, "failed": failed, "auto_picked": picked,
                             "seconds": round(time.perf_counter() - group_started, 1)})
    with open(path, "w") as file:
        json.dump(record, file, indent=1)


def check_kernels(size):
    """Max relative difference of each kernel's output from the einsum kernel's."""
    import jax
    import keras
    import numpy as np

    from keras_lambda import layers

    keras.config.set_dtype_policy("float32")
    x = keras.random.normal((2, size, size, DIM), seed=1)
    errors = {}
    with jax.default_matmul_precision("highest"):
        reference = None
        for kernel in ("einsum", "fft", "dft", "conv", "depthwise"):
            layer = layers.LambdaLayer(DIM, key_dim=16, num_heads=4, implementation=kernel)
            layer.build(x.shape)
            if reference is None:
                weights = layer.get_weights()
                reference = np.asarray(layer(x))
                continue
            layer.set_weights(weights)
            got = np.asarray(layer(x))
            errors[kernel] = float(np.abs(got - reference).max() / np.abs(reference).max())
    return errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for gpu_races.json")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="small sizes: a check on a CPU")
    parser.add_argument("--no-models", action="store_true")
    parser.add_argument("--no-float32", action="store_true", help="skip the float32 group")
    parser.add_argument("--budget-s", type=float, default=300,
                        help="no group starts after this many seconds, so that the command "
                        "ends within 8 minutes on one lease (a group takes a minute or two)")
    args = parser.parse_args()
    started = time.perf_counter()

    import jax
    import keras

    from keras_lambda.bench.runner import machine
    from keras_lambda.layers import pointwise_conv

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "gpu_races.json")
    record = {"machine": machine(), "date": datetime.date.today().isoformat(),
              "command": "KERAS_BACKEND=jax python " + " ".join(sys.argv),
              "devices": [str(d) for d in jax.devices()], "groups": []}
    print(record["machine"], flush=True)
    record["kernel_check_32x32"] = check_kernels(8 if args.quick else 32)
    print("kernels vs einsum, max relative difference:", record["kernel_check_32x32"], flush=True)

    def within_budget(title):
        if time.perf_counter() - started <= args.budget_s:
            return True
        record.setdefault("skipped_for_time", []).append(title)
        print(f"{title}: skipped, past the {args.budget_s:.0f} s budget", flush=True)
        with open(path, "w") as file:
            json.dump(record, file, indent=1)
        return False

    def race_layers(groups):
        for size, policy, with_quadratic in groups:
            if not within_budget(f"{size}x{size} {policy}"):
                continue
            keras.config.set_dtype_policy(policy)
            entries = {name: (method_id, size, DIM, BATCH, patches) for name, (method_id, patches)
                       in layer_variants(size, with_quadratic).items()}
            race_group(f"{size}x{size} {policy}", entries, args.rounds, "attention", record, path)

    race_layers(QUICK_LAYER_GROUPS if args.quick else LAYER_GROUPS)
    if not args.no_models:
        keras.config.set_dtype_policy("mixed_bfloat16")
        batch, size = ((QUICK_MODEL_BATCH, QUICK_MODEL_SIZE) if args.quick
                       else (MODEL_BATCH, MODEL_SIZE))
        entries = {f"model/{name}": (f"model/{name}", size, 0, batch, ()) for name in MODELS}
        entries[TWIN] = (TWIN, size, 0, batch, ())
        entries[POINTWISE_MATMULS] = ("model/lambda_resnet50", size, 0, batch, (
            (pointwise_conv, "computes_on_cpu", lambda *_: True),))
        for step in ("train", "inference"):
            title = f"models {size}px batch {batch} mixed_bfloat16 {step}"
            if not within_budget(title):
                continue
            race_group(title, entries, args.rounds, "model/resnet50", record, path,
                       inference=step == "inference")
            for row in record["groups"][-1]["results"].values():
                row["images_per_s"] = batch / (row["median_ms"] / 1e3)
            with open(path, "w") as file:
                json.dump(record, file, indent=1)
    if not args.no_float32:
        race_layers(QUICK_LATE_LAYER_GROUPS if args.quick else LATE_LAYER_GROUPS)
    record["seconds"] = round(time.perf_counter() - started, 1)
    with open(path, "w") as file:
        json.dump(record, file, indent=1)
    print(f"written {path} ({record['seconds']} s)", flush=True)


if __name__ == "__main__":
    main()
