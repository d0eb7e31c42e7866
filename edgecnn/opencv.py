"""The one place OpenCV is imported, and what differs between the OpenCV builds a device can have.

A Raspberry Pi can have Debian's OpenCV 4.6 from apt (``python3-opencv``: 32-bit Pi OS, picamera2 users) or a wheel
from PyPI (``opencv-python-headless`` / ``opencv-python``, 4.8 to 5.x). Code that uses OpenCV imports it with
:func:`import_cv2` (a missing module or system library becomes one line naming what to install) and uses the helpers
here rather than attributes only some versions have.
"""

from __future__ import annotations

import contextlib
import re

from edgecnn.errors import DependencyError
from edgecnn.install import opencv_advice, userland

#: Debian packages that provide the system libraries OpenCV wheels load at import time (``opencv-python`` needs
#: libGL, GLib and, from 5.0 on Arm, libxcb; ``opencv-python-headless`` needs none of them). Names from Debian
#: bookworm (``apt-file search``).
LIBRARY_PACKAGES = {
    "libGL.so.1": "libgl1",
    "libxcb.so.1": "libxcb1",
    "libX11.so.6": "libx11-6",
    "libEGL.so.1": "libegl1",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libgobject-2.0.so.0": "libglib2.0-0",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libXext.so.6": "libxext6",
    "libXrender.so.1": "libxrender1",
}


def import_error_message(error: str) -> str:
    """One line for an ``ImportError`` of ``cv2`` (its text ``error``): the missing system library and the Debian
    package that provides it; a NumPy it was not built for (apt's OpenCV under a pip NumPy 2: "numpy.core.multiarray
    failed to import"); or what to install for OpenCV itself on this userland."""
    m = re.search(r"([\w.+-]+\.so[\w.]*): cannot open shared object file", error)
    if m:
        lib = m.group(1)
        fix = f"sudo apt install {LIBRARY_PACKAGES[lib]}" if lib in LIBRARY_PACKAGES else \
            f"install the Debian package that provides it (apt-file search {lib})"
        return (f"OpenCV (cv2) cannot load the system library {lib}: {fix}; or replace opencv-python with "
                f"opencv-python-headless (pip install 'edgecnn[opencv]'), which needs no display libraries")
    if "numpy" in error.lower():
        import numpy as np

        return (f"OpenCV (cv2) cannot be imported ({error}): it was built for another NumPy than {np.__version__} "
                f"({np.__file__}); in a --system-site-packages venv over apt's OpenCV keep apt's NumPy: "
                f"pip install 'numpy<2'")
    return f"OpenCV (cv2) cannot be imported ({error}); {opencv_advice(userland())}"


def import_cv2():
    """Import and return the ``cv2`` module.

    Raises:
        DependencyError: cv2 cannot be imported; the message says what to install (see :func:`import_error_message`).
    """
    try:
        import cv2  # deferred by every caller: keeps `edgecnn --help` fast
    except ImportError as e:
        raise DependencyError(import_error_message(str(e))) from None
    return cv2


@contextlib.contextmanager
def quiet_logs(cv2):
    """Silence OpenCV's own log lines inside the ``with`` block (e.g. while opening a source whose failure is
    reported in one line), restoring the previous level after.

    ``cv2.utils.logging`` exists in the PyPI wheels (4.8+) but not in Debian's OpenCV 4.6, which has the older
    ``cv2.setLogLevel`` / ``cv2.getLogLevel``; an OpenCV with neither just keeps logging.
    """
    api = getattr(getattr(cv2, "utils", None), "logging", None)
    if api is not None and hasattr(api, "setLogLevel"):
        get, set_, silent = api.getLogLevel, api.setLogLevel, api.LOG_LEVEL_SILENT
    elif hasattr(cv2, "setLogLevel") and hasattr(cv2, "getLogLevel"):
        get, set_, silent = cv2.getLogLevel, cv2.setLogLevel, 0  # 0 is LOG_LEVEL_SILENT (opencv2/core/utils/logger.defines.hpp)
    else:
        yield
        return
    level = get()
    set_(silent)
    try:
        yield
    finally:
        set_(level)


def gui_backend(build_information: str) -> str | None:
    """The GUI toolkit named in ``cv2.getBuildInformation()`` text ("GTK3", "QT5", ...), None for a build without
    one (``opencv-python-headless``: "GUI: NONE") or when the text has no GUI line."""
    m = re.search(r"^[ \t]*GUI:[ \t]*(\S+)", build_information, re.M)
    if not m or m.group(1).upper() == "NONE":
        return None
    return m.group(1)


def has_gui(cv2) -> bool:
    """True when this OpenCV can open a window (``cv2.imshow``): a GUI toolkit was compiled in."""
    return gui_backend(cv2.getBuildInformation()) is not None
