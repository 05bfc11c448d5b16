"""keras_lambda: LambdaNetworks (Bello, ICLR 2021) for Keras 3.

Importing the package registers its Keras classes, so `.keras` files that use
them load with `keras.models.load_model` after `import keras_lambda`.
"""

__version__ = "0.1.0"

from keras_lambda import _startup  # noqa: E402

_startup.import_tensorflow()

from keras_lambda.layers import LambdaLayer, RelativePositionEmbedding  # noqa: E402
from keras_lambda.models import (  # noqa: E402
    LambdaResNet,
    LambdaResNet50,
    LambdaResNet101,
    LambdaResNet152,
    LambdaResNet200,
    LambdaResNet270,
    LambdaResNet350,
    LambdaResNet420,
    feature_extractor,
)



def __getattr__(name):
    # KerasTuner is imported only when the tuning API is asked for.
    if name == "LambdaResNetHyperModel":
        from keras_lambda.tuning import LambdaResNetHyperModel

        return LambdaResNetHyperModel
    raise AttributeError(f"module 'keras_lambda' has no attribute {name!r}")


__all__ = [
    "LambdaLayer",
    "LambdaResNetHyperModel",
    "LambdaResNet",
    "LambdaResNet50",
    "LambdaResNet101",
    "LambdaResNet152",
    "LambdaResNet200",
    "LambdaResNet270",
    "LambdaResNet350",
    "LambdaResNet420",
    "RelativePositionEmbedding",
    "__version__",
    "feature_extractor",
]
