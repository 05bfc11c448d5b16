"""keras_lambda.models.weights: timm's published weights, fetched once, or from a file."""

import socket
import time

import numpy as np
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


def backbone_layers(model):
    return [layer for layer in model.layers if layer.weights and layer.name != "predictions"]


def test_a_keras_model_gives_its_backbone_to_a_model_with_other_classes(tmp_path):
    source = models.build_preset("tiny", input_shape=(32, 32, 3), classes=10)
    for variable in source.weights:  # every weight distinct from a fresh model's
        variable.assign(np.random.default_rng(len(variable.path)).normal(
            1.0, 0.1, variable.shape).astype("float32"))
    path = tmp_path / "source.keras"
    source.save(path)
    with pytest.warns(UserWarning, match=r"tiny: the backbone's weights come from .*source\.keras, "
                      r"whose head has 10 classes; the model's head \(3 classes\) is new"):
        model = models.build_preset("tiny", input_shape=(32, 32, 3), classes=3, weights=str(path))
    assert len(backbone_layers(model)) == len(backbone_layers(source)) > 10
    for layer in backbone_layers(model):
        for ours, theirs in zip(layer.weights, source.get_layer(layer.name).weights):
            np.testing.assert_array_equal(numpy(ours), numpy(theirs))
    assert model.get_layer("predictions").kernel.shape == (512, 3)
    assert not np.allclose(numpy(model.get_layer("predictions").kernel), 1.0, atol=0.5)
    same = models.build_preset("tiny", input_shape=(32, 32, 3), classes=10, weights=str(path))
    np.testing.assert_array_equal(numpy(same.get_layer("predictions").kernel),
                                  numpy(source.get_layer("predictions").kernel))


def test_a_keras_model_of_another_architecture_is_one_error_naming_the_layer(tmp_path):
    models.build_preset("tiny", input_shape=(32, 32, 3), classes=10).save(tmp_path / "t.keras")
    with pytest.raises(ValueError, match=r"does not fit tiny: layer c4_block0_lambda \(shapes "):
        models.build_preset("tiny", input_shape=(32, 32, 3), key_dim=4,
                            weights=str(tmp_path / "t.keras"))


@pytest.mark.needs_timm
def test_a_timm_checkpoint_gives_its_backbone_to_a_model_with_other_classes(timm_reference):
    path = str(timm_reference / "lambda_resnet26t.safetensors")
    converted = models.convert_timm(path, models.LambdaResNet26T())  # proven against timm
    with pytest.warns(UserWarning, match=r"whose head has 1000 classes; the model's head "
                      r"\(7 classes\) is new"):
        model = models.LambdaResNet26T(weights=path, classes=7)
    for layer in backbone_layers(model):
        for ours, theirs in zip(layer.weights, converted.get_layer(layer.name).weights):
            np.testing.assert_array_equal(numpy(ours), numpy(theirs))
    assert model.get_layer("predictions").kernel.shape == (2048, 7)


def test_relative_tables_sized_for_256_serve_a_320_px_model(tmp_path):
    """lambda_resnet26rpt_256's tables are sized for 256 px: its weights load into the
    same model at 320 px, whose larger feature maps resample the tables."""
    source = models.LambdaResNet26RPT256()
    source.save(tmp_path / "rpt.keras")
    model = models.LambdaResNet26RPT256(input_shape=(320, 320, 3),
                                        weights=str(tmp_path / "rpt.keras"))
    for name in ("c4_block1_lambda", "c5_block0_lambda", "c5_block1_lambda"):
        ours, theirs = model.get_layer(name).embedding, source.get_layer(name).embedding
        assert ours.table.shape == theirs.table.shape
        np.testing.assert_array_equal(numpy(ours.table), numpy(theirs.table))
    assert tuple(source.get_layer("c5_block1_lambda").embedding.table.shape[:2]) == (15, 15)
    images = np.random.default_rng(0).uniform(-1, 1, (1, 320, 320, 3)).astype("float32")
    probabilities = numpy(model(images))
    assert probabilities.shape == (1, 1000) and np.isclose(probabilities.sum(), 1, atol=1e-4)
