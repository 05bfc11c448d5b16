"""Four ways to compute the global position term, raced on a CPU (the term alone on
TensorFlow; with `--layer`, the whole layer on any backend).

    python benchmarks/position_forms.py                # 16x16, TensorFlow graph
    python benchmarks/position_forms.py --size 8 --jit # the whole step XLA-compiled
    KERAS_BACKEND=jax python benchmarks/position_forms.py --layer --size 16 --dim 256

The position term y_{b,n,h,v} = Σ_k q_{b,n,h,k} Σ_m E_{n,m,k} V_{b,m,v}, with
E_{n,m,k} = T[m − n + centre, k] read from the relative table T `[(2H−1)(2W−1), k]`
(global 2-D, u = 1), in three orders:

- `lambdas`: the paper's pseudo-code and the layer's `einsum` kernel: E gathered
  `[n, m, k]`, the lambdas `[b, n, k, v]`, then the queries; 2·b·n²·k·v flops.
- `queries`: the queries first, `bnhk,nmk->bnhm`, then `bnhm,bmv->bnhv`;
  2·b·n²·h·(k + v) flops (0.375 of the lambdas' at h = 4, k = 16, v = 32).
- `queries_matmul`: the same order with the weights as one batched matmul over n,
  `[n, b·h, k] x [n, k, m]`, as the layer's kernel computes them
  (`einsum_position_output`), and the values' product over b.
- `toeplitz`: the queries against the table itself (one matmul, `[k] x [T]` for every
  (b, n, h)), then each query's own offsets gathered out of it (the 2-D analogue of
  the relative-attention "skew") and one matmul with the values; E is never built,
  but the table has T ≈ 4n rows, so the first product is 4x the `queries` one.

Each form's train step (gradients of Σ y² for q, V and T) is one `tf.function`; the
forms run round by round in this process (a race), and their gradients are checked
against the `lambdas` form's before timing.

`--layer` races the bench's train step of the whole layer instead (`lambda/global/einsum`,
b = 8, h = 4, k = 16, d = `--dim`) with the lambdas first and with the queries first
(`einsum_position_output`), and the paper's pseudo-code beside them, on any Keras backend:
what `keras_lambda.ops.position.einsum.QUERIES_FIRST_WEIGHTS_PER_LAMBDA` was set from.
benchmarks/history/profile.md has what it printed.
"""

import argparse
import functools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def offsets(size):
    """The table row of every (n, m) pair of a size x size grid, `[n, m]` (row-major)."""
    import numpy as np

    span = 2 * size - 1
    row, col = np.divmod(np.arange(size * size), size)
    return ((row[None, :] - row[:, None] + size - 1) * span
            + col[None, :] - col[:, None] + size - 1)


def forms(size, batch, heads, key_dim, value_dim):
    """{name: position term(q `[b, n, h, k]`, V `[b, m, v]`, T `[rows, k]`) → `[b, n, h, v]`}."""
    import numpy as np
    import tensorflow as tf

    n = size * size
    rows = (2 * size - 1) ** 2
    pair_rows = tf.constant(offsets(size), tf.int32)  # [n, m]
    # The table's products laid out [rows, n, b·h]: pair (n, m) is at row(n, m) · n + n
    toeplitz_rows = tf.constant(offsets(size) * n + np.arange(n)[:, None], tf.int32)

    def lambdas(q, v, table):
        embeddings = tf.gather(table, pair_rows)  # [n, m, k]
        position_lambdas = tf.einsum("nmk,bmv->bnkv", embeddings, v)
        return tf.einsum("bnhk,bnkv->bnhv", q, position_lambdas)

    def queries(q, v, table):
        weights = tf.einsum("bnhk,nmk->bnhm", q, tf.gather(table, pair_rows))
        return tf.einsum("bnhm,bmv->bnhv", weights, v)

    def queries_matmul(q, v, table):
        by_position = tf.reshape(tf.transpose(q, [1, 0, 2, 3]), [n, batch * heads, key_dim])
        weights = tf.matmul(by_position, tf.gather(table, pair_rows), transpose_b=True)
        weights = tf.transpose(tf.reshape(weights, [n, batch, heads, n]), [1, 0, 2, 3])
        outputs = tf.matmul(tf.reshape(weights, [batch, n * heads, n]), v)
        return tf.reshape(outputs, [batch, n, heads, value_dim])

    def toeplitz(q, v, table):
        flat_queries = tf.reshape(tf.transpose(q, [3, 1, 0, 2]), [key_dim, -1])  # [k, n·b·h]
        products = tf.reshape(tf.matmul(table, flat_queries), [rows * n, batch * heads])
        weights = tf.gather(products, toeplitz_rows)  # [n, m, b·h]
        weights = tf.transpose(tf.reshape(weights, [n, n, batch, heads]), [2, 0, 3, 1])
        outputs = tf.matmul(tf.reshape(weights, [batch, n * heads, n]), v)
        return tf.reshape(outputs, [batch, n, heads, value_dim])

    return {"lambdas": lambdas, "queries": queries, "queries_matmul": queries_matmul,
            "toeplitz": toeplitz}


