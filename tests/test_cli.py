"""The `keras-lambda` console script."""

import os
import shutil
import subprocess
import sys

import numpy as np

import keras_lambda
from keras_lambda import cli


def test_version_from_the_installed_console_script():
    script = shutil.which("keras-lambda", path=os.path.dirname(sys.executable))
    assert script, "the keras-lambda console script is not installed beside python"
    result = subprocess.run([script, "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.strip() == f"keras-lambda {keras_lambda.__version__}"


def test_no_command_prints_usage_and_exits_2(capsys):
    assert cli.main([]) == 2
    assert "usage: keras-lambda" in capsys.readouterr().err


def test_every_option_says_what_it_does_and_its_default(capsys):
    parser = cli.build_parser()
    for name, command in parser.commands.items():
        for action in command._actions:
            if action.dest == "help":
                continue
            assert action.help, f"keras-lambda {name} {action.option_strings[0]} has no help"
            shown = command.formatter_class("x")._get_help_string(action)
            if action.default is not None and action.default is not False:  # not switches
                assert "(default" in shown, f"{name} {action.option_strings[0]}: {shown}"
    try:
        cli.main(["train", "--help"])
    except SystemExit:
        pass
    assert "runs/keras-lambda" in capsys.readouterr().out


def test_the_library_names_settings_and_the_command_line_shows_its_flags():
    train = cli.build_parser().commands["train"]
    message = "`batch_size` 63 is not divisible; `output_dim` must divide by `num_heads`"
    assert cli.as_flags(message, train) == (
        "--batch-size 63 is not divisible; `output_dim` must divide by --num-heads")


def test_convert_faults_are_one_line_before_keras_loads(tmp_path):
    """A missing, truncated or foreign checkpoint and an unwritable output: exit 2,
    one line naming the flag, and no Keras or TensorFlow import (stand-ins that
    fail on import are put first on the path)."""
    from safetensors.numpy import save_file

    from tests.helpers import QUIET, SCRIPT

    for module in ("tensorflow", "keras"):
        (tmp_path / f"{module}.py").write_text(f"raise SystemExit('{module} was imported')\n")
    checkpoint = tmp_path / "whole.safetensors"
    save_file({"stem.conv1.conv.weight": np.zeros((24, 3, 3, 3), "float32")}, str(checkpoint))
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(checkpoint.read_bytes()[:-100])
    foreign = tmp_path / "photo.safetensors"
    foreign.write_bytes(b"\xff\xd8\xff\xe0" + bytes(500))
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    cases = [
        (tmp_path / "missing.safetensors", tmp_path / "out.keras",
         "--timm-checkpoint: timm checkpoint", "is not a file"),
        (truncated, tmp_path / "out.keras", "--timm-checkpoint: timm checkpoint",
         "is not readable as a safetensors file"),
        (foreign, tmp_path / "out.keras", "--timm-checkpoint: timm checkpoint",
         "is not readable as a safetensors file"),
        (checkpoint, a_file / "out.keras", "--output", "a_file"),
    ]
    env = {**QUIET, "PYTHONPATH": str(tmp_path)}
    for path, output, flag, reason in cases:
        result = subprocess.run(
            [SCRIPT, "convert", "--timm-checkpoint", str(path), "--model", "lambda_resnet26t",
             "--output", str(output)], capture_output=True, text=True, env=env)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"keras-lambda: error: {flag}"), result.stderr
        assert reason in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert not os.path.exists(output)
