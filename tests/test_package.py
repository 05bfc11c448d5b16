"""The package on every backend: what imports without TensorFlow, and a command line
that answers at once."""

import importlib.util
import os
import subprocess
import sys

import pytest

from tests.helpers import QUIET, run_cli

HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None


def run_python(code):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=QUIET)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()


def test_layers_ops_and_models_import_no_tensorflow_on_other_backends():
    loaded = run_python(
        "import sys, keras_lambda\n"
        "from keras_lambda import layers, models, ops\n"
        "model = models.build_preset('tiny', input_shape=(32, 32, 3), classes=2)\n"
        "print(keras_lambda.LambdaLayer.__name__, 'tensorflow' in sys.modules)"
    )
    backend = os.environ["KERAS_BACKEND"]
    assert loaded == ["LambdaLayer", str(backend == "tensorflow")]


def test_the_command_answers_help_and_bad_arguments_without_keras():
    loaded = run_python(
        "import contextlib, io, sys\n"
        "sys.argv[0] = 'keras-lambda'\n"
        "from keras_lambda import cli\n"
        "with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):\n"
        "    codes = [cli.main(['train', '--epochs', '0'])]\n"
        "    try:\n"
        "        cli.main(['bench', '--help'])\n"
        "    except SystemExit as exit:\n"
        "        codes.append(exit.code)\n"
        "print(*codes, 'keras' in sys.modules, 'tensorflow' in sys.modules)"
    )
    assert loaded == ["2", "0", "False", "False"]


@pytest.mark.skipif(HAS_TENSORFLOW, reason="TensorFlow is installed here: the case is its absence")
def test_training_without_tensorflow_says_what_it_needs(tmp_path):
    result = run_cli("train", "--output-dir", str(tmp_path / "run"))
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "`keras-lambda train` needs TensorFlow" in result.stderr
    with pytest.raises(ImportError, match=r"keras_lambda\.[\w.]+ .*needs TensorFlow .*`cpu` extra"):
        import keras_lambda.train  # noqa: F401


@pytest.mark.skipif(HAS_TENSORFLOW, reason="TensorFlow is installed here: the case is its absence")
def test_a_command_on_the_tensorflow_backend_without_tensorflow_says_how_to_get_it(tmp_path):
    """TensorFlow is an extra: Keras's default backend may be missing, and the command says
    which extra brings it or how to choose another backend, in one line."""
    result = run_cli("bench", "--quick", "--output-dir", str(tmp_path),
                     env={**QUIET, "KERAS_BACKEND": "tensorflow"})
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr
    assert "install the package's `cpu` extra" in result.stderr
    assert "set KERAS_BACKEND to jax or torch" in result.stderr
    assert not list(tmp_path.iterdir())


def test_subpackages_are_attributes_after_a_plain_import():
    """`import keras_lambda as kl; kl.models.LambdaResNet50()`, as Keras and timm users
    write it, on every backend; still no TensorFlow where Keras runs on another."""
    loaded = run_python(
        "import sys\n"
        "import keras_lambda as kl\n"
        "model = kl.models.build_preset('tiny', input_shape=(32, 32, 3), classes=2)\n"
        "print(kl.ops.__name__, kl.layers.LambdaLayer.__name__, kl.models.LambdaResNet50.__name__,"
        " 'tensorflow' in sys.modules)\n"
        "try:\n"
        "    kl.no_such_thing\n"
        "except AttributeError as error:\n"
        "    print('AttributeError')"
    )
    backend = os.environ["KERAS_BACKEND"]
    assert loaded == ["keras_lambda.ops", "LambdaLayer", "LambdaResNet50",
                      str(backend == "tensorflow"), "AttributeError"]
    if HAS_TENSORFLOW:
        assert run_python("import keras_lambda as kl\nprint(kl.training.train.__name__)") == [
            "train"]
