"""keras_lambda: LambdaNetworks (Bello, ICLR 2021) for Keras 3."""

__version__ = "0.1.0"

from keras_lambda.layers import LambdaLayer, RelativePositionEmbedding  # noqa: E402

__all__ = ["LambdaLayer", "RelativePositionEmbedding", "__version__"]
