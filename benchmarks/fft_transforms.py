"""The FFT position term with one stacked inverse transform against one per key
channel (what `_correlate_tensorflow` does now), raced.

    python benchmarks/fft_transforms.py --size 32
    python benchmarks/fft_transforms.py --size 32 --inter-op 1   # one op at a time
    KERAS_BACKEND=jax python benchmarks/fft_transforms.py --size 32  # the portable path

On JAX the portable path (stacked, what JAX runs) races a per-key form written here
(the portable correlation called once per key channel, outputs concatenated): a lead,
not built.

The position term `fft_position_output` (global 2-D, b = 8, h = 4, k = 16, v = 32,
u = 1, the key chunks `fft_key_chunk` picks), its train step (gradients of Σ y² for
q, V and T) as one `tf.function` per form, the forms round by round in one process
(`measure.race_rounds`); the results are checked equal before timing. `--inter-op 1`
lets TensorFlow's executor run one op at a time: what is left of the gain then is
not the two cores working side by side. benchmarks/profile.md has what it printed.
"""

import argparse
import functools
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def stacked_correlate(value_slots, kernel_hat, lengths, spatial):
    """The form before: every key channel's product stacked `[b, v, k, *F]`, then
    one inverse transform of them all."""
    import tensorflow as tf

    from keras_lambda.ops import position

    kernel_hat = tf.math.conj(kernel_hat)
    spectrum = tf.stack(
        [
            tf.add_n([value * weight for value, weight in zip(value_slots, tf.unstack(key))])
            for key in tf.unstack(kernel_hat, axis=0)
        ],
        axis=2,
    )
    return position._cropped_irfft_tensorflow(spectrum, lengths, spatial)


def per_key_portable(correlate, value_slots, kernel_hat, lengths, spatial):
    """`correlate` (the portable one) once per key channel, the outputs concatenated."""
    from keras import ops

    real, imag = kernel_hat
    return ops.concatenate(
        [correlate(value_slots, (real[key : key + 1], imag[key : key + 1]), lengths, spatial)
         for key in range(real.shape[0])],
        axis=2,
    )


def race_jax(args):
    """The portable path's stacked correlation against `per_key_portable`, jitted
    gradients of Σ y² for q, V and T."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from keras_lambda.bench import measure, report
    from keras_lambda.ops import position

    size, batch, heads, key_dim, value_dim = args.size, 8, 4, 16, 32
    rng = np.random.default_rng(0)
    queries = jnp.asarray(rng.normal(size=(batch, size * size, heads, key_dim)), jnp.float32)
    values = jnp.asarray(rng.normal(size=(batch, size, size, value_dim, 1)), jnp.float32)
    table = jnp.asarray(rng.normal(size=(2 * size - 1, 2 * size - 1, key_dim, 1)), jnp.float32)
    stacked = position.PORTABLE["fft_correlate"]

    def train_step(correlate):
        def loss(queries, values, table):
            position.PORTABLE["fft_correlate"] = correlate  # read while tracing
            outputs = position.fft_position_output(queries, values, table)
            return jnp.sum(outputs * outputs)

        step = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
        return functools.partial(step, queries, values, table)

    steps = {"stacked": train_step(stacked),
             "per key": train_step(functools.partial(per_key_portable, stacked))}
    results = {name: [np.asarray(g) for g in step()] for name, step in steps.items()}
    position.PORTABLE["fft_correlate"] = stacked
    for whole, per_key in zip(results["stacked"], results["per key"]):
        np.testing.assert_allclose(per_key, whole, rtol=1e-4, atol=1e-4 * np.abs(whole).max())
    seconds, _ = measure.race_rounds(steps, args.rounds)
    middle, low, high = report.ratio_spread({"rounds_s": seconds}, "stacked", "per key")
    print(f"JAX {size}x{size}: stacked {statistics.median(seconds['stacked']) * 1e3:.0f} ms, "
          f"per key {statistics.median(seconds['per key']) * 1e3:.0f} ms: {middle:.2f}x "
          f"({low:.2f}-{high:.2f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--inter-op", type=int, default=0, help="0: TensorFlow's default")
    args = parser.parse_args()
    if os.environ.get("KERAS_BACKEND") == "jax":
        return race_jax(args)

    import numpy as np
    import tensorflow as tf

    if args.inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
    from keras_lambda.bench import measure, report
    from keras_lambda.ops import position

    size, batch, heads, key_dim, value_dim = args.size, 8, 4, 16, 32
    rng = np.random.default_rng(0)
    queries = tf.constant(rng.normal(size=(batch, size * size, heads, key_dim)), tf.float32)
    values = tf.constant(rng.normal(size=(batch, size, size, value_dim, 1)), tf.float32)
    table = tf.Variable(rng.normal(size=(2 * size - 1, 2 * size - 1, key_dim, 1)), dtype=tf.float32)
    slot = ("fft_correlate", "tensorflow")
    forms = {"stacked": stacked_correlate, "per key": position.FAST_PATHS[slot]}

    def train_step(correlate):
        @tf.function
        def step(queries, values):
            with tf.GradientTape() as tape:
                tape.watch([queries, values])
                position.FAST_PATHS[slot] = correlate  # read while tracing
                outputs = position.fft_position_output(queries, values, table)
                loss = tf.reduce_sum(outputs * outputs)
            return tape.gradient(loss, [queries, values, table])

        return functools.partial(step, queries, values)

    steps = {name: train_step(correlate) for name, correlate in forms.items()}
    results = {name: [g.numpy() for g in step()] for name, step in steps.items()}
    for stacked, per_key in zip(results["stacked"], results["per key"]):
        np.testing.assert_allclose(per_key, stacked, rtol=1e-4, atol=1e-4 * np.abs(stacked).max())
    seconds, _ = measure.race_rounds(steps, args.rounds)
    middle, low, high = report.ratio_spread({"rounds_s": seconds}, "stacked", "per key")
    print(f"{size}x{size}, inter-op threads {args.inter_op or 'default'}: stacked "
          f"{statistics.median(seconds['stacked']) * 1e3:.0f} ms, per key "
          f"{statistics.median(seconds['per key']) * 1e3:.0f} ms: {middle:.2f}x "
          f"({low:.2f}-{high:.2f})")


if __name__ == "__main__":
    main()
