"""keras_lambda.files: atomic writes, tolerant JSON reads, the output-folder check, the lock."""

import json
import os
import subprocess
import sys

import pytest

from keras_lambda.errors import FaultError
from keras_lambda.files import (
    LOCK_NAME,
    OutputLock,
    atomic_write,
    check_output_dir,
    read_json,
    write_json,
)
from keras_lambda.training.options import UsageError


def test_atomic_write_leaves_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("old")

    def failing(temporary):
        with open(temporary, "w") as file:
            file.write("half")
        raise OSError("disk full")

    with pytest.raises(FaultError, match=f"cannot write {path}: disk full; the previous version is intact"):
        atomic_write(str(path), failing)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]  # no temporary left
    atomic_write(str(path), lambda temporary: open(temporary, "w").write("new"))
    assert path.read_text() == "new"


def test_read_json_returns_none_for_missing_truncated_or_non_object_files(tmp_path):
    write_json(str(tmp_path / "good.json"), {"epoch": 3})
    assert read_json(str(tmp_path / "good.json")) == {"epoch": 3}
    (tmp_path / "cut.json").write_text('{"epo')
    (tmp_path / "list.json").write_text("[1, 2]")
    for name in ("missing.json", "cut.json", "list.json"):
        assert read_json(str(tmp_path / name)) is None


def test_an_output_dir_that_is_a_file_or_under_a_file_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UsageError, match="`output_dir` '.*file' is a file, not a folder"):
        check_output_dir(str(blocker))
    with pytest.raises(UsageError, match="is a file, not a folder"):
        check_output_dir(str(blocker / "run"))


def test_an_output_dir_that_cannot_be_written_is_refused_and_nothing_is_made(tmp_path):
    # /proc takes no new files, whoever asks (permission bits would not stop root).
    with pytest.raises(UsageError, match="cannot write into '/proc'"):
        check_output_dir("/proc/keras-lambda-run")
    check_output_dir(str(tmp_path / "new" / "run"))  # writable: fine, and not created
    assert not (tmp_path / "new").exists()


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_lock_keeps_a_second_run_out_and_is_released(tmp_path):
    with OutputLock(str(tmp_path)):
        holder = json.loads((tmp_path / LOCK_NAME).read_text())
        assert holder["pid"] == os.getpid()
        with pytest.raises(UsageError, match=rf"in use by another run \(pid {os.getpid()}\)"):
            OutputLock(str(tmp_path)).acquire()
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_lock_left_by_a_dead_run_or_left_empty_is_taken_over(tmp_path):
    lock = OutputLock(str(tmp_path))
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": dead_pid(), "host": lock.owner["host"]}))
    with lock:
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    (tmp_path / LOCK_NAME).write_text("")  # killed between creating and writing it
    with lock:
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_a_lock_held_on_another_host_is_not_taken(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere"}))
    with pytest.raises(UsageError, match="in use by a run on elsewhere"):
        OutputLock(str(tmp_path)).acquire()
