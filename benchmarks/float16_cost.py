"""What float16 that holds costs: a race of the lambda layer's train step under
mixed_float16 as it is (normalised q, k, v cast to float32 once, every
contraction and the output in float32) against the same layer with everything
in float16 (what overflowed, see README "Keras behaviour"), and float32.

    python benchmarks/float16_cost.py            # writes benchmarks/records/float16_cost.md

TensorFlow, this machine's CPU, b = 8, d = 128, h = 4, k = 16. One process,
interleaved rounds in rotating order, medians (and each method's min-max over
the rounds); the ratios are against the all-float16 layer.
"""

import pathlib
import statistics
import sys
import time

import keras
import tensorflow as tf

from keras_lambda.layers import LambdaLayer

OUTPUT = pathlib.Path(__file__).parent / "records" / "float16_cost.md"
ROUNDS = 9
CASES = (("global", None, 32), ("r23", 23, 32), ("r7", 7, 64))  # name, scope, side


class AllFloat16LambdaLayer(LambdaLayer):
    """The layer before the fix: contractions and output in the compute dtype."""

    @property
    def output_dtype(self):
        return self.compute_dtype


def train_step(layer_class, policy, scope, side):
    keras.config.set_dtype_policy(policy)
    try:
        layer = layer_class(128, key_dim=16, num_heads=4, scope=scope)
        x = keras.random.normal((8, side, side, 128), seed=0)
        layer(x)
    finally:
        keras.config.set_dtype_policy("float32")

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(tf.cast(layer(x, training=True), "float32")))
        return tf.add_n([tf.reduce_sum(g) for g in tape.gradient(loss, layer.trainable_variables)])

    step(x).numpy()  # trace, allocate
    return lambda: step(x).numpy()


def race(steps):
    seconds = {name: [] for name in steps}
    names = list(steps)
    for round_index in range(ROUNDS):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            steps[name]()
            seconds[name].append(time.perf_counter() - started)
    return seconds


def main():
    lines = [
        "<!-- written by benchmarks/float16_cost.py -->",
        f"TensorFlow {tf.__version__} on CPU, {ROUNDS} interleaved rounds; "
        "train step of one LambdaLayer, b=8, d=128, h=4, k=16.",
        "",
        "| context | s | all float16 (before) | float16, contractions in float32 (now) | "
        "float32 | now / before |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, scope, side in CASES:
        seconds = race({
            "before": train_step(AllFloat16LambdaLayer, "mixed_float16", scope, side),
            "now": train_step(LambdaLayer, "mixed_float16", scope, side),
            "float32": train_step(LambdaLayer, "float32", scope, side),
        })

        def cell(method):
            values = seconds[method]
            return (f"{statistics.median(values) * 1e3:,.0f} ms "
                    f"({min(values) * 1e3:,.0f}-{max(values) * 1e3:,.0f})")

        ratio = statistics.median(seconds["now"]) / statistics.median(seconds["before"])
        lines.append(f"| {name} | {side} | {cell('before')} | {cell('now')} | {cell('float32')} "
                     f"| {ratio:.2f}x |")
        print(lines[-1], flush=True)
    OUTPUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUTPUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
