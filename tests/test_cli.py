"""The `keras-lambda` console script."""

import os
import shutil
import subprocess
import sys

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
