"""Native (C/C++) log lines on file descriptor 2: hold them back, pass on only what the user needs (the
interpreter's start-up noise on the device, TensorFlow's on the workstation).

Libraries written in C++ (the TFLite interpreter, TensorFlow) print to the process's stderr directly, past Python's
``sys.stderr``; the only way to filter them is to point fd 2 somewhere else for the duration.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

#: Lines the TFLite interpreter prints on every start that tell the user nothing (LiteRT, tflite-runtime).
INTERPRETER_NOISE = ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",)


@contextlib.contextmanager
def _fd2_captured():
    """Point fd 2 at a temporary file for the duration; yield a function that restores fd 2 (once; later calls do
    nothing) and returns what was captured. Yields None when fd 2 cannot be duplicated (e.g. an embedded
    interpreter without one): then nothing is captured."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield None
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        restored = []

        def restore() -> bytes:
            if not restored:
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                restored.append(capture.read())
            return restored[0]

        try:
            yield restore
        finally:
            restore()


@contextlib.contextmanager
def filtered_native_stderr(drop: tuple[str, ...] = INTERPRETER_NOISE):
    """Send fd 2 to a temporary file for the duration, then write everything back to fd 2 except the lines that
    start with one of ``drop`` (so real errors and warnings of the interpreter still reach the user, in order).

    Nothing is hidden when fd 2 cannot be duplicated (e.g. an embedded interpreter without one).
    """
    with _fd2_captured() as restore:
        try:
            yield
        finally:
            if restore is not None:
                kept = [ln for ln in restore().splitlines(keepends=True)
                        if not ln.decode("utf-8", "replace").startswith(drop)]
                if kept:
                    os.write(2, b"".join(kept))


@contextlib.contextmanager
def quiet_native_stderr():
    """Send fd 2 to a temporary file for the duration, and replay it only if an exception escapes.

    TensorFlow's C++ start-up and the TFLite converter print log lines (absl, oneDNN, "fully_quantize: 0 ...") to
    the process's stderr, past Python's ``sys.stderr`` and past ``TF_CPP_MIN_LOG_LEVEL``; this keeps them off the
    user's terminal without losing them when something fails.
    """
    with _fd2_captured() as restore:
        try:
            yield
        except BaseException:
            if restore is not None:
                os.write(2, restore())
            raise
