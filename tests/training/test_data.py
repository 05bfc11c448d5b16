"""keras_lambda.training.data: the validation split, and tensorflow-datasets without a network."""

import socket
import time

import pytest
import requests

from keras_lambda.training import data as data_lib
from tests.helpers import write_image_folder


def images(split):
    return {image.numpy().tobytes() for image, _ in split.images()}


def test_the_validation_split_comes_from_the_training_split_only():
    digits = data_lib.load_digits()
    held_out = data_lib.split_validation(digits, 0.1)
    train, validation, test = images(held_out.train), images(held_out.test), images(digits.test)
    assert len(validation) == int(digits.num_train * 0.1) == 143
    assert held_out.num_train == digits.num_train - 143 == len(list(held_out.train.images()))
    assert validation.isdisjoint(train) and validation.isdisjoint(test)
    assert train | validation == images(digits.train)


def test_an_image_folder_validation_split_mixes_the_classes(tmp_path):
    write_image_folder(tmp_path, classes=("a", "b", "c"), per_class=20)
    folder = data_lib.load_folder(str(tmp_path))
    labels = [int(label) for _, label in data_lib.split_validation(folder, 0.25).test.images()]
    assert len(set(labels)) == 3  # not the first class's images only


def refuse_connections(*args, **kwargs):
    raise OSError(101, "Network is unreachable")


def test_an_unprepared_tfds_set_offline_is_one_quick_error(tmp_path, monkeypatch):
    monkeypatch.setattr(socket, "create_connection", refuse_connections)
    started = time.time()
    with pytest.raises(data_lib.DataError) as error:
        data_lib.load_tfds("cifar10", str(tmp_path))
    message = str(error.value)
    assert "tfds:cifar10 is not prepared and www.cs.toronto.edu cannot be reached" in message
    assert f"tfds build cifar10 --data_dir {tmp_path}" in message and "\n" not in message
    assert time.time() - started < 30


def test_a_failed_tfds_download_is_one_error_naming_what_to_do(tmp_path, monkeypatch):
    """The probe passes, the download itself fails: tfds's real download path runs
    (it imports importlib_resources, which keras-lambda declares for it)."""

    class Reachable:
        def close(self):
            pass

    def fail(*args, **kwargs):
        raise requests.exceptions.ConnectionError("connection reset by peer")

    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: Reachable())
    monkeypatch.setattr(requests.Session, "get", fail)
    with pytest.raises(data_lib.DataError) as error:
        data_lib.load_tfds("cifar10", str(tmp_path))
    message = str(error.value)
    assert message.startswith("tfds:cifar10 could not be downloaded (") and "tfds build" in message
    assert "ModuleNotFoundError" not in message and "\n" not in message
