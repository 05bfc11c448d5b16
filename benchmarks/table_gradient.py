"""The relative table's gradient: autodiff's scatter-add against the diagonal sums
`keras_lambda.ops.dense_embeddings` writes out, raced on a CPU (any Keras backend).

    python benchmarks/table_gradient.py                   # the gradient alone, 8x8 to 32x32
    python benchmarks/table_gradient.py --layer --size 16 # the layer's train step
    KERAS_BACKEND=jax python benchmarks/table_gradient.py --layer --size 16

Alone: E `[n, m, k]` gathered from a global 2-D table `[(2s − 1)², k]` (k = 16) and
the gradient of Σ E·P for a fixed P, as one compiled function per form (a
`tf.function` or `jax.jit`; PyTorch eager), checked equal before timing. `--layer`:
the bench's train step of `lambda/global/einsum` (b = 8, d = 128, h = 4, k = 16) with
either gradient, and the paper's pseudo-code (its own gather, autodiff's scatter-add)
beside them. Each form is traced with the backend in `DIAGONAL_SUM_BACKENDS` or not.
benchmarks/history/profile.md ("The table's gradient as diagonal sums") has what it printed.
"""

import argparse
import functools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def gradient_on(written_out):
    """Makes `dense_embeddings` traced from now on use the diagonal sums (or not)."""
    import keras

    from keras_lambda.ops import embeddings

    backend = keras.backend.backend()
    if written_out:
        embeddings.DIAGONAL_SUM_BACKENDS.add(backend)
    else:
        embeddings.DIAGONAL_SUM_BACKENDS.discard(backend)


def compiled_gradient(size, key_dim):
    """A call returning the table's gradient of Σ E·P, compiled (traced when first called)."""
    import keras
    import numpy as np

    from keras_lambda.ops import dense_embeddings

    rng = np.random.default_rng(0)
    table = rng.normal(size=(2 * size - 1, 2 * size - 1, key_dim, 1)).astype("float32")
    probe = rng.normal(size=(size * size, size * size, key_dim, 1)).astype("float32")

    # P an argument: as a constant, the gradient (linear in P, free of T) is folded away
    def objective(table, probe):
        return keras.ops.sum(dense_embeddings(table, (size, size)) * probe)

    if keras.backend.backend() == "jax":
        import jax

        gradient = jax.jit(jax.grad(objective))
        return functools.partial(gradient, jax.numpy.asarray(table), jax.numpy.asarray(probe))
    if keras.backend.backend() == "torch":
        import torch

        def gradient(table, probe):
            table = torch.tensor(table, requires_grad=True)
            return torch.autograd.grad(objective(table, torch.tensor(probe)), table)[0]

        return functools.partial(gradient, table, probe)
    import tensorflow as tf

    @tf.function
    def gradient(table, probe):
        with tf.GradientTape() as tape:
            tape.watch(table)
            value = objective(table, probe)
        return tape.gradient(value, table)

    return functools.partial(gradient, tf.constant(table), tf.constant(probe))


def layer_steps(size, dim):
    """{name: a call starting one train step}: the layer with either gradient, the paper."""
    from keras_lambda.bench import measure
    from keras_lambda.bench.methods import Case

    steps = {}
    for name, method in (("scatter_add", "lambda/global/einsum"),
                         ("diagonal_sums", "lambda/global/einsum"), ("paper", "paper")):
        gradient_on(name == "diagonal_sums")
        module, shape = measure.build(Case(method, size, dim, 8))
        train_step, _, x, _ = measure.steps(module, shape, False, 8)
        measure.wait(train_step(x))  # traced now, with this gradient
        steps[name] = functools.partial(train_step, x)
    return steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 24, 32],
                        help="H = W (default 8 16 24 32; with --layer the first)")
    parser.add_argument("--size", type=int, dest="sizes", nargs=1, help="one H = W")
    parser.add_argument("--key-dim", type=int, default=16)
    parser.add_argument("--dim", type=int, default=128, help="d, with --layer (default 128)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--layer", action="store_true", help="race the layer's train step")
    args = parser.parse_args()
    import keras
    import numpy as np

    from keras_lambda.bench.measure import race_rounds
    from keras_lambda.bench.report import race_summary

    backend = keras.backend.backend()
    if args.layer:
        size = args.sizes[0]
        seconds = race_rounds(layer_steps(size, args.dim), args.rounds)[0]
        print(f"{size}x{size}, layer train step, b=8 d={args.dim} h=4 k=16, {backend}, "
              f"{args.rounds} rounds")
        pairs = [("diagonal_sums", "scatter_add"), ("diagonal_sums", "paper")]
        print("\n".join(race_summary(seconds, pairs)))
        return
    for size in args.sizes:
        steps = {}
        for name in ("scatter_add", "diagonal_sums"):
            gradient_on(name == "diagonal_sums")
            steps[name] = compiled_gradient(size, args.key_dim)
            steps[name]()  # traced now, with this gradient
        want, got = (np.asarray(keras.ops.convert_to_numpy(step())) for step in steps.values())
        error = np.abs(got - want).max() / np.abs(want).max()
        assert error < 1e-5, f"{size}x{size}: the gradients differ by {error:.1e} of the largest"
        seconds = race_rounds(steps, args.rounds)[0]
        print(f"{size}x{size}, the table's gradient alone, k={args.key_dim}, {backend}, "
              f"{args.rounds} rounds")
        print("\n".join(race_summary(seconds, [("diagonal_sums", "scatter_add")])))


if __name__ == "__main__":
    main()
