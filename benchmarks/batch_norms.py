"""Batch norms fused into one kernel against Keras's, raced (TensorFlow or PyTorch, CPU).

    python benchmarks/batch_norms.py --layers            # batch 16, 128 px
    python benchmarks/batch_norms.py --size 224 --rounds 7
    KERAS_BACKEND=torch python benchmarks/batch_norms.py --layers --rounds 5

LambdaResNets' batch norms are `FusedBatchNormalization`s: on a CPU their training step
is one kernel (TensorFlow: `FusedBatchNormV3`, PyTorch: `torch.native_batch_norm`). Four
train steps (SGD, batch 16) are raced round by round in one process
(`measure.race_rounds`): LambdaResNet-50 as built, a copy with Keras's batch norms,
keras.applications.ResNet50 as Keras builds it, and a copy of it with fused batch norms
(what ResNet50 would gain from the same change); ratios per round: median
(slowest-fastest). `--layers` first races a single batch norm's train step (the bench's
loss, gradients of input, scale and offset) both ways at ResNet-50's shapes.
benchmarks/history/profile.md has what it printed.
"""

import argparse
import functools
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZE, BATCH = 128, 16
# (H = W, c): batch norms of a ResNet-50 (stem to c5) at 224 px.
LAYER_SHAPES = [(112, 32), (112, 64), (56, 64), (56, 256), (28, 128), (28, 512), (14, 256),
                (14, 1024), (7, 512), (7, 2048)]


def with_batch_norms(model, fused):
    """`model` with every batch norm fused (`FusedBatchNormalization`) or Keras's.
    The two classes hold the same state, so switching a layer's class is enough."""
    import keras

    from keras_lambda.layers import FusedBatchNormalization

    kind = FusedBatchNormalization if fused else keras.layers.BatchNormalization
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.__class__ = kind
    return model


def layer_races(rounds):
    import keras

    from keras_lambda.bench import measure, report

    for size, channels in LAYER_SHAPES:
        steps = {}
        for name in ("fused", "keras"):
            layer = with_batch_norms(keras.layers.BatchNormalization(), name == "fused")
            train_step, _, x, _ = measure.steps(layer, (BATCH, size, size, channels),
                                                False, BATCH)
            steps[name] = functools.partial(train_step, x)
        seconds, _ = measure.race_rounds(steps, rounds)
        middle, low, high = report.ratio_spread({"rounds_s": seconds}, "keras", "fused")
        print(f"{size}x{size}x{channels}: Keras "
              f"{statistics.median(seconds['keras']) * 1e3:.1f} ms, fused "
              f"{statistics.median(seconds['fused']) * 1e3:.1f} ms: "
              f"{middle:.2f}x ({low:.2f}-{high:.2f})", flush=True)
    keras.backend.clear_session()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--size", type=int, default=SIZE, help="the models' image side, px")
    parser.add_argument("--layers", action="store_true",
                        help="race single batch norms first")
    args = parser.parse_args()

    from keras_lambda.bench import measure, report
    from keras_lambda.bench.methods import Case

    if args.layers:
        layer_races(args.rounds)
    steps = {}
    for name, method, fused in (("lambda", "model/lambda_resnet50", True),
                                ("lambda_keras_bn", "model/lambda_resnet50", False),
                                ("resnet50", "model/resnet50", False),
                                ("resnet50_fused_bn", "model/resnet50", True)):
        model, shape = measure.build(Case(method, args.size, 0, BATCH))
        train_step, _, x, _ = measure.steps(with_batch_norms(model, fused), shape, True, BATCH)
        steps[name] = functools.partial(train_step, x)

    seconds, _ = measure.race_rounds(steps, args.rounds)
    print("\n".join(report.race_summary(seconds, (
        ("lambda", "lambda_keras_bn"), ("lambda", "resnet50"), ("lambda_keras_bn", "resnet50"),
        ("resnet50_fused_bn", "resnet50"), ("lambda", "resnet50_fused_bn")))))


if __name__ == "__main__":
    main()
