"""keras_lambda: LambdaNetworks (Bello, ICLR 2021) for Keras 3.

The public names load on first use, so `keras-lambda --version` and argument
errors answer without importing TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "LambdaLayer": "keras_lambda.layers",
    "RelativePositionEmbedding": "keras_lambda.layers",
    "LambdaResNet": "keras_lambda.models",
    "LambdaResNet50": "keras_lambda.models",
    "LambdaResNet101": "keras_lambda.models",
    "LambdaResNet152": "keras_lambda.models",
    "LambdaResNet200": "keras_lambda.models",
    "LambdaResNet270": "keras_lambda.models",
    "LambdaResNet350": "keras_lambda.models",
    "LambdaResNet420": "keras_lambda.models",
    "feature_extractor": "keras_lambda.models",
}

__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'keras_lambda' has no attribute {name!r}")
