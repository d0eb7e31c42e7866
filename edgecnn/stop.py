"""Stop signals: SIGTERM and SIGHUP end a command exactly as Ctrl-C does.

``systemctl stop``, ``kill PID`` and a container stop send SIGTERM; closing the terminal sends SIGHUP. Python turns
only SIGINT (Ctrl-C) into an exception (``KeyboardInterrupt``); the others kill the process without running any
``finally`` block, which left a camera recording as a hidden temporary file. :func:`stop_signals` raises
:class:`Stopped`, a ``KeyboardInterrupt``, for them, so every path that handles Ctrl-C (the camera loop ending with
its summary, the workstation commands removing their temporary outputs) handles them the same way.

Exit codes follow the shell convention 128 + signal number: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP.
"""

from __future__ import annotations

import contextlib
import signal
import threading

#: Signals turned into :class:`Stopped` (those that exist on this platform).
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))


class Stopped(KeyboardInterrupt):
    """A stop signal received (``signum``, ``name`` e.g. "SIGTERM"); handled wherever Ctrl-C is."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)
        self.name = signal.Signals(signum).name


def signal_name(e: KeyboardInterrupt) -> str:
    """"SIGTERM"/"SIGHUP" for a :class:`Stopped`, "SIGINT" (Ctrl-C) for any other KeyboardInterrupt."""
    return e.name if isinstance(e, Stopped) else "SIGINT"


def exit_code(e: KeyboardInterrupt) -> int:
    """128 + the signal number: 130 for Ctrl-C (SIGINT), 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + (e.signum if isinstance(e, Stopped) else int(signal.SIGINT))


@contextlib.contextmanager
def stop_signals():
    """For the duration, SIGTERM and SIGHUP raise :class:`Stopped` in the main thread. Only the first one raises:
    a repeated signal while the command is already finishing (closing a recording, removing temporary files) is
    ignored, so cleanup completes. Outside the main thread (where handlers cannot be set) nothing changes.

    Yields the list of signal numbers received (empty, or the first one). Native code can swallow the
    :class:`Stopped` raised inside it and fail with another exception instead (TensorFlow's SavedModel export
    raised ``SystemError: bad argument to internal function``); :func:`stopped_by` tells a caller that such an
    error came from a stop."""
    stopping: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield stopping
        return

    def handler(signum, frame):
        if not stopping:
            stopping.append(signum)
            raise Stopped(signum)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield stopping
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class StopHold:
    """Ctrl-C (SIGINT), SIGTERM and SIGHUP held back during ``with hold:`` blocks, then acted on as before.

    For steps that must happen together or not at all, such as the camera loop recording a frame, counting it and
    logging it: a stop landing between two of them left the video one frame ahead of the summary and the log.
    :meth:`install` puts this object's handler in front of the current ones (Python's ``KeyboardInterrupt`` for
    Ctrl-C, :func:`stop_signals`' :class:`Stopped`); outside a ``with hold:`` block it hands each signal straight
    on, inside one it notes the first and hands it on as the block ends, so the exception is raised there and not
    between two of the steps. Entering and leaving a block only flips a flag (handlers are process-wide and OS
    signal masks are per thread, so a mask would not hold a signal the kernel gives to another thread). Keep the
    blocks short: a second Ctrl-C cannot cut one either. Only the main thread can set handlers: elsewhere
    :meth:`install` does nothing and the blocks hold nothing.
    """

    def __init__(self) -> None:
        self._previous: dict[int, object] = {}
        self._holding = False
        self._pending: list[tuple[int, object]] = []

    def install(self) -> None:
        """Put the holding handler in front of the current handlers of SIGINT, SIGTERM and SIGHUP (a signal whose
        handler was set outside Python, which Python could not put back, is left alone)."""
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, *STOP_SIGNALS):
                if signal.getsignal(s) is not None:
                    self._previous[s] = signal.signal(s, self._handler)

    def uninstall(self) -> None:
        """Give the signals back to the handlers :meth:`install` found."""
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous.clear()

    def _handler(self, signum, frame) -> None:
        if self._holding:
            if not self._pending:
                self._pending.append((signum, frame))
            return
        self._hand_on(signum, frame)

    def _hand_on(self, signum: int, frame) -> None:
        previous = self._previous.get(signum, signal.SIG_DFL)
        if callable(previous):
            previous(signum, frame)  # raises KeyboardInterrupt / Stopped
        elif previous == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    def __enter__(self) -> StopHold:
        self._holding = True
        return self

    def __exit__(self, *exc) -> None:
        self._holding = False
        if self._pending:
            signum, frame = self._pending.pop()
            self._hand_on(signum, frame)


def stopped_by(received: list[int]) -> Stopped | None:
    """The :class:`Stopped` for the first stop signal in ``received`` (from :func:`stop_signals`), or None."""
    return Stopped(received[0]) if received else None
