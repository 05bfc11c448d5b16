"""Writes benchmarks/lambda_resnets.md: parameters and multiply-adds of LambdaResNets.

    python benchmarks/model_table.py            # every variant (a few minutes)
    python benchmarks/model_table.py --quick    # ResNet-50 placements only

Parameters count every weight of the 1000-class ImageNet model (BatchNorm moving
statistics included, as `model.count_params()`), then the trainable ones; GMACs
are multiply-adds of one 224x224 image from `keras_lambda.models.flops`
(what the ResNet and LambdaNetworks papers call FLOPs).
"""

import argparse
import pathlib

import keras

from keras_lambda.models import LambdaResNet
from keras_lambda.models.flops import count_macs

OUTPUT = pathlib.Path(__file__).with_name("lambda_resnets.md")
VARIANTS = [50, 101, 152, 200, 270, 350, 420]
ABLATIONS = ["CCCC", "CCCL", "CCLL", "CLLL", "LLLL"]


def describe(model):
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    return model.count_params(), trainable, count_macs(model) / 1e9


def rows(quick):
    for placement in ABLATIONS:
        model = LambdaResNet(
            depth=50, base="resnet", placement=placement, scope=23, input_shape=(224, 224, 3)
        )
        build = f'`LambdaResNet(depth=50, base="resnet", placement="{placement}", scope=23)`'
        yield f"ResNet-50 ablation {placement}", build, describe(model)
        keras.backend.clear_session()
    if quick:
        return
    for depth in VARIANTS:
        model = LambdaResNet(depth=depth, input_shape=(224, 224, 3))
        yield f"LambdaResNet-{depth}", f"`LambdaResNet{depth}()`", describe(model)
        keras.backend.clear_session()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    lines = [
        "| model | build with | params (all) | params (trainable) | GMACs at 224 px |",
        "|---|---|---:|---:|---:|",
    ]
    for label, build, (params, trainable, gmacs) in rows(args.quick):
        lines.append(f"| {label} | {build} | {params / 1e6:.2f}M | {trainable / 1e6:.2f}M | {gmacs:.2f} |")
        print(lines[-1], flush=True)
    OUTPUT.write_text(
        "<!-- written by benchmarks/model_table.py; do not edit by hand -->\n"
        + "\n".join(lines)
        + "\n"
    )
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
