"""KerasTuner search: the hypermodel's space, real searches on digits, resume, errors."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import keras_tuner
import numpy as np
import pytest

from keras_lambda.layers import LambdaLayer
from keras_lambda.training.options import TuneConfig
from keras_lambda.tuning import SEARCH_SPACE, LambdaResNetHyperModel, search
from tests.helpers import QUIET, SCRIPT, run_cli

# Small, fast trials: one bottleneck per stage at a quarter of the width.
SMALL = {"blocks_per_stage": 1, "width_multiplier": 0.25}
SMALL_ARGS = ["--space", "blocks_per_stage=1", "--space", "width_multiplier=0.25"]


def lambda_layers(model):
    return [layer for layer in model.layers if isinstance(layer, LambdaLayer)]


def test_build_follows_the_hyperparameters():
    hp = keras_tuner.HyperParameters()
    for name, value in (("key_dim", 8), ("num_heads", 4), ("intra_depth", 4), ("scope", 3),
                        ("placement", "CLLL"), ("learning_rate", 2e-3), ("weight_decay", 1e-4)):
        hp.Fixed(name, value)
    model = LambdaResNetHyperModel((32, 32, 1), 10, **SMALL).build(hp)
    layers = lambda_layers(model)
    assert len(layers) == 3  # one block in each of c3, c4, c5
    for layer in layers:
        assert (layer.key_dim, layer.num_heads, layer.intra_depth, layer.scope) == (8, 4, 4, 3)
    assert model.optimizer is not None and model.output_shape == (None, 10)
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(2e-3)
    assert float(model.optimizer.weight_decay) == pytest.approx(1e-4)


def test_trials_keep_the_rest_of_their_preset():
    hp = keras_tuner.HyperParameters()
    hypermodel = LambdaResNetHyperModel((32, 32, 1), 10, preset="lambda_resnet26t", **SMALL)
    model = hypermodel.build(hp)
    assert model.get_layer("stem_conv1_conv").filters == 24  # timm's tiered stem
    assert all(layer.position_bias and layer.norm_epsilon == 1e-5 for layer in lambda_layers(model))
    default = LambdaResNetHyperModel((32, 32, 1), 10, **SMALL).build(keras_tuner.HyperParameters())
    assert default.get_layer("stem_conv1_conv").filters == 8  # tiny: ResNet-RS, stem 16 wide
    with pytest.raises(ValueError, match="unknown model 'vit'; choose from tiny, lambda_resnet50"):
        LambdaResNetHyperModel((32, 32, 1), 10, preset="vit")


def test_scope_zero_means_a_global_context():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("scope", 0)
    model = LambdaResNetHyperModel((32, 32, 1), 10, **SMALL).build(hp)
    assert all(layer.scope is None for layer in lambda_layers(model))
    # The caller may say None, as LambdaLayer does; the search space stores 0.
    hypermodel = LambdaResNetHyperModel((32, 32, 1), 10, **{**SMALL, "scope": [None, 7]})
    assert hypermodel.search_space["scope"] == [0, 7]


def test_default_space_registers_every_entry_with_its_documented_values():
    hp = keras_tuner.HyperParameters()
    LambdaResNetHyperModel((32, 32, 1), 10).build(hp)
    assert set(hp.values) == set(SEARCH_SPACE)
    assert hp.get_config()["space"]  # every entry is a tunable hyperparameter
    by_name = {entry.name: entry for entry in hp.space}
    assert by_name["scope"].values == [0, 3, 7]
    assert (by_name["learning_rate"].min_value, by_name["learning_rate"].max_value) == (1e-4, 1e-2)
    assert by_name["learning_rate"].sampling == "log"


def test_the_caller_narrows_the_space():
    hp = keras_tuner.HyperParameters()
    hypermodel = LambdaResNetHyperModel(
        (32, 32, 1), 10, key_dim=16, scope=[0, 7], learning_rate=(1e-3, 3e-3), **SMALL
    )
    hypermodel.build(hp)
    by_name = {entry.name: entry for entry in hp.space}
    assert isinstance(by_name["key_dim"], keras_tuner.engine.hyperparameters.Fixed)
    assert by_name["key_dim"].value == 16
    assert by_name["scope"].values == [0, 7]
    assert (by_name["learning_rate"].min_value, by_name["learning_rate"].max_value) == (1e-3, 3e-3)
    assert "blocks_per_stage" in hp.values and hp.values["blocks_per_stage"] == 1


def test_a_tuner_hyperparameters_argument_fixes_values_too(tmp_path):
    fixed = keras_tuner.HyperParameters()
    fixed.Fixed("num_heads", 2)
    tuner = keras_tuner.RandomSearch(
        LambdaResNetHyperModel((32, 32, 1), 10, **SMALL),
        objective="val_accuracy", max_trials=1, hyperparameters=fixed,
        tune_new_entries=False, directory=str(tmp_path),
    )
    hp = tuner.oracle.get_space()
    model = tuner.hypermodel.build(hp)
    assert all(layer.num_heads == 2 for layer in lambda_layers(model))
    assert [entry.name for entry in tuner.oracle.get_space().space] == ["num_heads"]


@pytest.mark.parametrize("form", ["arrays", "dataset", "callable"])
def test_fit_uses_the_trial_batch_size(form):
    import tensorflow as tf

    hp = keras_tuner.HyperParameters()
    hp.Fixed("batch_size", 25)
    hypermodel = LambdaResNetHyperModel((32, 32, 1), 3, **SMALL)
    model = hypermodel.build(hp)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(100, 32, 32, 1)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 3, 100), 3)
    if form == "arrays":
        args = (x, y)
    elif form == "dataset":
        args = (tf.data.Dataset.from_tensor_slices((x, y)),)
    else:
        args = (lambda batch_size: tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size),)
    history = hypermodel.fit(hp, model, *args, epochs=1, verbose=0)
    assert history.params["steps"] == 4  # 100 examples / 25


@pytest.mark.parametrize(
    "space, message",
    [
        ({"depth": [1]}, "unknown search space entries ['depth']"),
        ({"placement": "CCXL"}, "placement"),
        ({"scope": [0, 4]}, "`scope` values must be 0 (global) or an odd size, got 4"),
        ({"key_dim": 0}, "`key_dim` values must be integers >= 1, got 0"),
        ({"learning_rate": (1e-2, 1e-3)}, "`learning_rate` range must be (low, high)"),
        ({"batch_size": []}, "`batch_size` choices must not be empty"),
    ],
)
def test_bad_search_space_names_the_entry(space, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        LambdaResNetHyperModel((32, 32, 1), 10, **space)


def completed_trials(project):
    """The trials of `project` whose trial.json says COMPLETED. A running (or killed)
    search may have made a trial's folder and not yet written its trial.json, or be
    writing it: that trial is not completed."""
    trials = []
    for name in sorted(os.listdir(project)):
        if name.startswith("trial_"):
            try:
                trials.append(json.loads((project / name / "trial.json").read_text()))
            except (FileNotFoundError, json.JSONDecodeError):
                continue
    return [trial for trial in trials if trial["status"] == "COMPLETED"]


@pytest.mark.slow
@pytest.mark.parametrize("tuner", ["random", "hyperband", "bayesian"])
def test_a_real_search_on_digits_saves_a_best_model_that_reloads(tmp_path, tuner):
    # two trials: enough for a best-of comparison, and the cheapest search that has one
    config = TuneConfig(tuner=tuner, max_trials=2, epochs=1, output_dir=str(tmp_path),
                        verbose=0, space=dict(SMALL))
    best = search(config)
    trials = completed_trials(tmp_path / "search")
    assert len(trials) == best["completed_trials"] == 2  # none failed (e.g. no tensorboard)
    assert best["val_accuracy"] == max(trial["score"] for trial in trials)
    assert best["val_accuracy"] > 0.2  # better than chance (0.1) after one epoch
    model = keras.models.load_model(tmp_path / "best.keras")
    assert lambda_layers(model)[0].key_dim == best["hyperparameters"]["key_dim"]
    from keras_lambda.training import data as data_lib
    from keras_lambda.training.data import one_hot

    digits = data_lib.load_digits()
    test = data_lib.batched(digits, 32, 64, False).map(one_hot(10))
    model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    accuracy = model.evaluate(test, verbose=0, return_dict=True)["accuracy"]
    assert accuracy == pytest.approx(best["test_accuracy"], abs=1e-6)
    assert json.loads((tmp_path / "best.json").read_text()) == best


@pytest.mark.slow
def test_search_under_mirrored_strategy_over_two_logical_cpus(tmp_path):
    script = textwrap.dedent(
        f"""
        import json, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from keras_lambda.cli import main
        raise SystemExit(main(["tune", "--strategy", "mirrored", "--max-trials", "1",
                               "--epochs", "1", "--space", "batch_size=64",
                               "--output-dir", {str(tmp_path)!r}, *{SMALL_ARGS!r}]))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=QUIET)
    assert result.returncode == 0, result.stderr[-3000:]
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["replicas"] == 2 and best["completed_trials"] == 1


