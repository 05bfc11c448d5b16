"""The FFT position term with one stacked inverse transform against one per key
channel (what `fast_paths.correlate_tensorflow` does now), raced.

    python benchmarks/fft_transforms.py --size 32
    python benchmarks/fft_transforms.py --size 32 --inter-op 1   # one op at a time
    KERAS_BACKEND=jax python benchmarks/fft_transforms.py --size 32  # JAX's forms
    KERAS_BACKEND=jax python benchmarks/fft_transforms.py --size 32 --scope 7
    KERAS_BACKEND=torch python benchmarks/fft_transforms.py --size 32

On JAX and PyTorch the portable path's stacked correlation races
`spectra.correlate_per_key` (the portable correlation once per key channel, outputs
concatenated: JAX's fast path on a CPU); on PyTorch also torch.fft's n-D transforms on
complex tensors, the key channels stacked and one at a time (`fast_paths.spectrum_torch`,
`fast_paths.correlate_torch`: its fast path on a CPU).

The position term `fft_position_output` (2-D, global or `--scope` r (not on TensorFlow), b = 8,
h = 4, k = 16, v = 32, u = 1, the key chunks `fft_key_chunk` picks), its train step
(gradients of Σ y² for q, V and T) as one `tf.function` (`jax.jit`; eager on PyTorch) per form,
the forms round by round in one process (`measure.race_rounds`); the results are
checked equal before timing. `--inter-op 1` lets TensorFlow's executor run one op at
a time: what is left of the gain then is not the two cores working side by side.
benchmarks/history/profile.md has what it printed.
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

    from keras_lambda.ops.position import fast_paths

    kernel_hat = tf.math.conj(kernel_hat)
    spectrum = tf.stack(
        [
            tf.add_n([value * weight for value, weight in zip(value_slots, tf.unstack(key))])
            for key in tf.unstack(kernel_hat, axis=0)
        ],
        axis=2,
    )
    return fast_paths.cropped_irfft_tensorflow(spectrum, lengths, spatial)


def operands(size, scope=None, batch=8, heads=4, key_dim=16, value_dim=32):
    """Random numpy q `[b, n, h, k]`, V `[b, *S, v, 1]` and the table `[r, r, k, 1]`
    (global: r = 2·size − 1)."""
    import numpy as np

    taps = scope or 2 * size - 1
    rng = np.random.default_rng(0)
    return (rng.normal(size=(batch, size * size, heads, key_dim)).astype("float32"),
            rng.normal(size=(batch, size, size, value_dim, 1)).astype("float32"),
            rng.normal(size=(taps, taps, key_dim, 1)).astype("float32"))


def check_and_race(steps, rounds, title):
    """Checks every form's gradients equal the stacked form's, races them, prints each
    form's time and the stacked form's time over it."""
    import numpy as np

    from keras_lambda.bench import measure, report

    results = {name: measure.wait(step()) for name, step in steps.items()}
    for name, gradients in results.items():
        for stacked, other in zip(results["stacked"], gradients):
            np.testing.assert_allclose(other, stacked, rtol=1e-4,
                                       atol=1e-4 * np.abs(stacked).max())
    seconds, _ = measure.race_rounds(steps, rounds)
    parts = [f"stacked {statistics.median(seconds['stacked']) * 1e3:.0f} ms"]
    for name in list(steps)[1:]:
        middle, low, high = report.ratio_spread({"rounds_s": seconds}, "stacked", name)
        parts.append(f"{name} {statistics.median(seconds[name]) * 1e3:.0f} ms: {middle:.2f}x "
                     f"({low:.2f}-{high:.2f})")
    print(f"{title}: " + ", ".join(parts))


def stacked_torch(value_slots, kernel_hat, lengths, spatial):
    """PyTorch's complex correlation (`fast_paths.correlate_torch`) with the key channels'
    products stacked `[b, v, k, *F]` and one inverse transform of them all."""
    import torch

    from keras_lambda.ops.position import spectra

    axes = tuple(range(-len(lengths), 0))
    kernel_hat = kernel_hat.conj()
    spectrum = sum(value[:, :, None] * kernel_hat[None, None, :, slot]
                   for slot, value in enumerate(value_slots))
    return spectra.crop(torch.fft.irfftn(spectrum, s=lengths, dim=axes), spatial)


def race_portable(args):
    """On JAX and PyTorch: the portable path's stacked correlation against
    `spectra.correlate_per_key`, and on PyTorch its torch.fft forms (complex spectra, the key
    channels stacked and one at a time); gradients of Σ y² for q, V and T (jitted on
    JAX, eager autograd on PyTorch)."""
    import keras

    from keras_lambda.ops.position import fast_paths, fft, spectra

    backend = keras.backend.backend()
    slots = (("fft_spectrum", backend), ("fft_correlate", backend))
    saved = {slot: fast_paths.FAST_PATHS.get(slot) for slot in slots}
    portable = fast_paths.PORTABLE["fft_spectrum"]
    forms = {"stacked": (portable, fast_paths.PORTABLE["fft_correlate"]),
             "per key": (portable, spectra.correlate_per_key)}
    arrays = operands(args.size, args.scope)

    def use(form):  # read while tracing (JAX), at every call (PyTorch)
        fast_paths.FAST_PATHS.update(zip(slots, form))

    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def train_step(form):
            def loss(queries, values, table):
                use(form)
                outputs = fft.fft_position_output(queries, values, table)
                return jnp.sum(outputs * outputs)

            step = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
            return functools.partial(step, *(jnp.asarray(array) for array in arrays))
    else:
        import torch

        forms["torch.fft stacked"] = (fast_paths.spectrum_torch, stacked_torch)
        forms["torch.fft per key"] = (fast_paths.spectrum_torch, fast_paths.correlate_torch)
        tensors = [torch.tensor(array, requires_grad=True) for array in arrays]

        def train_step(form):
            def step():
                use(form)
                outputs = fft.fft_position_output(*tensors)
                return torch.autograd.grad((outputs * outputs).sum(), tensors)

            return step

    steps = {name: train_step(form) for name, form in forms.items()}
    for step in steps.values():
        step()  # traced now (JAX), with its form
    scope = f"r{args.scope}" if args.scope else "global"
    try:
        check_and_race(steps, args.rounds, f"{backend} {args.size}x{args.size} {scope}")
    finally:
        for slot, function in saved.items():
            fast_paths.FAST_PATHS.pop(slot, None)
            if function is not None:
                fast_paths.FAST_PATHS[slot] = function


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--scope", type=int, default=None, help="r (JAX, PyTorch); global if unset")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--inter-op", type=int, default=0, help="0: TensorFlow's default")
    args = parser.parse_args()
    if os.environ.get("KERAS_BACKEND") in ("jax", "torch"):
        return race_portable(args)

    import tensorflow as tf

    if args.inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
    from keras_lambda.ops.position import fast_paths, fft

    queries, values, table = operands(args.size)
    queries, values, table = tf.constant(queries), tf.constant(values), tf.Variable(table)
    slot = ("fft_correlate", "tensorflow")
    forms = {"stacked": stacked_correlate, "per key": fast_paths.FAST_PATHS[slot]}

    def train_step(correlate):
        @tf.function
        def step(queries, values):
            with tf.GradientTape() as tape:
                tape.watch([queries, values])
                fast_paths.FAST_PATHS[slot] = correlate  # read while tracing
                outputs = fft.fft_position_output(queries, values, table)
                loss = tf.reduce_sum(outputs * outputs)
            return tape.gradient(loss, [queries, values, table])

        return functools.partial(step, queries, values)

    steps = {name: train_step(correlate) for name, correlate in forms.items()}
    for step in steps.values():
        step()  # traced now, with its form
    fast_paths.FAST_PATHS[slot] = forms["per key"]
    check_and_race(steps, args.rounds, f"{args.size}x{args.size}, inter-op threads "
                   f"{args.inter_op or 'default'}")


if __name__ == "__main__":
    main()
