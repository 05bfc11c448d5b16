"""Functional-API builders: LambdaResNets, their blocks, the named presets and
the conversion of timm's pretrained LambdaResNets.

Names are imported on first use, so `keras_lambda.models.presets` (plain data)
can be read without importing Keras.
"""

import importlib

_SOURCES = {
    "PaddedMaxPooling2D": "blocks",  # defined in keras_lambda.layers; kept here too
    "StochasticDepth": "blocks",
    "decode_predictions": "imagenet",
    "preprocess_input": "imagenet",
    "LambdaResNet": "lambda_resnet",
    "feature_extractor": "lambda_resnet",
    "parse_placement": "lambda_resnet",
    "LambdaResNet26RPT256": "named",
    "LambdaResNet26T": "named",
    "LambdaResNet50": "named",
    "LambdaResNet50TS": "named",
    "LambdaResNet101": "named",
    "LambdaResNet152": "named",
    "LambdaResNet200": "named",
    "LambdaResNet270": "named",
    "LambdaResNet350": "named",
    "LambdaResNet420": "named",
    "build_preset": "named",
    "ConversionError": "timm_convert",
    "convert_timm": "timm_convert",
}

__all__ = sorted(_SOURCES) + ["presets"]


def __getattr__(name):
    if name not in _SOURCES:
        try:  # a submodule: keras_lambda.models.presets, .imagenet, ...
            return importlib.import_module(f"keras_lambda.models.{name}")
        except ModuleNotFoundError:
            raise AttributeError(
                f"module 'keras_lambda.models' has no attribute {name!r}"
            ) from None
    value = getattr(importlib.import_module(f"keras_lambda.models.{_SOURCES[name]}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return __all__
