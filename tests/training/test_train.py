"""`keras-lambda train` and `keras_lambda.train`: outputs, resume after SIGKILL, data, errors."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lambda.training import data as data_lib
from keras_lambda.training.run import TrainConfig, train
from tests.helpers import QUIET, SCRIPT, run_cli, start_cli, write_image_folder


def test_train_writes_model_checkpoint_logs_and_summary_and_picks_best_on_validation(tmp_path):
    summary = train(TrainConfig(epochs=2, output_dir=str(tmp_path), verbose=0))
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk == summary
    for key in ("test_accuracy", "epochs", "initial_epoch", "params", "replicas", "seconds"):
        assert key in summary
    assert summary["epochs"] == 2 and summary["initial_epoch"] == 0 and summary["replicas"] == 1
    assert summary["test_accuracy"] > 0.5
    assert (tmp_path / "best.keras").exists() and os.listdir(tmp_path / "logs")
    model = keras.models.load_model(tmp_path / "model.keras")
    assert model.count_params() == summary["params"]
    assert not (tmp_path / ".lock").exists()  # released

    # best.keras is picked on the validation split, held out of the training split;
    # the test split is used at the end, for the final and the best model.
    assert summary["validation_examples"] == 143 and summary["train_examples"] == 1437 - 143
    records = [json.loads((tmp_path / "checkpoints" / f"epoch-000{e}.json").read_text())
               for e in (1, 2)]
    best = max(records, key=lambda record: record["val_accuracy"])
    assert summary["best_epoch"] == best["epoch"]
    assert summary["best_val_accuracy"] == best["val_accuracy"]
    best_model = keras.models.load_model(tmp_path / "best.keras")
    digits = data_lib.load_digits()
    test = data_lib.batched(digits, 32, 64, False).map(lambda x, y: (x, tf.one_hot(y, 10)))
    predictions = np.concatenate([np.asarray(best_model(x)) for x, _ in test]).argmax(-1)
    labels = np.concatenate([np.asarray(y) for _, y in test]).argmax(-1)
    assert summary["best_test_accuracy"] == pytest.approx((predictions == labels).mean(), abs=1e-6)


def trainable(path):
    return [np.asarray(w) for w in keras.models.load_model(path).trainable_weights]


@pytest.mark.slow
def test_resuming_with_more_epochs_trains_and_records_what_changed(tmp_path):
    first = run_cli("train", "--epochs", "2", "--output-dir", str(tmp_path))
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stderr == ""  # a clean run prints progress and the summary, nothing else
    after_two = trainable(tmp_path / "checkpoints" / "epoch-0002.keras")

    more = run_cli("train", "--epochs", "3", "--learning-rate", "0.002",
                   "--output-dir", str(tmp_path))
    assert more.returncode == 0, more.stderr[-2000:]
    assert "resuming" in more.stdout and "epochs 2 -> 3" in more.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["initial_epoch"] == 2 and summary["epochs"] == 3
    assert summary["history"] == [
        {"epoch": 2, "changed": {"epochs": [2, 3], "learning_rate": [0.003, 0.002]}}
    ]
    after_three = trainable(tmp_path / "model.keras")
    # Learning rate 0 (the old schedule's end) would leave every trainable weight as it was.
    moved = max(float(np.abs(a - b).max()) for a, b in zip(after_two, after_three))
    assert moved > 1e-4

    written = {name: (tmp_path / name).read_bytes() for name in ("summary.json", "model.keras")}
    fewer = run_cli("train", "--epochs", "1", "--output-dir", str(tmp_path))
    assert fewer.returncode == 2 and "holds a run trained for 3 epochs; --epochs 1" in fewer.stderr
    other = run_cli("train", "--epochs", "4", "--model", "lambda_resnet50",
                    "--output-dir", str(tmp_path))
    assert other.returncode == 2
    assert "--model 'lambda_resnet50' (the run has 'tiny')" in other.stderr
    same = run_cli("train", "--epochs", "3", "--learning-rate", "0.002",
                   "--output-dir", str(tmp_path))
    assert same.returncode == 0 and "nothing to train" in same.stdout
    for result in (fewer, other):
        assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert {name: (tmp_path / name).read_bytes() for name in written} == written


@pytest.mark.slow
def test_a_truncated_newest_checkpoint_is_skipped_in_one_line(tmp_path):
    assert run_cli("train", "--epochs", "2", "--output-dir", str(tmp_path)).returncode == 0
    newest = tmp_path / "checkpoints" / "epoch-0002.keras"
    newest.write_bytes(newest.read_bytes()[:4096])
    (tmp_path / "checkpoints" / "state.json").write_text('{"epo')
    result = run_cli("train", "--epochs", "3", "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        f"keras-lambda: checkpoint {newest} does not load (BadZipFile: File is not a zip file); "
        "trying an older one"
    ]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["initial_epoch"] == 1 and summary["epochs"] == 3
    assert json.loads((tmp_path / "checkpoints" / "state.json").read_text())["epoch"] == 3


def test_output_dir_faults_are_one_line_before_any_work(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for output, message in ((blocker, "is a file, not a folder"),
                            ("/proc/keras-lambda-run", "cannot write into '/proc'")):
        for command in ("train", "bench"):
            result = run_cli(command, "--output-dir", str(output))
            assert result.returncode == 2, (command, result.stderr[-2000:])
            assert message in result.stderr and result.stderr.strip().count("\n") == 0
    assert blocker.read_text() == ""


@pytest.mark.slow
def test_a_second_run_into_the_same_folder_exits_with_one_line(tmp_path):
    first = start_cli("train", "--epochs", "3", "--output-dir", str(tmp_path),
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while not (tmp_path / ".lock").exists() and time.time() < deadline:
            time.sleep(0.2)
        second = run_cli("train", "--epochs", "3", "--output-dir", str(tmp_path))
        assert first.poll() is None, "the first run ended before the second one started"
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 2
    assert f"is in use by another run (pid {first.pid})" in second.stderr
    assert second.stderr.strip().count("\n") == 0


@pytest.mark.slow
def test_default_train_command_reaches_97_percent(tmp_path):
    result = run_cli("train", "--output-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["test_accuracy"] >= 0.97
    assert "test accuracy" in result.stdout and "summary.json" in result.stdout


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_and_finishes(tmp_path):
    args = ["train", "--epochs", "4", "--output-dir", str(tmp_path)]
    process = subprocess.Popen([SCRIPT, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=QUIET)
    state = tmp_path / "checkpoints" / "state.json"
    deadline = time.time() + 400
    while not state.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    time.sleep(1.5)  # land somewhere inside the next epoch (or a checkpoint write)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = json.loads(state.read_text())["epoch"]
    assert 1 <= done < 4
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["initial_epoch"] == done and summary["epochs"] == 4
    assert json.loads(state.read_text())["epoch"] == 4


def test_train_on_an_image_folder(tmp_path):
    write_image_folder(tmp_path / "images")
    summary = train(
        TrainConfig(data_dir=str(tmp_path / "images"), epochs=1, batch_size=8,
                    output_dir=str(tmp_path / "run"), verbose=0)
    )
    assert summary["dataset"].startswith("folder:") and summary["params"] > 0


def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    script = textwrap.dedent(
        f"""
        import json, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from keras_lambda.training.run import TrainConfig, train
        summary = train(TrainConfig(strategy="mirrored", epochs=1, batch_size=64,
                                    output_dir={str(tmp_path)!r}, verbose=0))
        print(json.dumps(summary))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=QUIET)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["replicas"] == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "mnist"], "unknown --dataset 'mnist'"),
        (["--model", "vit"], "unknown --model 'vit'"),
        (["--strategy", "cluster"], "unknown --strategy 'cluster'"),
        (["--precision", "float8"], "unknown --precision 'float8'"),
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
        (["--learning-rate", "nan"], "--learning-rate must be in (0, inf), got nan"),
        (["--label-smoothing", "5"], "--label-smoothing must be in [0, 1), got 5.0"),
        (["--warmup-epochs", "-1"], "--warmup-epochs must be in [0, inf), got -1.0"),
        (["--recipe", "fast"], "unknown --recipe 'fast'; choose from paper"),
        (["--optimizer", "lamb"], "unknown --optimizer 'lamb'; choose from adamw, sgd"),
        (["--ema-momentum", "1"], "--ema-momentum must be in [0, 1), got 1.0"),
        (["--train-crop", "square"], "unknown --train-crop 'square'; choose from inception, pad"),
        (["--steps-per-epoch", "0"], "--steps-per-epoch must be >= 1, got 0"),
        (["--output-dir", ""], "--output-dir must name a folder, got ''"),
        (["--batch-size", "100000"], "--batch-size 100000 is larger than the 1294 training examples"),
        (["--weights", "imagenet"], "--weights imagenet: no ImageNet weights are published for "
                                    "--model tiny; presets with them: lambda_resnet26t"),
        (["--weights", "no/such.keras"], "--weights must be imagenet or a weights file; "
                                         "'no/such.keras' is not a file"),
        (["--freeze-backbone-epochs", "2"], "--freeze-backbone-epochs fine-tunes pretrained "
                                            "weights: give --weights"),
        (["--freeze-backbone-epochs", "-1"], "--freeze-backbone-epochs must be >= 0, got -1"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, args, message):
    output = tmp_path / "run"
    result = run_cli("train", "--output-dir", str(output), *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not output.exists()


@pytest.mark.parametrize("problem", ["empty", "single"])
def test_bad_image_folders(tmp_path, problem):
    images = tmp_path / "images"
    if problem == "empty":
        images.mkdir()
        message = "has no class folders with images"
    else:
        write_image_folder(images, classes=("only",))
        message = "has a single class ('only')"
    output = tmp_path / "run"
    result = run_cli("train", "--data-dir", str(images), "--output-dir", str(output))
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().count("\n") == 0
    assert not output.exists()


def test_batch_not_divisible_by_replicas(tmp_path):
    script = textwrap.dedent(
        f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from keras_lambda.cli import main
        raise SystemExit(main(["train", "--strategy", "mirrored", "--batch-size", "63",
                               "--output-dir", {str(tmp_path / "run")!r}]))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=QUIET)
    assert result.returncode == 2
    assert "--batch-size 63 is not divisible by the 2 replicas" in result.stderr
    assert not (tmp_path / "run").exists()


def test_train_on_a_tensorflow_datasets_set_offline(tmp_path, monkeypatch):
    """tfds's mock data stands in for cifar10 (32x32x3, 10 classes) without a download;
    the reachability probe that precedes a download is told the host answers."""
    import socket

    import tensorflow_datasets as tfds

    class Reachable:
        def close(self):
            pass

    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: Reachable())
    with tfds.testing.mock_data(num_examples=40):
        summary = train(TrainConfig(dataset="tfds:cifar10", epochs=1, batch_size=16,
                                    output_dir=str(tmp_path), verbose=0))
    assert summary["dataset"] == "tfds:cifar10"
    model = keras.models.load_model(tmp_path / "model.keras")
    assert tuple(model.input_shape) == (None, 32, 32, 3) and model.output_shape == (None, 10)


