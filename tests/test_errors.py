"""The one-line reports made of other libraries' errors."""

from keras_lambda.errors import first_line


class _NodeError(Exception):
    """An error that keeps its text in `message`, as TensorFlow's `OpError` does."""

    def __init__(self, message):
        super().__init__("node decode_image: " + message)
        self.message = message


def test_first_line_keeps_the_first_line_of_a_long_message():
    error = ValueError("\n  File is not a zip file\nTraceback (most recent call last):\n  ...")
    assert first_line(error) == "File is not a zip file"
    assert first_line(ValueError("x" * 500)) == "x" * 200


def test_first_line_of_an_empty_message_is_the_error_type():
    assert first_line(OSError()) == "OSError"
    assert first_line(Exception("   \n ")) == "Exception"


def test_first_line_prefers_the_message_an_error_keeps_apart():
    assert first_line(_NodeError("Unknown image file format.\nOne of JPEG, PNG")) == (
        "Unknown image file format.")
