"""Native (C/C++) log lines on file descriptor 2: hold them back, pass on only what the user needs.

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
def filtered_native_stderr(drop: tuple[str, ...] = INTERPRETER_NOISE):
    """Send fd 2 to a temporary file for the duration, then write everything back to fd 2 except the lines that
    start with one of ``drop`` (so real errors and warnings of the interpreter still reach the user, in order).

    Nothing is hidden when fd 2 cannot be duplicated (e.g. an embedded interpreter without one).
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [ln for ln in capture.read().splitlines(keepends=True)
                    if not ln.decode("utf-8", "replace").startswith(drop)]
            if kept:
                os.write(2, b"".join(kept))
