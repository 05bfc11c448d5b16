"""keras_lambda: LambdaNetworks (Bello, ICLR 2021) for Keras 3."""

__version__ = "0.1.0"

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

__all__ = [
    "LambdaLayer",
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
