"""keras_lambda.models.imagenet: timm's evaluation transform and ImageNet's class names."""

import json

import numpy as np
import pytest

from keras_lambda import models
from keras_lambda.models import presets
from keras_lambda.models.imagenet import imagenet_classes
from tests.helpers import sample_image

TIMM_MODELS = presets.names("timm")


@pytest.mark.needs_timm
def test_preprocessing_matches_timms_evaluation_transform(timm_reference):
    image = sample_image()
    for name in TIMM_MODELS:
        theirs = np.load(timm_reference / f"{name}.preprocessed.npy")
        ours = models.preprocess_input(image, name)
        assert ours.shape == (1,) + theirs.shape == (1, 256, 256, 3)
        difference = np.abs(ours[0] - theirs)
        # TensorFlow's antialiased bicubic against PIL's: about one 8-bit level at most
        # pixels (1/255/std = 0.017), more only along sharp edges.
        assert difference.mean() < 0.01 and np.percentile(difference, 99) < 0.05


@pytest.mark.needs_timm
def test_decoded_predictions_name_timms_classes(timm_reference):
    timm_classes = json.loads((timm_reference / "classes.json").read_text())
    scores = np.zeros((2, 1000), "float32")
    scores[0, [2, 7, 999]] = (0.5, 0.3, 0.2)
    scores[1, 0] = 1.0
    decoded = models.decode_predictions(scores, top=2)
    assert [entry[0] for entry in decoded[0]] == [timm_classes[i][0] for i in (2, 7)]
    assert decoded[0][0][1] == "great_white_shark" and decoded[0][0][2] == pytest.approx(0.5)
    assert decoded[1][0][:2] == (timm_classes[0][0], "tench")
    for (wnid, label), (timm_wnid, description) in zip(imagenet_classes(), timm_classes):
        assert wnid == timm_wnid
        assert label == description.split(",")[0].replace(" ", "_")


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="`model` must name a preset with ImageNet weights"):
        models.preprocess_input(np.zeros((8, 8, 3), "uint8"), "lambda_resnet50")
    with pytest.raises(ValueError, match=r"`images` must be \[H, W, 3\]"):
        models.preprocess_input(np.zeros((8, 8), "uint8"), "lambda_resnet26t")
    with pytest.raises(ValueError, match=r"`predictions` must be \[b, 1000\]"):
        models.decode_predictions(np.zeros((2, 10)))
