"""Output files of a run: atomic writes, JSON, the output-folder check and its lock.

Free of TensorFlow: the command line checks `--output-dir` before importing it.
"""

import json
import os
import socket
import tempfile
import time

from keras_lambda.errors import FaultError, UsageError

LOCK_NAME = ".lock"


def atomic_write(path, write):
    """Writes through a temporary file and renames it: a kill leaves old or new, never half.

    `write(temporary_path)` writes the file (e.g. `model.save`); the temporary
    keeps the extension, which Keras checks. Whatever stops the write (a full
    disk, a signal) removes the temporary and leaves the old file as it was; an
    OSError (ENOSPC, EFBIG, EIO, ...) becomes a FaultError naming the file.
    """
    temporary = f"{path}.tmp{os.path.splitext(path)[1]}"
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException as error:
        try:
            os.remove(temporary)
        except OSError:
            pass
        if isinstance(error, OSError):
            reason = error.strerror or str(error)
            kept = "the previous version is intact; " if os.path.exists(path) else ""
            raise FaultError(
                f"cannot write {path}: {reason}; {kept}free some space (or fix the "
                "disk) and run the same command again to carry on"
            ) from None
        raise


def write_json(path, payload):
    def write(temporary):
        with open(temporary, "w") as file:
            json.dump(payload, file, indent=2)

    atomic_write(path, write)


def read_json(path):
    """The parsed file, or None when it is missing, truncated or not a JSON object."""
    try:
        with open(path) as file:
            payload = json.load(file)
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def check_output_dir(path, setting="output_dir"):
    """Raises UsageError unless `path` is (or can become) a folder this process can
    write into. Creates nothing: bad input leaves nothing behind."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"`{setting}` {path!r} is a file, not a folder")
    existing = os.path.abspath(path)
    while not os.path.exists(existing):  # the nearest folder that exists
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"`{setting}` {path!r}: {existing!r} is a file, not a folder")
    try:  # a real write: permission bits say nothing for root or read-only mounts
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise UsageError(
            f"`{setting}` {path!r}: cannot write into {existing!r} ({error.strerror or error})"
        ) from None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


class OutputLock:
    """`folder/.lock` holding the owner's pid and host, so that two runs never write
    into one folder at once. A lock left by a run that died (its pid is gone on
    this host, or it was left empty) is taken over; a live one is a UsageError naming its owner.

    Use as a context manager; the folder must exist.
    """

    def __init__(self, folder, setting="output_dir"):
        self.path = os.path.join(folder, LOCK_NAME)
        self.setting = setting
        self.owner = {"pid": os.getpid(), "host": socket.gethostname()}

    def _create(self):
        descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        with os.fdopen(descriptor, "w") as file:
            json.dump(self.owner, file)

    def acquire(self):
        for attempt in range(20):
            try:
                self._create()
                return self
            except FileExistsError:
                pass
            holder = read_json(self.path) or {}
            pid, host = holder.get("pid"), holder.get("host")
            if isinstance(pid, int) and host != self.owner["host"]:
                raise UsageError(
                    f"`{self.setting}` {os.path.dirname(self.path)!r} is in use by a run on "
                    f"{host} (pid {pid}); remove {self.path} if that run is gone"
                )
            if isinstance(pid, int) and _alive(pid):
                raise UsageError(
                    f"`{self.setting}` {os.path.dirname(self.path)!r} is in use by another run "
                    f"(pid {pid}); wait for it to finish or use another `{self.setting}`"
                )
            if pid is None and attempt < 10:  # its owner may be writing it this instant
                time.sleep(0.1)
                continue
            try:  # stale: its owner died (or left it empty); take it over
                os.remove(self.path)
            except FileNotFoundError:
                pass
        raise UsageError(f"`{self.setting}`: could not take the lock {self.path}")

    def release(self):
        if read_json(self.path) == self.owner:
            os.remove(self.path)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()