@pytest.mark.slow
def test_a_killed_search_continues_without_rerunning_finished_trials(tmp_path):
    args = ["tune", "--max-trials", "2", "--epochs", "1", "--output-dir", str(tmp_path), *SMALL_ARGS]
    process = subprocess.Popen([SCRIPT, *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=QUIET)
    project = tmp_path / "search"
    deadline = time.time() + 400
    while time.time() < deadline and process.poll() is None:
        if project.exists() and len(completed_trials(project)) >= 1:
            break
        time.sleep(0.2)
    time.sleep(1.0)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {trial["trial_id"]: trial for trial in completed_trials(project)}
    assert len(finished) == 1
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    after = {trial["trial_id"]: trial for trial in completed_trials(project)}
    assert len(after) == 2
    for trial_id, trial in finished.items():  # same scores and metrics: not trained again
        assert after[trial_id] == trial
    assert "best of 2 trials" in result.stdout
    again = run_cli(*args)  # nothing left to search: the same best, no new trial
    assert again.returncode == 0 and len(completed_trials(project)) == 2
    assert after == {trial["trial_id"]: trial for trial in completed_trials(project)}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tuner", "grid"], "unknown --tuner 'grid'; choose from random, hyperband, bayesian"),
        (["--max-trials", "0"], "--max-trials must be >= 1, got 0"),
        (["--epochs", "0"], "--epochs must be >= 1, got 0"),
        (["--strategy", "tpu"], "unknown --strategy 'tpu'"),
        (["--space", "key_dim"], "--space expects NAME=VALUE[,VALUE...], got 'key_dim'"),
        (["--space", "depth=3"], "--space: unknown search space entries ['depth']"),
        (["--space", "scope=4"], "`scope` values must be 0 (global) or an odd size, got 4"),
        (["--validation-fraction", "1.5"], "--validation-fraction must be in (0, 1), got 1.5"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, args, message):
    output = tmp_path / "out"
    result = run_cli("tune", *args, "--output-dir", str(output))
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not output.exists()


@pytest.mark.slow
def test_the_best_trial_is_named_by_the_number_kerastuner_prints(tmp_path):
    import re

    result = run_cli("tune", "--max-trials", "2", "--epochs", "1", "--output-dir",
                     str(tmp_path), *SMALL_ARGS)
    assert result.returncode == 0, result.stderr[-2000:]
    # KerasTuner's own lines: "Trial 2 Complete [...]" then "val_accuracy: 0.61..."
    scores = {int(number): float(score) for number, score in re.findall(
        r"Trial (\d+) Complete.*?\nval_accuracy: ([0-9.]+)", result.stdout, re.S)}
    assert sorted(scores) == [1, 2], result.stdout[-2000:]
    named = int(re.search(r"\(trial #(\d+)\)", result.stdout).group(1))
    assert scores[named] == max(scores.values())
    assert json.loads((tmp_path / "best.json").read_text())["trial_number"] == named
