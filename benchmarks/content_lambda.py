"""The content lambda's two forms raced in the layer's train step, on a CPU (any Keras
backend).

    python benchmarks/content_lambda.py --size 8         # TensorFlow, 8x8
    KERAS_BACKEND=jax python benchmarks/content_lambda.py --size 16 --rounds 21

λc `[b, k, v]` = Σ_m softmax_m(K)[b, m, k] · V[b, m, v] (u = 1), two ways:

- `einsum`: the softmax over axis 1 of the keys `[b, m, k, u]` and
  `einsum("bmku,bmvu->bkv")` (TensorFlow's softmax transposes m to the last axis
  and back, forward and backward);
- `matmul`: what `keras_lambda.ops.content_lambda` computes: the keys transposed once
  to `[b, k, u, m]`, the softmax over the last axis, a batched matmul `[b, k, m] @
  [b, m, v]`.

The bench's train step of `lambda/global/auto` (b = 8, h = 4, k = 16, d = `--dim`) is
traced with each form, attention's beside them; the three race round by round in this
process. benchmarks/history/profile.md ("The content lambda as a matmul") has what it printed.
"""

import argparse
import functools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def einsum_content_lambda(keys, values):
    """The form before: keys `[b, m, k, u]`, values `[b, m, v, u]` → `[b, k, v]`."""
    from keras import ops

    from keras_lambda.ops import content

    keys, values = ops.convert_to_tensor(keys), ops.convert_to_tensor(values)
    weights = ops.softmax(content._at_least_float32(keys), axis=1)
    return ops.einsum("bmku,bmvu->bkv", ops.cast(weights, values.dtype), values)


def race_steps(size, dim):
    """{name: a call starting one train step}: the layer with either form, attention."""
    from keras_lambda.bench import measure
    from keras_lambda.bench.methods import Case
    from keras_lambda.ops import content

    matmul_content_lambda = content.content_lambda
    steps = {}
    for name, method, form in (("matmul", "lambda/global/auto", matmul_content_lambda),
                               ("einsum", "lambda/global/auto", einsum_content_lambda),
                               ("attention", "attention", matmul_content_lambda)):
        content.content_lambda = form  # what the layer calls while it is traced
        try:
            module, shape = measure.build(Case(method, size, dim, 8))
            train_step, _, x, _ = measure.steps(module, shape, False, 8)
            measure.wait(train_step(x))  # traced now, with this form
        finally:
            content.content_lambda = matmul_content_lambda
        steps[name] = functools.partial(train_step, x)
    return steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=8, help="H = W (default 8)")
    parser.add_argument("--dim", type=int, default=128, help="d (default 128)")
    parser.add_argument("--rounds", type=int, default=31)
    args = parser.parse_args()
    import keras

    from keras_lambda.bench.measure import race_rounds
    from keras_lambda.bench.report import race_summary

    seconds = race_rounds(race_steps(args.size, args.dim), args.rounds)[0]
    print(f"{args.size}x{args.size}, layer train step, b=8 d={args.dim} h=4 k=16, "
          f"{keras.backend.backend()}, {args.rounds} rounds")
    pairs = [("matmul", "einsum"), ("matmul", "attention"), ("einsum", "attention")]
    print("\n".join(race_summary(seconds, pairs)))


if __name__ == "__main__":
    main()
