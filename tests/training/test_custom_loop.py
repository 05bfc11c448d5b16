"""keras_lambda.training.custom_loop: two workers under MultiWorkerMirroredStrategy train to
identical weights and resume, through `keras-lambda train --strategy multiworker`."""

import json
import subprocess

import keras
import numpy as np
import pytest

from tests.helpers import QUIET, SCRIPT


def free_ports(count):
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def run_workers(output, epochs):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {**QUIET, "TF_CONFIG": json.dumps(config)}
        args = ["train", "--strategy", "multiworker", "--epochs", str(epochs), "--output-dir", str(output)]
        workers.append(subprocess.Popen([SCRIPT, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True))
    logs = [worker.communicate(timeout=600)[0] for worker in workers]
    return [worker.returncode for worker in workers], logs


@pytest.mark.slow
def test_two_workers_train_to_identical_weights_and_resume(tmp_path):
    codes, logs = run_workers(tmp_path, epochs=2)
    assert "test accuracy" in logs[0] and "test accuracy" in logs[1], logs[0][-3000:] + logs[1][-3000:]
    assert codes == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["replicas"] == 2 and summary["initial_epoch"] == 0
    assert not (tmp_path / ".worker-1" / "summary.json").exists()  # only the chief writes it
    chief = keras.models.load_model(tmp_path / "model.keras")
    other = keras.models.load_model(tmp_path / ".worker-1" / "model.keras")
    for a, b in zip(chief.weights, other.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)

    codes, logs = run_workers(tmp_path, epochs=3)  # same command, more epochs: resumes
    assert codes == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["initial_epoch"] == 2 and summary["epochs"] == 3
