"""Builders of the named models (`presets.PRESETS`), in the style of `keras.applications`.

`LambdaResNet50()` ... `LambdaResNet420()`: the paper's family (no published
weights). `LambdaResNet26T()`, `LambdaResNet50TS()`, `LambdaResNet26RPT256()`:
timm's architectures, `weights="imagenet"` for timm's ImageNet weights.
`build_preset(preset, **overrides)` builds any preset by its name.
"""

from keras_lambda.models import presets
from keras_lambda.models import weights as weights_lib
from keras_lambda.models.lambda_resnet import LambdaResNet


def build_preset(
    preset,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    **overrides,
):
    """The preset named `preset` as a `keras.Model` (named after it unless `name`
    is given); `overrides` replace its `LambdaResNet` arguments. `weights`: None,
    "imagenet" (timm presets) or a weights file (a timm checkpoint, a `.keras`
    model or `.weights.h5`).

    Fine-tuning: with `classes` other than the checkpoint's (e.g.
    `LambdaResNet26T(weights="imagenet", classes=37)`), the backbone's weights
    are loaded and the head is new (a warning says so), as keras-hub's
    `from_preset(..., num_classes=N)`. timm's checkpoints take ImageNet-normalised
    inputs: `include_rescaling="imagenet"` makes the model take pixel values
    0..255 and normalise them itself.

    Example:
    ```python
    from keras_lambda.models import build_preset, presets

    print(presets.names())                             # every named model
    model = build_preset("lambda_resnet26t", input_shape=(128, 128, 3), classes=37)
    tiny = build_preset("tiny", input_shape=(32, 32, 3), classes=10, scope=7)   # an override
    ```
    """
    preset = presets.get(preset)
    arguments = {**preset.arguments, **overrides}
    if input_shape is not None:
        arguments["input_shape"] = input_shape
    model = LambdaResNet(
        include_top=include_top,
        input_tensor=input_tensor,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=arguments.pop("name", preset.name),
        **arguments,
    )
    if weights is not None:
        weights_lib.load(model, preset, weights)
    return model


def _builder(preset_name, function_name):
    preset = presets.get(preset_name)

    def builder(include_top=True, weights=None, input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax", **overrides):
        return build_preset(preset_name, include_top, weights, input_tensor, input_shape,
                            pooling, classes, classifier_activation, **overrides)

    builder.__name__ = builder.__qualname__ = function_name
    weights = (
        f"\n\n`weights=\"imagenet\"`: timm's `{preset.weights.checkpoint}` (ImageNet top-1 "
        f"{preset.weights.top1:.2f}% at {preset.weights.input_size} px); inputs from "
        f"`preprocess_input(images, \"{preset_name}\")`."
        if preset.weights else "\n\nNo pretrained weights are published for it."
    )
    if preset.weights:
        example = (f"backbone = {function_name}(include_top=False, pooling=\"avg\", "
                   "input_shape=(128, 128, 3))\n"
                   f"# with timm's ImageNet weights (downloaded once): "
                   f"{function_name}(weights=\"imagenet\")")
    else:
        example = f"model = {function_name}(input_shape=(128, 128, 3), classes=10)"
    builder.__doc__ = (
        f"{preset.description[0].upper()}{preset.description[1:]}.{weights}\n\n"
        "Takes the `keras.applications` arguments (include_top, weights, input_tensor,\n"
        "input_shape, pooling, classes, classifier_activation) and any other\n"
        "`LambdaResNet` keyword argument to override the preset.\n\n"
        f"Example:\n```python\nfrom keras_lambda.models import {function_name}\n\n{example}\n```"
    )
    return builder


LambdaResNet50 = _builder("lambda_resnet50", "LambdaResNet50")
LambdaResNet101 = _builder("lambda_resnet101", "LambdaResNet101")
LambdaResNet152 = _builder("lambda_resnet152", "LambdaResNet152")
LambdaResNet200 = _builder("lambda_resnet200", "LambdaResNet200")
LambdaResNet270 = _builder("lambda_resnet270", "LambdaResNet270")
LambdaResNet350 = _builder("lambda_resnet350", "LambdaResNet350")
LambdaResNet420 = _builder("lambda_resnet420", "LambdaResNet420")
LambdaResNet26T = _builder("lambda_resnet26t", "LambdaResNet26T")
LambdaResNet50TS = _builder("lambda_resnet50ts", "LambdaResNet50TS")
LambdaResNet26RPT256 = _builder("lambda_resnet26rpt_256", "LambdaResNet26RPT256")
