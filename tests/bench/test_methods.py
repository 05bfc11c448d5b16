"""keras_lambda.bench.methods: method ids parsed once, the cases of a run."""

import pytest

from keras_lambda.bench import ALL_MODEL_METHODS, LAYER_METHODS, Case, Method, cases


def test_a_method_id_is_taken_apart_once():
    method = Method.parse("lambda/r7/fft")
    assert (method.kind, method.context, method.implementation, method.scope) == (
        "lambda", "r7", "fft", 7)
    assert method.family == "lambda/r7" and method.is_explicit and not method.is_auto
    auto = Method.parse("lambda/global/auto")
    assert auto.scope is None and auto.is_auto and not auto.is_explicit
    content = Method.parse("lambda/content")
    assert content.context == "content" and content.implementation is None
    assert not content.is_explicit and content.family == "lambda/content"
    assert Method.parse("model/lambda_resnet26t").model == "lambda_resnet26t"
    assert Method.parse("attention").kind == "attention"
    with pytest.raises(ValueError, match="unknown bench method 'lambda/r9/fft'"):
        Method.parse("lambda/r9/fft")


def test_every_preset_is_a_model_method():
    assert "model/lambda_resnet50ts" in ALL_MODEL_METHODS and "model/resnet50" in ALL_MODEL_METHODS
    assert all(Method.parse(method).id == method for method in LAYER_METHODS + ALL_MODEL_METHODS)


def test_layer_cases_cover_every_size_and_d_then_the_models():
    found = cases(["attention", "model/tiny"], [16, 32], [128], batch=2, repeats=1)
    assert found == [Case("attention", 16, 128, 2, 1), Case("attention", 32, 128, 2, 1),
                     Case("model/tiny", 128, 0, 16, 1)]
