"""Errors that edgecnn raises for bad models, images, labels or a missing interpreter.

Each is a ValueError (or RuntimeError) whose message names the file or value and what was expected; the CLI
turns any :class:`EdgecnnError` into one line on stderr and exit code 1.
"""


class EdgecnnError(Exception):
    """Base class of every error edgecnn reports to the user as a single line."""


class ModelError(EdgecnnError, ValueError):
    """A model file is missing, not a TFLite flatbuffer, truncated, or not a single-input image classifier."""


class ImageError(EdgecnnError, ValueError):
    """An image file cannot be read or decoded."""


class LabelsError(EdgecnnError, ValueError):
    """A label file cannot be read or does not fit the model's output."""


class BackendError(EdgecnnError, RuntimeError):
    """No TFLite interpreter package can be imported (or the one asked for cannot)."""
