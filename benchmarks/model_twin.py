"""LambdaResNet-50 against ResNet50 and against its convolutional twin, raced.

    python benchmarks/model_twin.py              # TensorFlow, CPU: batch 16, 128 px, 7 rounds
    python benchmarks/model_twin.py --rounds 5

The twin is LambdaResNet-50 with the 3x3 convolutions of a ResNet in place of its
lambda layers (`LambdaResNet(depth=50, placement="CCCC")`: the same ResNet-RS base,
D stem, squeeze-excitation, average-pool shortcuts). Against it the ratio is what
the lambda layers do to the network's speed; against keras.applications.ResNet50
(the bench's `model/resnet50`) it also carries the base's cost. The
three train steps (SGD) run round by round in one process (`measure.race_rounds`);
ratios are per round: median (slowest-fastest). benchmarks/history/profile.md has what it
printed.
"""

import argparse
import functools
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZE, BATCH = 128, 16


def build_twin(size):
    """LambdaResNet-50's convolutional twin for `size` px images (the bench's classes)."""
    from keras_lambda import models
    from keras_lambda.bench.methods import MODEL_CLASSES

    return models.LambdaResNet(depth=50, placement="CCCC", input_shape=(size, size, 3),
                               classes=MODEL_CLASSES)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    from keras_lambda.bench import measure, report
    from keras_lambda.bench.methods import Case

    steps = {}
    for method in ("model/lambda_resnet50", "model/resnet50"):
        model, shape = measure.build(Case(method, SIZE, 0, BATCH))
        train_step, _, x, _ = measure.steps(model, shape, True, BATCH)
        steps[method] = functools.partial(train_step, x)
    train_step, _, x, _ = measure.steps(build_twin(SIZE), (BATCH, SIZE, SIZE, 3), True, BATCH)
    steps["twin"] = functools.partial(train_step, x)

    seconds, _ = measure.race_rounds(steps, args.rounds)
    race = {"rounds_s": seconds}
    for name, per_round in seconds.items():
        print(f"{name}: {statistics.median(per_round) * 1e3:,.0f} ms a step")
    for rival in ("model/resnet50", "twin"):
        middle, low, high = report.ratio_spread(race, rival, "model/lambda_resnet50")
        print(f"LambdaResNet-50 vs {rival}: {middle:.2f}x ({low:.2f}-{high:.2f})")
    middle, low, high = report.ratio_spread(race, "model/resnet50", "twin")
    print(f"twin vs model/resnet50: {middle:.2f}x ({low:.2f}-{high:.2f})")


if __name__ == "__main__":
    main()
