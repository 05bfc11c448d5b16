"""keras_lambda.models.presets: every named model as data, and what reads the table."""

import pytest

from keras_lambda import models
from keras_lambda.models import presets
from keras_lambda.training.options import MODELS


def test_the_families_and_their_names():
    assert presets.names("paper") == tuple(f"lambda_resnet{d}" for d in presets.PAPER_DEPTHS)
    assert presets.names("cli") == ("tiny",)
    assert presets.names("timm") == ("lambda_resnet26t", "lambda_resnet50ts",
                                     "lambda_resnet26rpt_256")
    assert MODELS == presets.names()  # keras-lambda train --model reads the table
    with pytest.raises(ValueError, match="unknown model 'vit'; choose from tiny, lambda_resnet50"):
        presets.get("vit")


def test_only_timms_presets_carry_published_weights():
    for name in presets.names():
        preset = presets.get(name)
        assert (preset.weights is not None) == (preset.family == "timm")
    weights = presets.get("lambda_resnet50ts").weights
    assert weights.url == ("https://huggingface.co/timm/lambda_resnet50ts.a1h_in1k"
                           "/resolve/main/model.safetensors")
    assert (weights.input_size, weights.crop_pct, weights.top1) == (256, 0.95, 81.184)


def test_a_new_variant_is_one_entry(monkeypatch):
    variant = presets.Preset("lambda_resnet14", "paper", "two-stage toy",
                             dict(stackwise_num_blocks=(1, 1, 1, 1), placement="CCCL",
                                  width_multiplier=0.25, scope=3))
    monkeypatch.setitem(presets.PRESETS, variant.name, variant)
    model = models.build_preset("lambda_resnet14", input_shape=(64, 64, 3), classes=5)
    assert model.name == "lambda_resnet14" and model.output_shape == (None, 5)
    assert "lambda_resnet14" in presets.names("paper")
