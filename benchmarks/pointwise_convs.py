"""LambdaResNet-50's 1x1 convolutions as matmuls against as convolutions, raced.

    python benchmarks/pointwise_convs.py               # TensorFlow, CPU: batch 16, 128 px
    python benchmarks/pointwise_convs.py --size 224 --rounds 5
    KERAS_BACKEND=jax python benchmarks/pointwise_convs.py --rounds 5 --layers

The model's 1x1 stride-1 convolutions are `PointwiseConv2D`s, matmuls over the
channels on a CPU. Two copies of LambdaResNet-50 are
built, one with its `PointwiseConv2D`s sent back to `keras.ops.conv`, and their train
steps (SGD) raced round by round in one process with keras.applications.ResNet50
(`measure.race_rounds`); ratios per round: median (slowest-fastest).
`--layers` first races a single 1x1 convolution's train step (Σ y², gradients of
input and kernel) both ways at the shapes of a ResNet-50's pointwise layers.
benchmarks/history/profile.md has what it printed.
"""

import argparse
import functools
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZE, BATCH = 128, 16
# (H = W, c_in, c_out): a ResNet-50's pointwise convolutions, c2 to c5 and 128 to 224 px.
LAYER_SHAPES = [(32, 256, 64), (32, 64, 256), (16, 512, 128), (16, 256, 512),
                (14, 1024, 256), (8, 256, 1024), (8, 512, 1024), (7, 512, 2048),
                (4, 2048, 512), (4, 1024, 2048), (1, 128, 2048)]


def as_convolutions(model):
    """`model` with every `PointwiseConv2D` computing through `keras.ops.conv`."""
    import keras

    from keras_lambda.layers import PointwiseConv2D

    for layer in model._flatten_layers():
        if isinstance(layer, PointwiseConv2D):
            layer.convolution_op = functools.partial(keras.layers.Conv2D.convolution_op, layer)
    return model


def layer_races(rounds):
    import keras

    from keras_lambda.bench import measure, report
    from keras_lambda.layers import PointwiseConv2D

    for size, channels_in, channels_out in LAYER_SHAPES:
        steps = {}
        for name in ("matmul", "conv"):
            layer = PointwiseConv2D(channels_out, use_bias=False)
            if name == "conv":
                as_convolutions(layer)
            train_step, _, x, _ = measure.steps(layer, (BATCH, size, size, channels_in),
                                                False, BATCH)
            steps[name] = functools.partial(train_step, x)
        seconds, _ = measure.race_rounds(steps, rounds)
        middle, low, high = report.ratio_spread({"rounds_s": seconds}, "conv", "matmul")
        print(f"{size}x{size}, {channels_in} → {channels_out}: conv "
              f"{statistics.median(seconds['conv']) * 1e3:.1f} ms, matmul "
              f"{statistics.median(seconds['matmul']) * 1e3:.1f} ms: "
              f"{middle:.2f}x ({low:.2f}-{high:.2f})", flush=True)
    keras.backend.clear_session()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--size", type=int, default=SIZE, help="the models' image side, px")
    parser.add_argument("--layers", action="store_true",
                        help="race single 1x1 convolutions first")
    args = parser.parse_args()

    from keras_lambda.bench import measure, report
    from keras_lambda.bench.methods import Case

    if args.layers:
        layer_races(args.rounds)
    steps = {}
    for name, method in (("matmul", "model/lambda_resnet50"), ("conv", "model/lambda_resnet50"),
                         ("resnet50", "model/resnet50")):
        model, shape = measure.build(Case(method, args.size, 0, BATCH))
        if name == "conv":
            as_convolutions(model)
        train_step, _, x, _ = measure.steps(model, shape, True, BATCH)
        steps[name] = functools.partial(train_step, x)

    seconds, _ = measure.race_rounds(steps, args.rounds)
    print("\n".join(report.race_summary(
        seconds, (("matmul", "conv"), ("matmul", "resnet50"), ("conv", "resnet50")))))


if __name__ == "__main__":
    main()
