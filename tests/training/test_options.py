"""keras_lambda.training.options: settings checked before any work, and what a resume may change."""

import pytest

from keras_lambda.training.options import (
    RESUME_FIXED,
    TrainConfig,
    UsageError,
    recorded,
    resume_changes,
)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("learning_rate", float("nan"), "`learning_rate` must be in (0, inf), got nan"),
        ("learning_rate", 0.0, "`learning_rate` must be in (0, inf), got 0.0"),
        ("learning_rate", float("inf"), "`learning_rate` must be in (0, inf), got inf"),
        ("label_smoothing", 5.0, "`label_smoothing` must be in [0, 1), got 5.0"),
        ("warmup_epochs", -1.0, "`warmup_epochs` must be in [0, inf), got -1.0"),
        ("weight_decay", -0.1, "`weight_decay` must be in [0, inf), got -0.1"),
        ("validation_fraction", 1.0, "`validation_fraction` must be in (0, 1), got 1.0"),
        ("key_dim", 0, "`key_dim` must be >= 1, got 0"),
    ],
)
def test_numbers_out_of_range_are_usage_errors(field, value, message):
    with pytest.raises(UsageError) as error:
        TrainConfig(**{field: value})  # checked where it is made
    assert str(error.value) == message


def test_a_resume_may_change_the_schedule_but_not_the_model_or_the_data():
    stored = recorded(TrainConfig(epochs=6))
    changes = resume_changes(stored, TrainConfig(epochs=9, learning_rate=1e-3, jit_compile=True))
    assert changes == {"epochs": [6, 9], "learning_rate": [3e-3, 1e-3], "jit_compile": [False, True]}
    assert resume_changes(stored, TrainConfig(epochs=6, output_dir="elsewhere", verbose=0)) == {}
    with pytest.raises(UsageError) as error:
        resume_changes(stored, TrainConfig(model="lambda_resnet50", image_size=64, epochs=9))
    message = str(error.value)
    assert "`model` 'lambda_resnet50' (the run has 'tiny')" in message
    assert "`image_size` 64 (the run has 32)" in message and "epochs" not in message


def test_every_fixed_setting_is_a_recorded_one():
    assert set(RESUME_FIXED) <= set(recorded(TrainConfig()))
