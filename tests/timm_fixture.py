"""The `timm_reference` fixture: what timm itself computes, from its own process
(used by the model tests and the fine-tuning tests; tests/conftest.py shares it)."""

import pathlib
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import QUIET, sample_image

# timm's side runs in a process of its own (torchvision crashes beside TensorFlow).
TIMM_REFERENCE = pathlib.Path(__file__).parent / "timm_reference.py"


@pytest.fixture(scope="session")
def timm_reference(tmp_path_factory):
    """The folder `tests/timm_reference.py` fills (timm's random checkpoints, their
    outputs, its preprocessing of `sample_image()`, its class list), made once."""
    folder = tmp_path_factory.mktemp("timm")
    np.save(folder / "image.npy", sample_image())
    result = subprocess.run([sys.executable, str(TIMM_REFERENCE), str(folder)],
                            capture_output=True, text=True, env=QUIET)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder
