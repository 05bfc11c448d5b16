"""keras_lambda.models.weights: timm's published weights, fetched once, or from a file."""

import socket
import time

import pytest

from keras_lambda import models
from keras_lambda.models import presets, weights
from tests.helpers import numpy


def test_imagenet_weights_offline_are_one_error_saying_what_to_fetch(tmp_path, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    started = time.time()
    with pytest.raises(ValueError) as error:
        weights.download(presets.get("lambda_resnet26t").weights, cache_dir=str(tmp_path))
    message = str(error.value)
    assert "could not download timm's weights lambda_resnet26t.c1_in1k" in message
    assert "https://huggingface.co/timm/lambda_resnet26t.c1_in1k/resolve/main/model.safetensors" in message
    assert str(tmp_path / "models" / "keras_lambda" / "lambda_resnet26t.c1_in1k.safetensors") in message
    assert "\n" not in message and time.time() - started < 30


@pytest.mark.needs_timm
def test_a_file_in_the_cache_is_used_without_a_download(timm_reference, tmp_path, monkeypatch):
    path = timm_reference / "lambda_resnet26t.safetensors"
    cached = tmp_path / "models" / "keras_lambda" / "lambda_resnet26t.c1_in1k.safetensors"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(path.read_bytes())
    monkeypatch.setattr(socket, "create_connection", pytest.fail)  # no network use at all
    model = models.LambdaResNet26T(include_top=False, pooling="avg")  # head.fc left out
    weights.load(model, presets.get("lambda_resnet26t"), "imagenet", cache_dir=str(tmp_path))
    assert numpy(model.get_layer("c4_block1_lambda").position_bias_weight).any()
    assert model.output_shape == (None, 2048)


def test_the_paper_family_says_it_has_no_published_weights():
    with pytest.raises(ValueError, match="No ImageNet weights are published for lambda_resnet50"):
        models.LambdaResNet50(weights="imagenet")
    with pytest.raises(ValueError, match="ImageNet weights have 1000 classes"):
        models.LambdaResNet26T(weights="imagenet", classes=10)
