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
