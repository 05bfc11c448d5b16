"""The library's one error type for bad settings, data or files.

Messages are worded for a Python caller and name each setting in backticks, the
way Keras names arguments (`epochs`, `output_dir`); the command line alone turns
those names into its flags (`--epochs`, `--output-dir`), prints one line and
exits with code 2 (`keras_lambda.cli`).
"""


class UsageError(ValueError):
    """Bad settings, data or files, found before the work that needs them."""
