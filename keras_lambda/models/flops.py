"""Analytic multiply-add counts of built models (the "FLOPs" of the ResNet papers)."""

import math

import keras

from keras_lambda.layers import LambdaLayer


def _pairs_within(size, radius):
    """Number of (query, context) index pairs on one axis with |m − n| <= radius."""
    return sum(min(i + radius, size - 1) - max(i - radius, 0) + 1 for i in range(size))


def lambda_layer_macs(layer, input_shape):
    """Multiply-adds of one LambdaLayer call on one example of `input_shape` [*S, c].

    Projections n·c·(h·k + k·u + v·u); content lambda n·k·u·v; position lambdas
    k·u·v per (n, m) pair inside the scope (all n·m pairs when global); applying
    the lambdas to the queries n·h·k·v for each of the two (and n·h·k for a
    position bias).
    """
    *spatial, channels = input_shape
    n = math.prod(spatial)
    h, k, u, v = layer.num_heads, layer.key_dim, layer.intra_depth, layer.value_dim
    macs = n * channels * (h * k + k * u + v * u) + n * k * u * v + n * h * k * v
    if layer.position is not None:
        pairs = 1
        for size in spatial:
            if layer.scope is None:
                pairs *= size * size
            else:
                radius = (layer.scope - 1) // 2 * layer.dilation_rate
                pairs *= _pairs_within(size, radius)
        macs += pairs * k * u * v + n * h * k * v
        if layer.position_bias:  # q_n · b
            macs += n * h * k
    return macs


def count_macs(model):
    """Multiply-adds of one forward pass of one example through `model`.

    Counts Conv2D, DepthwiseConv2D, Dense and LambdaLayer; normalisation,
    activations, pooling and additions are not multiply-adds and are left out.
    Needs known spatial sizes.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_macs(layer)
            continue
        if isinstance(layer, LambdaLayer):
            total += lambda_layer_macs(layer, tuple(layer.input.shape[1:]))
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            out = layer.output.shape
            kh, kw = layer.kernel_size
            total += out[1] * out[2] * kh * kw * out[3]
        elif isinstance(layer, keras.layers.Conv2D):
            out = layer.output.shape
            kh, kw = layer.kernel_size
            c_in = layer.input.shape[-1] // layer.groups
            total += out[1] * out[2] * kh * kw * c_in * out[3]
        elif isinstance(layer, keras.layers.Dense):
            positions = math.prod(layer.output.shape[1:-1])
            total += positions * layer.input.shape[-1] * layer.units
    return total
