"""Every error edgecnn raises for the user: bad models, images, labels, data, sources, outputs, a missing
interpreter, a failed conversion or quality gate.

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


class SourceError(EdgecnnError, ValueError):
    """A frame source cannot be opened (missing file, camera index that does not exist, picamera2 not installed)."""


class WriteError(EdgecnnError, OSError):
    """An output cannot be written (disk full, permissions, an encoder that writes nothing); the message names the
    file under its final name and the reason. Nothing is left under that name."""


class OutputExistsError(EdgecnnError, FileExistsError):
    """The output folder or file already holds something and overwriting was not allowed."""


class DataError(EdgecnnError, ValueError):
    """A dataset cannot be used: missing folder or files, malformed IDX, too few classes, bad files under --strict."""


class QuantizationError(EdgecnnError, ValueError):
    """Conversion failed, or its result is not what was asked for (interface dtype, float ops left)."""


class QualityGateError(EdgecnnError, RuntimeError):
    """The int8 model lost more accuracy than ``--max-drop`` allows (outputs are written; the exit code is 1).

    Attributes:
        report: the quantize report that was written.
    """

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


class FrameError(EdgecnnError, ValueError):
    """A camera frame does not fit an option (a ``--roi`` that lies outside the frame)."""


class TrainingError(EdgecnnError, RuntimeError):
    """Training diverged: the loss became NaN or infinite (usually a learning rate too high for the data); nothing
    was written."""


class DependencyError(EdgecnnError, RuntimeError):
    """A package or system library edgecnn needs (OpenCV, libGL, ...) cannot be imported or loaded."""
