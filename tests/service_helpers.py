"""Helpers for tests that run ``edgecnn camera`` as a real process with the service parts (web view, MQTT)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def make_video(path: Path, frames: int = 100, size: tuple[int, int] = (160, 120), fps: float = 20.0) -> Path:
    """An MJPG .avi whose frames change colour and show their number (so consecutive frames differ)."""
    import cv2

    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for i in range(frames):
        img = np.zeros((h, w, 3), np.uint8)
        img[:] = ((i * 3) % 256, 255 - (i * 5) % 256, (i * 7) % 256)
        cv2.putText(img, str(i), (10, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
        writer.write(img)
    writer.release()
    return path


class CameraProcess:
    """``python -m edgecnn camera ARGS`` in a child process; :meth:`url` waits for its ``web view:`` line."""

    def __init__(self, args: list, cwd: Path, env: dict | None = None):
        self.proc = subprocess.Popen([sys.executable, "-m", "edgecnn", "camera", *map(str, args)], cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})})
        self.stderr_lines: list[str] = []

    def url(self, timeout_s: float = 60.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.stderr_lines.append(line)
            if line.startswith("web view: "):
                return line.split(" ", 2)[2].strip()
        raise AssertionError("no 'web view:' line; stderr: " + "".join(self.stderr_lines))

    def finish(self, timeout_s: float = 60.0) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout_s)
        return self.proc.returncode, out, "".join(self.stderr_lines) + err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()
