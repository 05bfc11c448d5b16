"""LambdaResNets: ResNets whose bottleneck blocks use lambda layers (Bello, 2021)."""

import os

import keras

from keras_lambda.layers import RelativePositionEmbedding
from keras_lambda.layers import checks
from keras_lambda.models import blocks
from keras_lambda.models.presets import IMAGENET_MEAN, IMAGENET_STD, PAPER_DEPTHS, paper_placement

STAGE_FILTERS = (64, 128, 256, 512)  # bottleneck widths; outputs are 4x
STAGE_NAMES = ("c2", "c3", "c4", "c5")
BASES = {
    # stem, ResNet-D avg-pool shortcut, default se_ratio, zero-init last BN
    "resnet-rs": ("resnet-d", True, 0.25, True),
    "resnet": ("resnet", False, 0.0, False),
    "resnet-t": ("tiered", False, 0.0, True),  # timm's ResNet-T (byobnet)
}
NETWORK_STRIDE = 32


def parse_placement(placement, stackwise_num_blocks):
    """Which blocks use a lambda layer: a tuple of 4 sorted tuples of indices.

    `placement` is the paper's stage notation, one letter per stage c2..c5 ("C":
    every block a 3x3 conv, "L": every block a lambda layer), e.g. "CCLL", or a
    sequence of 4 entries each "C", "L" or an iterable of block indices, e.g.
    `("C", "C", [4, 5], "L")` for "blocks 4 and 5 of c4 and all of c5".

    Example:
    ```python
    from keras_lambda.models import parse_placement

    print(parse_placement("CCLL", (3, 4, 6, 3)))      # ((), (), (0, 1, 2, 3, 4, 5), (0, 1, 2))
    print(parse_placement(("C", "C", [4, 5], "L"), (3, 4, 6, 3)))   # ((), (), (4, 5), (0, 1, 2))
    ```
    """
    entries = tuple(placement)  # letters of a string, or the entries of a sequence
    if len(entries) != len(stackwise_num_blocks):
        raise ValueError(
            f"`placement` needs one entry per stage ({len(stackwise_num_blocks)}: "
            f"c2..c5), e.g. 'CCLL'. Received: placement={placement!r}"
        )
    parsed = []
    for stage, (entry, num_blocks) in enumerate(zip(entries, stackwise_num_blocks)):
        if isinstance(entry, str):
            if entry.upper() not in ("C", "L"):
                raise ValueError(
                    "`placement` letters must be 'C' (3x3 conv) or 'L' (lambda layer). "
                    f"Received: {entry!r} for stage {STAGE_NAMES[stage]} in "
                    f"placement={placement!r}"
                )
            parsed.append(tuple(range(num_blocks)) if entry.upper() == "L" else ())
            continue
        indices = tuple(sorted(set(entry)))
        for index in indices:
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < num_blocks:
                raise ValueError(
                    f"`placement` block index {index!r} is out of range for stage "
                    f"{STAGE_NAMES[stage]}, which has {num_blocks} blocks (0..{num_blocks - 1}). "
                    f"Received: placement={placement!r}"
                )
        parsed.append(indices)
    return tuple(parsed)


def _input_tensor(input_tensor, input_shape, global_lambda):
    if input_shape is None and input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        input_shape = (224, 224, 3) if global_lambda else (None, None, 3)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(
            "`input_shape` must be (H, W, channels). Received: "
            f"input_shape={input_shape!r}"
        )
    for size in input_shape[:2]:
        if size is not None and size < NETWORK_STRIDE:
            raise ValueError(
                f"`input_shape` {input_shape} is smaller than the network's stride "
                f"{NETWORK_STRIDE}: every spatial size must be >= {NETWORK_STRIDE}."
            )
    if global_lambda and None in input_shape[:2]:
        raise ValueError(
            "Global lambda layers (scope=None) size their relative embeddings from "
            f"the input: give a fixed input_shape. Received: input_shape={input_shape!r}"
        )
    if input_tensor is None:
        return keras.Input(input_shape, name="image")
    return input_tensor


def _rescaling(include_rescaling):
    """Pixel values 0..255 → [0, 1], or → ImageNet-normalised ((x / 255 − mean) / std)."""
    if include_rescaling == "imagenet":
        return keras.layers.Rescaling(
            scale=[1 / (255 * std) for std in IMAGENET_STD],
            offset=[-mean / std for mean, std in zip(IMAGENET_MEAN, IMAGENET_STD)],
            name="rescaling",
        )
    return keras.layers.Rescaling(1 / 255, name="rescaling")