def test_unknown_tensorflow_datasets_name(tmp_path):
    with pytest.raises(ValueError, match="unknown tensorflow-datasets data set 'no_such_set'"):
        train(TrainConfig(dataset="tfds:no_such_set", output_dir=str(tmp_path / "run")))
    assert not (tmp_path / "run").exists()


def test_what_a_tpu_needs_static_shapes_and_an_xla_train_step(tmp_path):
    """TPUStrategy itself cannot run here (and resolving a TPU would query cloud
    metadata servers); its requirements can: fixed batch shapes and XLA steps."""
    data = data_lib.load_digits()
    batches = data_lib.batched(data, 32, 64, training=True, drop_remainder=True)
    assert tuple(batches.element_spec[0].shape) == (64, 32, 32, 1)
    summary = train(TrainConfig(epochs=1, jit_compile=True, output_dir=str(tmp_path), verbose=0))
    # One epoch is mostly warm-up and BN statistics lag behind: check that the XLA
    # step ran to a finite, checkpointed result, not a learning-curve threshold.
    assert np.isfinite(summary["test_accuracy"])
    state = json.loads((tmp_path / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 1


def test_mixed_precision_training_and_policy_restored(tmp_path):
    summary = train(TrainConfig(epochs=1, precision="mixed_bfloat16", output_dir=str(tmp_path), verbose=0))
    assert np.isfinite(summary["test_accuracy"])  # one epoch: no accuracy bar (BN lag)
    assert keras.config.dtype_policy().name == "float32"
    model = keras.models.load_model(tmp_path / "model.keras")
    assert all(w.dtype == "float32" for w in model.weights)


def test_bad_lambda_settings_are_usage_errors(tmp_path):
    output = tmp_path / "run"
    result = run_cli("train", "--num-heads", "3", "--output-dir", str(output))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "cannot build --model tiny" in result.stderr and "`output_dim` must be divisible by --num-heads=3" in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert not output.exists()


def test_a_folder_run_keeps_nested_classes_names_them_and_records_undecodable_files(tmp_path):
    images = tmp_path / "images"
    write_image_folder(images, classes=("circle", "square"), per_class=12)
    nested = images / "triangle" / "2024"
    nested.mkdir(parents=True)
    for index in range(12):
        (nested / f"{index}.PNG").write_bytes((images / "circle" / f"{index}.png").read_bytes())
    (images / "square" / "broken.jpg").write_bytes(b"not an image")
    result = run_cli("train", "--data-dir", str(images), "--epochs", "1", "--batch-size", "8",
                     "--output-dir", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["class_names"] == ["circle", "square", "triangle"]
    assert json.loads((tmp_path / "run" / "classes.json").read_text()) == {
        "class_names": ["circle", "square", "triangle"], "image_size": 32, "crop_pct": 0.875}
    assert summary["undecodable_files"] == [str(images / "square" / "broken.jpg")]
    assert result.stderr.strip().splitlines() == [
        "keras-lambda: 1 image file(s) did not decode and were skipped (listed in "
        f"{tmp_path / 'run' / 'summary.json'}): {images / 'square' / 'broken.jpg'}"]
    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    assert model.output_shape == (None, 3)
    assert "images/s" in result.stdout and "left" in result.stdout


def test_the_paper_recipe_sets_every_field_and_a_flag_wins():
    config = TrainConfig(recipe="paper", epochs=3, batch_size=512)
    assert (config.optimizer, config.momentum, config.learning_rate) == ("sgd", 0.9, 0.1)
    assert config.peak_learning_rate == pytest.approx(0.2)  # 0.1 per 256 images
    assert (config.label_smoothing, config.dropout, config.randaugment) == (0.1, 0.25, 10.0)
    assert (config.ema_momentum, config.weight_decay, config.warmup_epochs) == (0.9999, 4e-5, 5.0)
    assert config.epochs == 3  # given: wins over the recipe's 350
    plain = TrainConfig()
    assert (plain.optimizer, plain.learning_rate, plain.ema_momentum, plain.epochs) == (
        "adamw", 3e-3, 0.0, 15)


def ema_averages(checkpoint):
    """The moving averages a checkpoint's optimizer holds, in the model's variable order."""
    model = keras.models.load_model(checkpoint)
    optimizer = model.optimizer
    return [np.asarray(optimizer._model_variables_moving_average[
        optimizer._get_variable_index(v)]) for v in model.trainable_variables]


@pytest.mark.slow
def test_the_moving_average_is_validated_saved_and_continued_on_resume(tmp_path):
    common = dict(recipe="paper", warmup_epochs=0.0, learning_rate=0.05, batch_size=64,
                  randaugment=0.0, dropout=0.0, ema_momentum=0.999, output_dir=str(tmp_path),
                  verbose=0)
    train(TrainConfig(epochs=1, **common))
    first = tmp_path / "checkpoints" / "epoch-0001.keras"
    averaged, trained = ema_averages(first), trainable(first)
    assert max(float(np.abs(a - t).max()) for a, t in zip(averaged, trained)) > 1e-3
    for saved in ("best.keras", "model.keras"):  # what was validated: the average
        for a, w in zip(averaged, trainable(tmp_path / saved)):
            np.testing.assert_allclose(w, a, rtol=1e-6, atol=1e-7)
    summary = train(TrainConfig(epochs=2, **common))
    assert summary["initial_epoch"] == 1 and summary["uses_ema_weights"]
    # 20 more steps at momentum 0.999 move the average by ~2% of the way to the
    # trained weights: it continued from epoch 1's average (an average started
    # afresh would be near zero or near the trained weights).
    final = trainable(tmp_path / "model.keras")
    moved = sum(float(np.abs(f - a).sum()) for f, a in zip(final, averaged))
    apart = sum(float(np.abs(t - a).sum()) for t, a in zip(trained, averaged))
    assert 0 < moved < 0.2 * apart


def test_steps_per_epoch_bounds_an_epoch(tmp_path):
    summary = train(TrainConfig(epochs=2, steps_per_epoch=3, output_dir=str(tmp_path), verbose=0))
    assert summary["steps_per_epoch"] == 3
    state = json.loads((tmp_path / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 2
    events = [p for p in (tmp_path / "logs" / "train").iterdir()]
    assert events  # TensorBoard logs, with images_per_second among the epoch scalars
    from tensorboard.backend.event_processing import event_accumulator

    tags = set()
    for path in events:
        accumulator = event_accumulator.EventAccumulator(str(path))
        accumulator.Reload()
        tags |= set(accumulator.Tags().get("tensors", []) + accumulator.Tags().get("scalars", []))
    assert "epoch_images_per_second" in tags and "epoch_seconds_left" in tags


@pytest.mark.slow
@pytest.mark.parametrize("signum, code, name", [(signal.SIGINT, 130, "SIGINT"),
                                                (signal.SIGTERM, 143, "SIGTERM")])
def test_a_stopped_run_says_where_it_resumes_and_leaves_no_lock(tmp_path, signum, code, name):
    args = ["train", "--epochs", "30", "--output-dir", str(tmp_path)]
    process = start_cli(*args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    state = tmp_path / "checkpoints" / "state.json"
    deadline = time.time() + 400
    while not state.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)  # inside epoch 2
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr[-2000:]
    done = json.loads(state.read_text())["epoch"]
    assert stderr.strip().splitlines() == [
        f"keras-lambda: stopped by {name} during epoch {done + 1} of 30; the run resumes from "
        f"epoch {done + 1} (its checkpoint after epoch {done}): run the same command again"]
    assert not (tmp_path / ".lock").exists()
    leftovers = [p.name for p in tmp_path.rglob("*.tmp*")]
    assert leftovers == []


@pytest.mark.slow
def test_a_full_disk_is_one_line_naming_the_file_and_keeps_the_last_checkpoint(tmp_path):
    assert run_cli("train", "--epochs", "1", "--output-dir", str(tmp_path)).returncode == 0
    checkpoint = tmp_path / "checkpoints" / "epoch-0001.keras"
    before = checkpoint.read_bytes()
    limit = checkpoint.stat().st_size // 2  # the next model file cannot be written whole
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        sys.argv = ["keras-lambda", "train", "--epochs", "2", "--output-dir", {str(tmp_path)!r}]
        from keras_lambda.cli import main
        raise SystemExit(main())
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=QUIET)
    assert result.returncode == 1, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("keras-lambda: error: cannot write ") and "File too large" in lines[0]
    assert checkpoint.read_bytes() == before
    assert [p.name for p in tmp_path.rglob("*.tmp*")] == []
    assert not (tmp_path / ".lock").exists()
