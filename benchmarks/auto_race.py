"""Kernels of one LambdaLayer geometry raced: what `implementation="auto"`'s bounds
are fitted to.

    python benchmarks/auto_race.py 0 24 128 5 einsum fft        # global 24x24, d = 128, 5 rounds
    python benchmarks/auto_race.py 5 64 128 5 depthwise fft     # scope 5
    python benchmarks/auto_race.py 0 -512 256 7 einsum fft      # a sequence of 512
    python benchmarks/auto_race.py 0 -256 256 7 einsum fft --causal
    python benchmarks/auto_race.py 0 24 128 7 einsum fft --intra-depth 4

Arguments: SCOPE (0: global), SIZE (the image side; negative: a sequence of that
length), DIM (d; h = 4, k = 16, batch 8), ROUNDS, then the kernels (`auto` too, which
prints its pick). The bench's train step of each layer, round by round in one
process (`measure.race_rounds`); prints the medians and, per kernel, its time over
the first kernel's per round: median (lowest-highest). benchmarks/records/auto.md has what
it printed.
"""

import argparse
import functools
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scope", type=int)
    parser.add_argument("size", type=int)
    parser.add_argument("dim", type=int)
    parser.add_argument("rounds", type=int)
    parser.add_argument("kernels", nargs="+")
    parser.add_argument("--causal", action="store_true")
    parser.add_argument("--intra-depth", type=int, default=1, help="u (default 1)")
    args = parser.parse_args()

    from keras_lambda import layers
    from keras_lambda.bench import measure, report

    spatial = (-args.size,) if args.size < 0 else (args.size, args.size)
    steps = {}
    for kernel in args.kernels:
        layer = layers.LambdaLayer(args.dim, key_dim=16, num_heads=4, scope=args.scope or None,
                                   intra_depth=args.intra_depth, implementation=kernel,
                                   causal=args.causal)
        train_step, _, x, _ = measure.steps(layer, (8,) + spatial + (args.dim,), False, 8)
        steps[kernel] = functools.partial(train_step, x)
        if kernel == "auto":
            print("auto picks", layer.position_implementation(spatial))
    seconds, _ = measure.race_rounds(steps, args.rounds)
    ranked = sorted(seconds, key=lambda kernel: statistics.median(seconds[kernel]))
    print(f"scope {args.scope or 'global'}, {spatial}, d = {args.dim}, u = {args.intra_depth}: "
          + ", ".join(f"{kernel} {statistics.median(seconds[kernel]):.3f} s" for kernel in ranked))
    first = args.kernels[0]
    for kernel in args.kernels[1:]:
        middle, low, high = report.ratio_spread({"rounds_s": seconds}, kernel, first)
        print(f"  {kernel} / {first}: {middle:.2f} ({low:.2f}-{high:.2f})")


if __name__ == "__main__":
    main()
