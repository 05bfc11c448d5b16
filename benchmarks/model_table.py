"""Writes benchmarks/records/lambda_resnets.md: parameters and multiply-adds of LambdaResNets.

    python benchmarks/model_table.py            # the ablations and every preset (minutes)
    python benchmarks/model_table.py --quick    # ResNet-50 placements only

Rows: the paper's ResNet-50 ablation placements, then every named model of
`keras_lambda.models.presets` but the CLI's tiny one. Parameters count every
weight of the 1000-class ImageNet model (BatchNorm moving statistics included,
as `model.count_params()`), then the trainable ones (what timm counts); GMACs
are multiply-adds of one image from `keras_lambda.models.flops` (what the ResNet
and LambdaNetworks papers call FLOPs), at 224 px, timm's presets at the 256 px
their weights were evaluated at.
"""

import argparse
import pathlib

import keras

from keras_lambda.models import LambdaResNet, build_preset, presets
from keras_lambda.models.flops import count_macs

OUTPUT = pathlib.Path(__file__).parent / "records" / "lambda_resnets.md"
ABLATIONS = ["CCCC", "CCCL", "CCLL", "CLLL", "LLLL"]


def describe(model):
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    return model.count_params(), trainable, count_macs(model) / 1e9, model.input_shape[1]


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
    for name in presets.names("paper") + presets.names("timm"):
        preset = presets.get(name)
        side = preset.weights.input_size if preset.weights else 224  # timm's: at 256
        model = build_preset(name, input_shape=(side, side, 3))
        yield name, f'`build_preset("{name}")`', describe(model)
        keras.backend.clear_session()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    lines = [
        "| model | build with | params (all) | params (trainable) | GMACs | at px |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for label, build, (params, trainable, gmacs, size) in rows(args.quick):
        lines.append(f"| {label} | {build} | {params / 1e6:.2f}M | {trainable / 1e6:.3f}M | "
                     f"{gmacs:.2f} | {size} |")
        print(lines[-1], flush=True)
    OUTPUT.write_text(
        "<!-- written by benchmarks/model_table.py; do not edit by hand -->\n"
        + "\n".join(lines)
        + "\n"
    )
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
