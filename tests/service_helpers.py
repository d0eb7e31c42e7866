"""Helpers for tests that run ``edgecnn camera`` as a real process with the service parts (web view, MQTT)."""

from __future__ import annotations

import os
import shutil
import signal
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


def ctrl_c_as_in_a_terminal() -> None:
    """``preexec_fn`` for a child that a test sends SIGINT: Ctrl-C's default action, as in a terminal.

    A program started in the background by a non-interactive shell (``cmd &`` in a script, ``nohup``) inherits
    SIGINT *ignored*, and Python then leaves it ignored; a test run from such a shell would otherwise see its
    Ctrl-C go nowhere."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class CameraProcess:
    """``python -m edgecnn camera ARGS`` in a child process; :meth:`url` waits for its ``web view:`` line."""

    def __init__(self, args: list, cwd: Path, env: dict | None = None):
        self.proc = subprocess.Popen([sys.executable, "-m", "edgecnn", "camera", *map(str, args)], cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})}, preexec_fn=ctrl_c_as_in_a_terminal)
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


def make_blocks_video(path: Path, frames: int, block: int, size: tuple[int, int] = (64, 48), fps: float = 25.0) -> Path:
    """An MJPG .avi alternating ``block`` black frames and ``block`` white frames (on the tiny test model: class
    "ant" by a tie broken towards index 0, and class "bee"), so the top-1 changes every ``block`` frames."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 255 if (i // block) % 2 else 0, np.uint8))
    writer.release()
    return path


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class Broker:
    """A real Mosquitto broker on 127.0.0.1:``port`` with its own config (no persistence), started and stopped by
    the test. ``extra`` lines are added to the config (e.g. a password file)."""

    def __init__(self, folder: Path, port: int | None = None, extra: str = ""):
        self.port = port or free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\npersistence false\nuser root\n"
                             f"{extra or 'allow_anonymous true'}\n")
        self.log = folder / "mosquitto.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 15.0) -> "Broker":
        import socket

        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=open(self.log, "a"),
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto exited: {self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"mosquitto did not listen on {self.port}: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


class Subscriber:
    """A paho-mqtt client that records every message (topic, payload text, retained flag) on ``topics``, and
    subscribes again after each reconnect.

    The constructor returns only once the broker has confirmed the subscription (SUBACK, paho's ``on_subscribe``):
    a message published after that reaches :attr:`messages`; one published between CONNACK and SUBACK would not.

    Raises:
        RuntimeError: no SUBACK within 10 s.
    """

    def __init__(self, port: int, topics=("#",)):
        import paho.mqtt.client as paho

        self.messages: list[tuple[str, str, bool]] = []
        self.connected = 0
        self.subscribed = 0  # SUBACKs received, one per (re)connect
        self._c = paho.Client(paho.CallbackAPIVersion.VERSION2)
        self._c.reconnect_delay_set(0.2, 0.5)

        def on_connect(client, userdata, flags, rc, props):
            client.subscribe([(t, 1) for t in topics])
            self.connected += 1

        def on_subscribe(client, userdata, mid, reason_codes, props):
            if all(not rc.is_failure for rc in reason_codes):
                self.subscribed += 1

        self._c.on_connect = on_connect
        self._c.on_subscribe = on_subscribe
        self._c.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload.decode(), bool(m.retain)))
        self._c.connect("127.0.0.1", port, 30)
        self._c.loop_start()
        deadline = time.monotonic() + 10
        while not self.subscribed and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.subscribed:
            self.close()
            raise RuntimeError(f"no SUBACK from the broker on port {port} for {list(topics)} within 10 s")

    def on(self, topic: str) -> list[tuple[str, bool]]:
        return [(p, r) for t, p, r in self.messages if t == topic]

    def close(self) -> None:
        self._c.disconnect()
        self._c.loop_stop()


def retained(port: int, topics, wait_s: float = 1.0) -> dict[str, str]:
    """The retained messages a new subscriber gets on ``topics`` (topic -> payload)."""
    sub = Subscriber(port, topics)
    time.sleep(wait_s)
    sub.close()
    return {t: p for t, p, r in sub.messages if r}
