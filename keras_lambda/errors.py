"""The library's one error type for bad settings, data or files.

Messages are worded for a Python caller and name each setting in backticks, the
way Keras names arguments (`epochs`, `output_dir`); the command line alone turns
those names into its flags (`--epochs`, `--output-dir`), prints one line and
exits with code 2 (`keras_lambda.cli`). A fault that is nobody's input (a full
disk) is a `FaultError`: one line too, exit code 1.
"""


class UsageError(ValueError):
    """Bad settings, data or files, found before the work that needs them."""


class FaultError(RuntimeError):
    """A fault of the machine, not of the settings (a full disk, an I/O error):
    the message names the file and what to do; nothing written before is lost."""


def first_line(error, length=200):
    """The first line of `error`'s message, at most `length` characters, for a one-line
    report (its type's name when the message is empty): a library's error can run to
    pages (a stack of nodes, a traceback of its own), the user needs its first words."""
    lines = str(getattr(error, "message", error)).strip().splitlines()
    return (lines[0] if lines else type(error).__name__)[:length]
