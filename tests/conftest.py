"""Test settings: quiet TensorFlow, the TensorFlow backend unless one is chosen."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
