"""The `dft` kernel's key chunks kept for the backward pass against recomputed in it,
raced in the layer's train step on a CPU (any Keras backend).

    KERAS_BACKEND=jax python benchmarks/dft_recompute.py --size 128 --rounds 5
    python benchmarks/dft_recompute.py --size 64               # TensorFlow

`recomputed`: each chunk's lambdas under `keras.remat` (what
`keras_lambda.ops.position.dft.RECOMPUTED_CHUNK_BACKENDS` lists JAX for); `kept`:
autodiff keeps each chunk's Toeplitz blocks and lambdas until the backward pass. The
bench's train step of `lambda/global/dft` (b = 8, h = 4, k = 16, d = `--dim`; the size
must make chunks, 64x64 and up at v = 32) is traced each way, `lambda/global/fft`'s
beside them; the three race round by round in this process. On JAX each step's XLA
compiled memory analysis is printed too. benchmarks/history/profile.md ("The dft's chunks
recomputed on JAX") has what it printed.
"""

import argparse
import functools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def race_steps(size, dim):
    """({name: a call starting one train step}, {name: compiled bytes or None})."""
    import keras

    from keras_lambda.bench import measure
    from keras_lambda.bench.methods import Case
    from keras_lambda.ops.position import dft

    listed = dft.RECOMPUTED_CHUNK_BACKENDS
    steps, compiled = {}, {}
    for name, method, backends in (("recomputed", "lambda/global/dft", (keras.backend.backend(),)),
                                   ("kept", "lambda/global/dft", ()),
                                   ("fft", "lambda/global/fft", listed)):
        dft.RECOMPUTED_CHUNK_BACKENDS = backends  # read while the step is traced
        try:
            module, shape = measure.build(Case(method, size, dim, 8))
            train_step, _, x, compiled[name] = measure.steps(module, shape, False, 8)
            measure.wait(train_step(x))  # traced now, this way
        finally:
            dft.RECOMPUTED_CHUNK_BACKENDS = listed
        steps[name] = functools.partial(train_step, x)
    return steps, compiled


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64, help="H = W (default 64)")
    parser.add_argument("--dim", type=int, default=128, help="d (default 128)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    import keras

    from keras_lambda.bench.measure import race_rounds
    from keras_lambda.bench.report import race_summary

    steps, compiled = race_steps(args.size, args.dim)
    seconds = race_rounds(steps, args.rounds)[0]
    print(f"{args.size}x{args.size}, layer train step, b=8 d={args.dim} h=4 k=16, "
          f"{keras.backend.backend()}, {args.rounds} rounds")
    print("\n".join(race_summary(seconds, [("recomputed", "kept"), ("recomputed", "fft")])))
    for name, size in compiled.items():
        if size is not None:
            print(f"{name}: compiled {size / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
