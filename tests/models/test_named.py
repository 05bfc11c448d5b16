"""keras_lambda.models.named: the builders of the named models (the closed-form
parameter counts of the paper's are in test_lambda_resnet.py)."""

import keras
import numpy as np
import pytest

from keras_lambda import models
from tests.helpers import numpy


def test_each_builder_is_its_preset_and_says_so():
    for builder, name in ((models.LambdaResNet50, "lambda_resnet50"),
                          (models.LambdaResNet26T, "lambda_resnet26t"),
                          (models.LambdaResNet26RPT256, "lambda_resnet26rpt_256")):
        description = models.presets.get(name).description
        assert builder.__doc__.startswith(description[0].upper() + description[1:])
    assert "weights=\"imagenet\"" in models.LambdaResNet26T.__doc__
    assert "No pretrained weights" in models.LambdaResNet50.__doc__


def test_overrides_and_keras_applications_arguments():
    model = models.LambdaResNet26T(input_shape=(64, 64, 3), classes=7, scope=5,
                                   classifier_activation=None, name="mine")
    assert model.name == "mine" and model.output_shape == (None, 7)
    assert {layer.scope for layer in model.layers if hasattr(layer, "scope")} == {5}
    backbone = models.LambdaResNet26T(include_top=False, pooling="avg", input_shape=(64, 64, 3))
    assert backbone.output_shape == (None, 2048)


def test_keras_weights_load_through_the_weights_argument(tmp_path):
    keras.utils.set_random_seed(0)
    model = models.build_preset("tiny", input_shape=(32, 32, 3), classes=3)
    path = tmp_path / "tiny.weights.h5"
    model.save_weights(path)
    again = models.build_preset("tiny", input_shape=(32, 32, 3), classes=3, weights=str(path))
    for a, b in zip(model.weights, again.weights):
        np.testing.assert_array_equal(numpy(a), numpy(b))
    with pytest.raises(ValueError, match="is not a file"):
        models.build_preset("tiny", input_shape=(32, 32, 3), classes=3, weights="missing.h5")
