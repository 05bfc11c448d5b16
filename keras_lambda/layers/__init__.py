"""Keras layers: the lambda layer and its shareable relative position embedding."""

from keras_lambda.layers.lambda_layer import LambdaLayer
from keras_lambda.layers.relative_position_embedding import RelativePositionEmbedding

__all__ = ["LambdaLayer", "RelativePositionEmbedding"]
