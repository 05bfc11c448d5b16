"""Every named model as data: the paper's LambdaResNets, the command line's tiny
model and timm's LambdaResNets (with their published ImageNet weights).

A preset is the `LambdaResNet` arguments that make the model, in the spirit of
timm's `ByoModelCfg` and keras-hub's presets: adding a variant is one entry
here. The command line's `--model`, the bench, the model table and the tuner
read this table. Pure data: importing it builds nothing.
"""

import dataclasses

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class TimmWeights:
    """A published timm checkpoint and the data configuration it was evaluated with.

    `url` is the Hugging Face file; `sha256` pins it (None: not pinned, see the
    README). `crop_pct`, `interpolation`, `mean` and `std` are timm's
    `pretrained_cfg` for the checkpoint; `top1`/`top5` its published ImageNet
    validation accuracy (timm's results table).
    """

    checkpoint: str
    input_size: int
    crop_pct: float
    top1: float
    top5: float
    interpolation: str = "bicubic"
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    sha256: str = None

    @property
    def url(self):
        return f"https://huggingface.co/timm/{self.checkpoint}/resolve/main/model.safetensors"


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named model: `LambdaResNet(**arguments)`, its family and its weights.

    Example:
    ```python
    from keras_lambda.models import LambdaResNet, presets

    preset = presets.get("tiny")
    model = LambdaResNet(**{**preset.arguments, "input_shape": (32, 32, 3)}, classes=10)
    ```
    """

    name: str
    family: str  # "paper", "cli" or "timm"
    description: str
    arguments: dict
    weights: TimmWeights = None


# Blocks per stage c2..c5 of the paper's family (PAPER.md, "LambdaResNets") and its
# lambda blocks in c4: the paper gives the counts, not which blocks; we take the
# last ones of c4, next to c5 (the lowest-resolution end).
PAPER_DEPTHS = {
    50: ((3, 4, 6, 3), 1),
    101: ((3, 4, 23, 3), 3),
    152: ((3, 8, 36, 3), 6),
    200: ((3, 24, 36, 3), 6),
    270: ((4, 29, 53, 4), 6),
    350: ((4, 36, 72, 4), 6),
    420: ((4, 44, 87, 4), 8),
}


def paper_placement(depth):
    """All of c5 and the last blocks of c4."""
    blocks, in_c4 = PAPER_DEPTHS[depth]
    return ("C", "C", tuple(range(blocks[2] - in_c4, blocks[2])), "L")


def _paper(depth):
    blocks, in_c4 = PAPER_DEPTHS[depth]
    return Preset(
        name=f"lambda_resnet{depth}",
        family="paper",
        description=f"LambdaResNet-{depth}: ResNet-RS, blocks {blocks}, lambda layers "
        f"(k=16, h=4, u=1, r=23) in all c5 blocks and the last {in_c4} of c4",
        arguments=dict(stackwise_num_blocks=blocks, placement=paper_placement(depth),
                       base="resnet-rs", scope=23),
    )


# timm's LambdaResNets (timm/models/byoanet.py): ResNet-T base (tiered stem, max
# pool, strided 1x1 conv shortcuts, no SE), r = 9 lambda convolutions with a
# position bias (or relative tables: "rpt"), 2x2 average pooling after a strided
# lambda layer, batch norms with epsilon 1e-5 and momentum 0.9 (torch's 0.1).
TIMM_LAMBDA = dict(position_bias=True, norm_epsilon=1e-5, norm_momentum=0.9)
TIMM_BASE = dict(base="resnet-t", lambda_pool_size=2, lambda_layer_kwargs=TIMM_LAMBDA)

PRESETS = {
    preset.name: preset
    for preset in (
        Preset(
            name="tiny",
            family="cli",
            description="what `keras-lambda train` trains by default: one block a stage, "
            "a quarter of the width (the stem's too), global lambda layers (k=8) in c4 "
            "and c5",
            arguments=dict(stackwise_num_blocks=(1, 1, 1, 1), width_multiplier=0.25,
                           stem_width=16, placement="CCLL", scope=None, key_dim=8),
        ),
        *(_paper(depth) for depth in PAPER_DEPTHS),
        Preset(
            name="lambda_resnet26t",
            family="timm",
            description="timm's lambda_resnet26t: blocks (2, 2, 2, 2), lambda layers "
            "(r=9) in c4 block 1 and all of c5, ReLU",
            arguments=dict(stackwise_num_blocks=(2, 2, 2, 2), placement=("C", "C", [1], "L"),
                           scope=9, **TIMM_BASE),
            weights=TimmWeights("lambda_resnet26t.c1_in1k", 256, 0.94, 79.126, 94.554),
        ),
        Preset(
            name="lambda_resnet50ts",
            family="timm",
            description="timm's lambda_resnet50ts: blocks (3, 4, 6, 3), lambda layers "
            "(r=9) in c3 block 3, c4 blocks 1, 3, 5 and c5 block 1, SiLU",
            arguments=dict(stackwise_num_blocks=(3, 4, 6, 3),
                           placement=("C", [3], [1, 3, 5], [1]), scope=9,
                           activation="silu", **TIMM_BASE),
            weights=TimmWeights("lambda_resnet50ts.a1h_in1k", 256, 0.95, 81.184, 95.094),
        ),
        Preset(
            name="lambda_resnet26rpt_256",
            family="timm",
            description="timm's lambda_resnet26rpt_256: lambda_resnet26t with global "
            "relative position tables instead of r=9 convolutions, sized for 256 px "
            "inputs (other sizes: input_shape=, the tables cropped or resampled)",
            arguments=dict(stackwise_num_blocks=(2, 2, 2, 2), placement=("C", "C", [1], "L"),
                           scope=None, input_shape=(256, 256, 3), table_input_size=256,
                           **{**TIMM_BASE, "lambda_layer_kwargs": dict(
                               TIMM_LAMBDA, position_bias=False)}),
            weights=TimmWeights("lambda_resnet26rpt_256.c1_in1k", 256, 0.94, 78.960, 94.420),
        ),
    )
}


def names(family=None):
    """Preset names, in table order; `family` ("paper", "cli", "timm") narrows them.

    Example:
    ```python
    from keras_lambda.models import presets

    timm = presets.names("timm")
    print(timm)   # ('lambda_resnet26t', 'lambda_resnet50ts', 'lambda_resnet26rpt_256')
    ```
    """
    return tuple(name for name, preset in PRESETS.items() if family in (None, preset.family))


def get(name):
    """The `Preset` called `name`; ValueError naming the choices otherwise.

    Example:
    ```python
    from keras_lambda.models import presets

    preset = presets.get("lambda_resnet50")
    print(preset.description, preset.arguments)
    ```
    """
    if name not in PRESETS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]
