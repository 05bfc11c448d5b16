"""keras_lambda: LambdaNetworks (Bello, ICLR 2021) for Keras 3.

Importing the package registers its Keras classes (they all live in
`keras_lambda.layers`), so `.keras` files that use them load with
`keras.models.load_model` after `import keras_lambda`. Layers, ops and models
import Keras only (any backend); training (`train`, `tuning`, `distribute`, ...)
needs TensorFlow. The `keras-lambda` command imports nothing heavy until a
command needs it, so `--help` and argument errors answer at once.
"""

__version__ = "0.1.0"

import importlib  # noqa: E402

from keras_lambda import _startup  # noqa: E402

_LAZY = {
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
    "LambdaResNet26T": "keras_lambda.models",
    "LambdaResNet50TS": "keras_lambda.models",
    "LambdaResNet26RPT256": "keras_lambda.models",
    "feature_extractor": "keras_lambda.models",
    "LambdaResNetHyperModel": "keras_lambda.tuning",  # KerasTuner only when asked for
}

if not _startup.running_the_command():
    from keras_lambda import layers  # noqa: E402,F401  (registers the Keras classes)


# Subpackages reachable as attributes (`keras_lambda.models.LambdaResNet50()`), imported
# on first use: `training` and `tuning` need TensorFlow, the others any Keras backend.
_SUBPACKAGES = ("layers", "ops", "models", "training", "tuning", "bench")


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"keras_lambda.{name}")  # also binds the attribute
    if name not in _LAZY:
        raise AttributeError(f"module 'keras_lambda' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = sorted(_LAZY) + ["__version__"]  # not the subpackages: `import *` stays light
