"""Functional-API builders: LambdaResNets and their blocks."""

from keras_lambda.models.blocks import StochasticDepth
from keras_lambda.models.lambda_resnet import (
    LambdaResNet,
    LambdaResNet50,
    LambdaResNet101,
    LambdaResNet152,
    LambdaResNet200,
    LambdaResNet270,
    LambdaResNet350,
    LambdaResNet420,
    feature_extractor,
    parse_placement,
)

__all__ = [
    "LambdaResNet",
    "LambdaResNet50",
    "LambdaResNet101",
    "LambdaResNet152",
    "LambdaResNet200",
    "LambdaResNet270",
    "LambdaResNet350",
    "LambdaResNet420",
    "StochasticDepth",
    "feature_extractor",
    "parse_placement",
]
