"""What this machine can install: the userland's CPU architecture and the packages that fit it.

pip cannot choose edgecnn's interpreter or OpenCV correctly on a Raspberry Pi from dependency markers alone:

- 32-bit Raspberry Pi OS on a Pi 4 or 5 boots a 64-bit kernel, so ``uname -m`` (and ``platform.machine()``, and
  the PEP 508 ``platform_machine`` marker) says ``aarch64`` under a 32-bit userland. No marker sees the userland's
  word size, and ``ai-edge-litert`` has no 32-bit wheel.
- PyPI has no 32-bit Arm wheel of OpenCV, and Debian's ``python3-opencv`` (what picamera2 users have) is not a
  pip distribution, so any OpenCV requirement makes pip try to build OpenCV from source there.

So the interpreter and OpenCV are extras (``edgecnn[litert]``, ``edgecnn[tflite-runtime]``, ``edgecnn[opencv]``),
and at run time a missing one is one line saying what to install on *this* userland, which this module works out
from the kernel's machine name and the running Python's pointer size.

Standard library only; pure functions apart from reading ``platform`` / ``struct``.
"""

from __future__ import annotations

import platform
import struct
import sys
from dataclasses import dataclass

#: Kernel machine names (``uname -m``) of 64-bit Arm; under a 32-bit userland they mean "32-bit Arm on an ARMv8 CPU".
ARM64_MACHINES = ("aarch64", "arm64", "armv8l", "armv8b")
#: The extra that installs each interpreter package (pyproject.toml ``[project.optional-dependencies]``).
INTERPRETER_EXTRAS = {"ai_edge_litert": "litert", "tflite_runtime": "tflite-runtime"}


@dataclass(frozen=True)
class Userland:
    """The architecture the running Python was built for, next to the kernel's.

    Attributes:
        kernel_machine: ``platform.machine()`` (the kernel's ``uname -m``), e.g. "aarch64".
        bits: pointer size of this Python in bits (32 or 64): the userland's word size.
        arch: the userland's architecture: "x86_64", "aarch64", "armv7l" (also for a 32-bit userland on a 64-bit
            Arm kernel, whose CPU runs armv7l code), "armv6l" (Raspberry Pi Zero / Zero W / 1), ...
        system: ``sys.platform`` ("linux", "darwin", ...).
    """

    kernel_machine: str
    bits: int
    arch: str
    system: str

    @property
    def mixed(self) -> bool:
        """True for a 32-bit userland on a 64-bit kernel (32-bit Pi OS on a Pi 4/5 by default)."""
        return self.arch != self.kernel_machine

    def describe(self) -> str:
        """E.g. "armv7l (32-bit userland on a 64-bit aarch64 kernel)" or "aarch64 (64-bit)"."""
        if self.mixed:
            return f"{self.arch} ({self.bits}-bit userland on a 64-bit {self.kernel_machine} kernel)"
        return f"{self.arch} ({self.bits}-bit)"


def userland(machine: str | None = None, bits: int | None = None, system: str | None = None) -> Userland:
    """Describe this userland (arguments override what is read, for tests).

    Args:
        machine: kernel machine name; default ``platform.machine()``.
        bits: pointer size in bits; default ``8 * struct.calcsize("P")`` of the running Python.
        system: default ``sys.platform``.
    """
    machine = machine if machine is not None else platform.machine()
    bits = bits if bits is not None else 8 * struct.calcsize("P")
    system = system if system is not None else sys.platform
    arch = machine.lower()
    if bits == 32 and arch in ARM64_MACHINES:
        arch = "armv7l"
    elif bits == 32 and arch in ("x86_64", "amd64"):
        arch = "i686"
    return Userland(machine, bits, arch, system)


def interpreter_extra(u: Userland) -> str | None:
    """The extra whose interpreter package publishes wheels for ``u``, or None when none does.

    ai-edge-litert: 64-bit Linux (x86_64, aarch64) and macOS on Apple silicon; tflite-runtime 2.14 (its last
    release with 32-bit Arm wheels): armv7l. Nothing publishes armv6l wheels.
    """
    if u.bits == 64 and (u.arch in ("x86_64", "aarch64") or (u.system == "darwin" and u.arch == "arm64")):
        return INTERPRETER_EXTRAS["ai_edge_litert"]
    if u.arch == "armv7l":
        return INTERPRETER_EXTRAS["tflite_runtime"]
    return None


def interpreter_advice(u: Userland) -> str:
    """What to install for a TFLite interpreter on ``u``, as one sentence for an error message."""
    if u.arch == "armv6l":
        return ("this is an armv6l CPU (Raspberry Pi Zero / Zero W / 1): neither ai-edge-litert nor tflite-runtime "
                "publishes wheels for it; use a Pi 2 or later or a Pi Zero 2 W, or build tflite-runtime yourself")
    extra = interpreter_extra(u)
    if extra is None:
        return (f"this userland is {u.describe()}, for which neither ai-edge-litert nor tflite-runtime publishes "
                f"wheels; install TensorFlow (tf.lite) or build an interpreter yourself")
    why = " (ai-edge-litert has no 32-bit wheels)" if extra == "tflite-runtime" else ""
    return f"this userland is {u.describe()}: pip install 'edgecnn[{extra}]'{why}"


def opencv_advice(u: Userland) -> str:
    """What to install for OpenCV (``cv2``) on ``u``, as one sentence for an error message."""
    if u.arch.startswith("armv") and u.bits == 32:
        return (f"this userland is {u.describe()}, for which PyPI has no OpenCV wheel: sudo apt install "
                "python3-opencv, and make the venv with --system-site-packages so it can import it")
    return "pip install 'edgecnn[opencv]' (opencv-python-headless), or use apt's python3-opencv from a venv made " \
           "with --system-site-packages"
