"""``--exec CMD``: run a command once per event, with the event in environment variables.

The command line is the user's own text, split once like a POSIX shell would (``shlex.split``) and run without a
shell; labels never become part of it, they reach the command only as environment variables:

    EDGECNN_LABEL, EDGECNN_INDEX, EDGECNN_SCORE, EDGECNN_FRAME, EDGECNN_T (Unix seconds), EDGECNN_PREVIOUS,
    EDGECNN_EVENT (the whole event as JSON)

At most one command runs at a time, in a background thread (the camera loop never waits for it); an event that
arrives while one runs waits as the single pending one, and a newer event replaces it (counted in ``skipped``). A
command still running after the timeout is killed. The command's output goes to edgecnn's stderr.

Imports the standard library only.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import threading

from edgecnn.config import DEFAULT_EXEC_TIMEOUT_S, EXEC_ENV_PREFIX


def event_environment(event: dict, base: dict | None = None) -> dict[str, str]:
    """The environment of an event's command: ``base`` (default: this process's) plus the EDGECNN_* variables.

    Args:
        event: :meth:`edgecnn.events.Event.to_dict` output.
    """
    env = dict(os.environ if base is None else base)
    for key in ("label", "index", "score", "frame", "t", "previous"):
        value = event.get(key)
        env[EXEC_ENV_PREFIX + key.upper()] = "" if value is None else str(value)
    env[EXEC_ENV_PREFIX + "EVENT"] = json.dumps(event, separators=(",", ":"))
    return env


def split_command(command: str) -> list[str]:
    """Split ``command`` into argv (``shlex.split``) and check that its program exists.

    Raises:
        ValueError: empty, unbalanced quotes, or the program is not found (on PATH, or as a path).
    """
    try:
        argv = shlex.split(command)
    except ValueError as e:
        raise ValueError(f"{command!r}: cannot split into a command line ({e})") from None
    if not argv:
        raise ValueError("the command is empty")
    if shutil.which(argv[0]) is None:
        raise ValueError(f"{argv[0]!r}: no such program (expected an executable file or a command on PATH)")
    return argv


class ExecHook:
    """Runs ``command`` for each submitted event, one at a time, in a background thread.

    Args:
        command: the command line (see the module docstring).
        timeout_s: seconds before a running command is killed.
        on_problem: called with one line of text when a command fails, times out or cannot start (from the
            background thread); None = stay silent (the counters still count).
    Attributes:
        runs, failed (non-zero exit or could not start), timeouts, skipped (replaced while pending): counts.
    Raises:
        ValueError: see :func:`split_command`.
    """

    def __init__(self, command: str, timeout_s: float = DEFAULT_EXEC_TIMEOUT_S, on_problem=None):
        self.argv = split_command(command)
        self.timeout_s = timeout_s
        self.on_problem = on_problem
        self.runs = self.failed = self.timeouts = self.skipped = 0
        self._pending: dict | None = None
        self._closing = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._work, name="edgecnn-exec", daemon=True)
        self._thread.start()

    def submit(self, event: dict) -> None:
        """Queue an event (:meth:`edgecnn.events.Event.to_dict`); returns at once."""
        with self._cond:
            if self._pending is not None:
                self.skipped += 1
            self._pending = event
            self._cond.notify()

    def _work(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closing:
                    self._cond.wait()
                if self._pending is None:
                    return
                event, self._pending = self._pending, None
            self._run(event)

    def _run(self, event: dict) -> None:
        self.runs += 1
        try:
            done = subprocess.run(self.argv, env=event_environment(event), stdin=subprocess.DEVNULL, stdout=2,
                                  timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired:
            self.timeouts += 1
            self._problem(f"{self.argv[0]}: killed after {self.timeout_s:g} s (event {event.get('label')!r})")
            return
        except OSError as e:
            self.failed += 1
            self._problem(f"{self.argv[0]}: cannot run ({e.strerror or e})")
            return
        if done.returncode != 0:
            self.failed += 1
            self._problem(f"{self.argv[0]}: exit code {done.returncode} (event {event.get('label')!r})")

    def _problem(self, text: str) -> None:
        if self.on_problem is not None:
            self.on_problem(text)

    def counts(self) -> dict:
        """``{"runs", "failed", "timeouts", "skipped"}``."""
        return {"runs": self.runs, "failed": self.failed, "timeouts": self.timeouts, "skipped": self.skipped}

    def close(self) -> None:
        """Run the pending event, if any, then stop (waits at most about two timeouts)."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout=2 * self.timeout_s + 1)