def train_step(form, table, jit):
    import tensorflow as tf

    @tf.function(jit_compile=jit)
    def step(q, v):
        with tf.GradientTape() as tape:
            tape.watch([q, v])
            y = form(q, v, table)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, [q, v, table])

    return step


def layer_steps(size, dim):
    """{name: a call starting one train step, returning its result}: the layer with
    either order, and the pseudo-code."""
    import keras

    from keras_lambda.bench import measure
    from keras_lambda.bench.methods import Case
    from keras_lambda.ops.position import einsum

    steps, backend = {}, keras.backend.backend()
    bounds = dict(einsum.QUERIES_FIRST_WEIGHTS_PER_LAMBDA)
    for name, bound in (("lambdas", 0.0), ("queries", float("inf"))):
        einsum.QUERIES_FIRST_WEIGHTS_PER_LAMBDA[backend] = bound  # read when traced
        module, shape = measure.build(Case("lambda/global/einsum", size, dim, 8))
        train_step, _, x, _ = measure.steps(module, shape, False, 8)
        measure.wait(train_step(x))  # traced now, with this order
        steps[name] = functools.partial(train_step, x)
    einsum.QUERIES_FIRST_WEIGHTS_PER_LAMBDA.clear()
    einsum.QUERIES_FIRST_WEIGHTS_PER_LAMBDA.update(bounds)
    module, shape = measure.build(Case("paper", size, dim, 8))
    train_step, _, x, _ = measure.steps(module, shape, False, 8)
    steps["paper"] = functools.partial(train_step, x)
    return steps


def report(seconds, title):
    import numpy as np

    baseline = np.array(seconds["lambdas"])
    print(title)
    for name, times in seconds.items():
        ratios = baseline / np.array(times)  # per round: > 1 is faster than `lambdas`
        print(f"{name:14s} {1000 * np.median(times):7.1f} ms   vs lambdas "
              f"{np.median(ratios):.2f}x ({ratios.min():.2f}-{ratios.max():.2f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=16, help="H = W (default 16)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--key-dim", type=int, default=16)
    parser.add_argument("--value-dim", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--jit", action="store_true", help="XLA-compile each whole step")
    parser.add_argument("--layer", action="store_true",
                        help="race the whole layer's train step (any backend)")
    parser.add_argument("--dim", type=int, default=128, help="d, with --layer (default 128)")
    args = parser.parse_args()
    from keras_lambda.bench.measure import race_rounds

    if args.layer:
        import keras

        report(race_rounds(layer_steps(args.size, args.dim), args.rounds)[0],
               f"{args.size}x{args.size}, layer train step, b=8 d={args.dim} h=4 k=16, "
               f"{keras.backend.backend()}, {args.rounds} rounds")
        return

    import numpy as np
    import tensorflow as tf

    n, rows = args.size**2, (2 * args.size - 1) ** 2
    rng = np.random.default_rng(0)
    q = tf.constant(rng.normal(size=(args.batch, n, args.heads, args.key_dim)), tf.float32)
    v = tf.constant(rng.normal(size=(args.batch, n, args.value_dim)), tf.float32)
    table = tf.Variable(rng.normal(size=(rows, args.key_dim)).astype("float32"))
    steps = {
        name: train_step(form, table, args.jit)
        for name, form in forms(args.size, args.batch, args.heads, args.key_dim,
                                args.value_dim).items()
    }

    def run(step):
        return [tf.convert_to_tensor(g).numpy() for g in step(q, v)]

    reference = run(steps["lambdas"])
    for name, step in steps.items():
        for got, want in zip(run(step), reference):
            error = np.abs(got - want).max() / np.abs(want).max()
            assert error < 1e-5, f"{name}: gradients off by {error:.1e} of the largest"

    mode = "XLA-compiled" if args.jit else "TensorFlow graph"
    report(race_rounds({name: functools.partial(run, step) for name, step in steps.items()},
                       args.rounds)[0],
           f"{args.size}x{args.size}, b={args.batch} h={args.heads} k={args.key_dim} "
           f"v={args.value_dim}, {mode}, {args.rounds} rounds")


if __name__ == "__main__":
    main()
