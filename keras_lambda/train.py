"""`keras_lambda.train`: kept for code written before the `training` subpackage.

`train(TrainConfig(...))` is `keras_lambda.training.run.train`.
"""

from keras_lambda.training.options import TrainConfig  # noqa: F401
from keras_lambda.training.run import build_model, compile_model, train  # noqa: F401
