"""`keras-lambda predict`: named classes for image files, each model fed as it was evaluated."""

import json

import keras
import numpy as np
import pytest

import keras_lambda  # noqa: F401  (registers the classes the .keras files name)

from tests.helpers import run_cli, write_image_folder


SIZE = 32


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A model of `keras-lambda train` on a folder of 32x32 PNGs, evaluated with
    crop_pct 1 (the centre crop of a 32x32 image at 32 px is the image itself)."""
    root = tmp_path_factory.mktemp("predict")
    write_image_folder(root / "images", classes=("circle", "square"), per_class=10, size=SIZE)
    result = run_cli("train", "--data-dir", str(root / "images"), "--image-size", str(SIZE),
                     "--crop-pct", "1", "--epochs", "1", "--batch-size", "4",
                     "--output-dir", str(root / "run"))
    assert result.returncode == 0, result.stderr[-2000:]
    return root


def read_png(path):
    import tensorflow as tf

    return tf.io.decode_png(tf.io.read_file(str(path)), channels=3).numpy()


def test_a_trained_model_gets_its_run_s_names_and_crop(trained_run):
    images = sorted((trained_run / "images").rglob("*.png"))
    result = run_cli("predict", str(trained_run / "run" / "best.keras"),
                     str(trained_run / "images"), "--top", "2", "--json")
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert [row["path"] for row in output["predictions"]] == [str(path) for path in images]
    assert output["skipped"] == []
    # Independent of the command: the model on the decoded files themselves.
    model = keras.saving.load_model(trained_run / "run" / "best.keras")
    expected = model.predict(np.stack([read_png(path) for path in images]), verbose=0)
    names = ["circle", "square"]
    for row, probabilities in zip(output["predictions"], expected):
        order = np.argsort(-probabilities, kind="stable")
        assert [guess["class"] for guess in row["top"]] == [names[i] for i in order]
        assert [guess["probability"] for guess in row["top"]] == pytest.approx(
            probabilities[order], abs=1e-6)


def test_unreadable_paths_are_one_line_each_and_the_rest_is_printed(trained_run, tmp_path):
    image = next((trained_run / "images" / "circle").glob("*.png"))
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "empty").mkdir()
    result = run_cli("predict", str(trained_run / "run" / "best.keras"), str(image),
                     str(tmp_path / "notes.png"), str(tmp_path / "missing.jpg"),
                     str(tmp_path / "empty"), "--top", "1")
    assert result.returncode == 2
    assert result.stdout.startswith(f"{image}: ") and result.stdout.count("\n") == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3, result.stderr
    assert lines[0] == f"keras-lambda: skipped {tmp_path / 'missing.jpg'}: no such file or folder"
    assert lines[1].startswith(f"keras-lambda: skipped {tmp_path / 'empty'}: a folder without")
    assert lines[2].startswith(f"keras-lambda: skipped {tmp_path / 'notes.png'}: not a "
                               "decodable image")


def test_a_converted_timm_model_gets_timm_s_transform_and_imagenet_names(tmp_path):
    from keras_lambda.models import LambdaResNet26T, imagenet

    model = LambdaResNet26T()  # random weights, named lambda_resnet26t as convert writes it
    model.save(tmp_path / "converted.keras")
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (300, 280, 3), dtype="uint8")
    import tensorflow as tf

    (tmp_path / "photo.png").write_bytes(tf.io.encode_png(pixels).numpy())
    result = run_cli("predict", str(tmp_path / "converted.keras"), str(tmp_path / "photo.png"),
                     "--top", "3", "--json")
    assert result.returncode == 0, result.stderr
    top = json.loads(result.stdout)["predictions"][0]["top"]
    probabilities = model.predict(imagenet.preprocess_input(pixels, "lambda_resnet26t"),
                                  verbose=0)[0]
    order = np.argsort(-probabilities, kind="stable")[:3]
    classes = imagenet.imagenet_classes()
    assert [guess["class"] for guess in top] == [classes[i][1] for i in order]
    assert [guess["probability"] for guess in top] == pytest.approx(probabilities[order],
                                                                     abs=1e-6)


@pytest.mark.parametrize("args, message", [
    (["no/such/model.keras", "x.png"], "MODEL 'no/such/model.keras' is neither a .keras file "
                                       "nor a timm preset"),
    (["MODEL", "x.png", "--top", "0"], "--top must be at least 1, got 0"),
])
def test_bad_arguments_are_one_line(tmp_path, args, message):
    (tmp_path / "model.keras").write_text("")
    args = [str(tmp_path / "model.keras") if arg == "MODEL" else arg for arg in args]
    result = run_cli("predict", *args)
    assert result.returncode == 2
    assert result.stderr.startswith(f"keras-lambda: error: {message}")
    assert result.stderr.count("\n") == 1


def test_a_file_that_is_not_a_model_is_one_line(tmp_path):
    (tmp_path / "model.keras").write_text("not a zip")
    result = run_cli("predict", str(tmp_path / "model.keras"), str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("keras-lambda: error: MODEL ")
    assert "is not a readable .keras model" in result.stderr and result.stderr.count("\n") == 1
