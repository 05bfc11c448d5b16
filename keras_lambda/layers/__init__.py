"""Keras layers: the lambda layer, its shareable relative position embedding, and
the generic layers LambdaResNets use (stochastic depth, −inf-padded max pooling, 1x1
convolutions as matmuls, batch norms fused into one kernel).
`keras_lambda.layers.checks` holds the argument checks they share."""

from keras_lambda.layers.fused_batch_norm import FusedBatchNormalization
from keras_lambda.layers.lambda_layer import LambdaLayer
from keras_lambda.layers.padded_max_pooling import PaddedMaxPooling2D
from keras_lambda.layers.pointwise_conv import PointwiseConv2D
from keras_lambda.layers.relative_position_embedding import RelativePositionEmbedding
from keras_lambda.layers.stochastic_depth import StochasticDepth

__all__ = ["FusedBatchNormalization", "LambdaLayer", "PaddedMaxPooling2D", "PointwiseConv2D",
           "RelativePositionEmbedding", "StochasticDepth"]