def LambdaResNet(
    depth=50,
    stackwise_num_blocks=None,
    placement=None,
    base="resnet-rs",
    key_dim=16,
    num_heads=4,
    intra_depth=1,
    scope=23,
    share_embeddings=False,
    se_ratio=None,
    drop_path_rate=0.0,
    width_multiplier=1.0,
    stem_width=64,
    activation="relu",
    lambda_pool_size=3,
    lambda_layer_kwargs=None,
    table_input_size=None,
    dropout_rate=0.0,
    include_rescaling=False,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
):
    """Builds a LambdaResNet: a ResNet whose chosen bottlenecks mix with lambda layers.

    Stages c2..c5 of bottleneck blocks (widths 64, 128, 256, 512 times
    `width_multiplier`, outputs 4x, strides 4, 8, 16, 32); in the blocks named by
    `placement` the 3x3 convolution becomes a `LambdaLayer` at the block's input
    resolution, followed in a downsampling block by average pooling with stride 2.

    Choices where the paper is not explicit (all arguments):
    - Named variants put lambda layers in every c5 block and in the *last*
      1 (50), 3 (101), 6 (152-350) or 8 (420) blocks of c4; the paper gives the
      counts, not the positions.
    - The ResNet-RS stem replaces the max pool by a fourth, strided 3x3 conv.
    - Pooling after a strided lambda layer is 3x3 'same' (the paper's words);
      `lambda_pool_size=2` gives timm's 2x2.
    - A lambda block keeps the BN + activation that followed its 3x3 conv.

    Named models (the paper's, timm's, the command line's tiny one) are presets of
    these arguments: `keras_lambda.models.presets`, built by `LambdaResNet50()`,
    `LambdaResNet26T()`, ... or `build_preset(name)`.

    Args:
        depth: 50, 101, 152, 200, 270, 350 or 420; sets the block counts and the
            default placement (the paper's presets). Ignored for counts when
            `stackwise_num_blocks` is given.
        stackwise_num_blocks: blocks per stage c2..c5, e.g. (3, 4, 6, 3).
        placement: stage letters like "CCLL", or per-stage "C"/"L"/block indices
            (see `parse_placement`). None: the named variant's placement for
            `depth`, or "CCLL" with custom block counts.
        base: "resnet-rs" (ResNet-D stem and avg-pool shortcut, squeeze-excitation,
            zero-initialised residual BN), "resnet" (ResNet-50 v1.5: 7x7 stem,
            conv shortcut, no SE) or "resnet-t" (timm's: tiered 3x3 stem with a
            max pool, strided 1x1 conv shortcut, no SE).
        key_dim, num_heads, intra_depth: k, h, u of the lambda layers.
        scope: r of the lambda convolution (23, the paper's); None: global lambda
            layers (needs a fixed input_shape).
        share_embeddings: one `RelativePositionEmbedding` per stage, shared by its
            lambda layers (the paper's shared embeddings).
        se_ratio: squeeze-excitation ratio; None: 0.25 for resnet-rs, 0 for resnet.
        drop_path_rate: stochastic depth at the last block, linear in depth.
        width_multiplier: scales every stage's width.
        stem_width: the stem's output channels (64, as every published model;
            its inner convolutions take half). At full resolution the stem
            holds most of a narrow model's activations: the tiny preset uses 16.
        activation: of every block ("relu", "silu", ...).
        lambda_pool_size: 3 (paper) or 2 (timm), pooling after strided lambda layers.
        lambda_layer_kwargs: further `LambdaLayer` arguments of every lambda
            layer, e.g. `dict(position_bias=True, norm_epsilon=1e-5)` (timm's).
        table_input_size: global lambda layers (scope=None) only: the input size
            (an int or (H, W)) their relative tables are sized for, e.g. the size
            pretrained weights were trained at; any other input size serves too:
            smaller inputs use the tables' central offsets, larger ones resample
            them (`RelativePositionEmbedding(larger_inputs="resample")`). None:
            the tables fit `input_shape` exactly and larger inputs are refused.
        dropout_rate: dropout before the classifier (with `include_top`).
        include_rescaling: False (the model takes its inputs as they are), True
            (it takes pixel values 0..255, uint8 or float, and scales them to
            [0, 1] itself, as the training pipelines of `keras_lambda.training`
            feed it) or "imagenet" (pixel values 0..255, scaled to [0, 1] and
            normalised by ImageNet's mean and std, the inputs timm's checkpoints
            were trained on). One `keras.layers.Rescaling` layer, "rescaling".
        weights: None or the path of a Keras weights file (`.weights.h5`, `.keras`)
            for this architecture. ImageNet weights exist for timm's architectures
            only: `LambdaResNet26T(weights="imagenet")` and its siblings. The other
            `keras.applications` arguments (include_top, input_tensor, input_shape,
            pooling, classes, classifier_activation, name) work as there.

    Returns:
        A `keras.Model`; stage outputs are the layers `c2_out` .. `c5_out`
        (see `feature_extractor`).

    Example:
    ```python
    from keras_lambda.models import LambdaResNet

    model = LambdaResNet(depth=50, placement="CCLL", scope=23, classes=10,
                         input_shape=(128, 128, 3))
    ```

    Reference:
        Irwan Bello, "LambdaNetworks: Modeling Long-Range Interactions Without
        Attention", ICLR 2021. Bello et al., "Revisiting ResNets: Improved
        Training and Scaling Strategies" (ResNet-RS), 2021.
    """
    if weights == "imagenet":
        raise ValueError(
            "No ImageNet weights are published for this architecture (the paper "
            "released none); timm's LambdaResNets have them: "
            "LambdaResNet26T(weights='imagenet'), LambdaResNet50TS(...), "
            "LambdaResNet26RPT256(...). Received: weights='imagenet'"
        )
    if weights is not None and not os.path.isfile(weights):
        raise ValueError(
            "`weights` must be None or the path of a Keras weights file. Received: "
            f"weights={weights!r}, which is not a file"
        )
    checks.one_of("base", base, tuple(BASES))
    checks.one_of("pooling", pooling, (None, "avg", "max"))
    checks.one_of("lambda_pool_size", lambda_pool_size, (2, 3))
    checks.one_of("include_rescaling", include_rescaling, (False, True, "imagenet"))
    if stackwise_num_blocks is None:
        checks.one_of("depth", depth, tuple(PAPER_DEPTHS))
        stackwise_num_blocks = PAPER_DEPTHS[depth][0]
        if placement is None:
            placement = paper_placement(depth)
    else:
        stackwise_num_blocks = tuple(stackwise_num_blocks)
        if len(stackwise_num_blocks) != 4:
            raise ValueError(
                "`stackwise_num_blocks` needs 4 entries (c2..c5). Received: "
                f"stackwise_num_blocks={stackwise_num_blocks!r}"
            )
        for count in stackwise_num_blocks:
            checks.positive_int("stackwise_num_blocks", count)
        if placement is None:
            placement = "CCLL"
    lambda_blocks = parse_placement(placement, stackwise_num_blocks)
    if not 0 <= drop_path_rate < 1:
        raise ValueError(f"`drop_path_rate` must be in [0, 1). Received: {drop_path_rate}")
    if not 0 <= dropout_rate < 1:
        raise ValueError(f"`dropout_rate` must be in [0, 1). Received: {dropout_rate}")
    if width_multiplier <= 0:
        raise ValueError(f"`width_multiplier` must be > 0. Received: {width_multiplier}")
    checks.positive_int("stem_width", stem_width)
    stem, avg_pool_shortcut, default_se_ratio, zero_init_residual = BASES[base]
    se_ratio = default_se_ratio if se_ratio is None else se_ratio

    uses_lambda = any(lambda_blocks)
    inputs = _input_tensor(input_tensor, input_shape, uses_lambda and scope is None)
    x = _rescaling(include_rescaling)(inputs) if include_rescaling else inputs
    x = blocks.apply_stem(x, stem, activation, stem_width)
    total_blocks = sum(stackwise_num_blocks)
    block_number = 0
    for stage, num_blocks in enumerate(stackwise_num_blocks):
        stage_name = STAGE_NAMES[stage]
        filters = max(1, int(round(STAGE_FILTERS[stage] * width_multiplier)))
        embedding = None
        if share_embeddings and lambda_blocks[stage]:
            embedding = RelativePositionEmbedding(
                key_dim=key_dim,
                intra_depth=intra_depth,
                scope=scope,
                name=f"{stage_name}_shared_embedding",
                **_table_geometry(table_input_size, scope, stage, 0),
            )
        for index in range(num_blocks):
            lambda_kwargs = None
            if index in lambda_blocks[stage]:
                own_table = _table_geometry(table_input_size, scope, stage, index)
                if embedding is None and own_table:
                    own_table = {"embedding": RelativePositionEmbedding(
                        key_dim=key_dim, intra_depth=intra_depth, scope=None,
                        name=f"{stage_name}_block{index}_embedding", **own_table)}
                else:
                    own_table = {"embedding": embedding}
                lambda_kwargs = {
                    **(lambda_layer_kwargs or {}),
                    "key_dim": key_dim,
                    "num_heads": num_heads,
                    "intra_depth": intra_depth,
                    "scope": scope,
                    **own_table,
                }
            x = blocks.apply_bottleneck_block(
                x,
                filters,
                stride=2 if index == 0 and stage > 0 else 1,
                lambda_kwargs=lambda_kwargs,
                lambda_pool_size=lambda_pool_size,
                se_ratio=se_ratio,
                drop_rate=drop_path_rate * block_number / total_blocks,
                avg_pool_shortcut=avg_pool_shortcut,
                zero_init_residual=zero_init_residual,
                activation=activation,
                name=f"{stage_name}_block{index}",
            )
            block_number += 1
        x = keras.layers.Identity(name=f"{stage_name}_out")(x)

    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout_rate:
            x = keras.layers.Dropout(dropout_rate, name="top_dropout")(x)
        # float32 probabilities under mixed precision (Keras's advice for the last layer)
        x = keras.layers.Dense(
            classes, activation=classifier_activation, dtype="float32", name="predictions"
        )(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    if input_tensor is not None:
        model_inputs = keras.utils.get_source_inputs(input_tensor)
    else:
        model_inputs = inputs
    if name is None:
        paper_blocks = PAPER_DEPTHS.get(depth, (None,))[0]
        name = f"lambda_resnet{depth}" if stackwise_num_blocks == paper_blocks else "lambda_resnet"
    model = keras.Model(model_inputs, x, name=name)
    if weights is not None:
        model.load_weights(weights)
    return model


def _table_geometry(table_input_size, scope, stage, index):
    """The `RelativePositionEmbedding` arguments of a global lambda layer in block
    `index` of `stage` whose tables are sized for `table_input_size` ({} if none)."""
    if table_input_size is None or scope is not None:
        return {}
    sizes = (table_input_size,) * 2 if isinstance(table_input_size, int) else table_input_size
    stride = 2 ** (stage + 2) // (2 if index == 0 and stage > 0 else 1)  # the block's input
    if len(sizes) != 2 or any(size < NETWORK_STRIDE for size in sizes):
        raise ValueError(f"`table_input_size` must be an int or (H, W) of at least "
                         f"{NETWORK_STRIDE}. Received: {table_input_size!r}")
    return {"spatial_shape": tuple(size // stride for size in sizes),
            "larger_inputs": "resample"}


def feature_extractor(model, stages=STAGE_NAMES):
    """A model returning the stage outputs of a LambdaResNet for detection/segmentation.

    Returns a `keras.Model` from the model's input to a dict
    `{"c2": [b, H/4, W/4, 256], "c3": [.., H/8, .., 512], "c4": [.., H/16, .., 1024],
    "c5": [.., H/32, .., 2048]}` (widths times the width multiplier), sharing the
    model's layers and weights.

    Example:
    ```python
    import numpy as np
    from keras_lambda.models import LambdaResNet26T, feature_extractor

    backbone = feature_extractor(LambdaResNet26T(input_shape=(128, 128, 3)))
    features = backbone(np.zeros((1, 128, 128, 3), "float32"))
    print({name: tuple(value.shape) for name, value in features.items()})  # c2: (1, 32, 32, 256)
    ```
    """
    for stage in stages:
        if stage not in STAGE_NAMES:
            raise ValueError(
                f"`stages` must be among {STAGE_NAMES}. Received: {stage!r} in stages={stages!r}"
            )
    outputs = {stage: model.get_layer(f"{stage}_out").output for stage in stages}
    return keras.Model(model.input, outputs, name=f"{model.name}_features")
