"""THE output writer: every file and folder edgecnn writes (models, reports, plots, labels, logs, recordings, the
training OUTDIR) goes through here.

One rule for all of them: the content is written to a temporary file (or folder) in the same folder as the target,
named ``.<name>.<random>.partial<suffix>`` (hidden, and keeping the target's suffix so that writers that pick a
format by suffix, OpenCV's VideoWriter and matplotlib's savefig, still do), and renamed onto the target only when
writing succeeded (``os.replace``: atomic on one file system). On an exception the temporary file is deleted, so a
failure, Ctrl-C or a full disk never leaves a half-written file under the target's name, and an existing file is
replaced only by a complete one. Permissions are those ``open()`` would give a new file: ``0o666 & ~umask`` for
files, ``0o777 & ~umask`` for folders (``mkstemp`` and ``mkdtemp`` make them ``0o600``/``0o700``).

The refuse-to-overwrite rule lives here too: :func:`refuse_existing` for files (``--overwrite``) and
:func:`refuse_nonempty_dir` for output folders (``--force``).

Ways to write:

* :func:`write_bytes`, :func:`write_text`: a whole file at once.
* :func:`pending_path`: a context manager yielding a temporary path for a writer that needs a path (savefig,
  ``keras.Model.save``); committed on a clean exit.
* :func:`open_output`: a context manager yielding an open file; committed on a clean exit.
* :class:`PendingFile`: the same for writers whose life is not one ``with`` block (the camera loop's ``--log``
  and ``--record``): :meth:`PendingFile.commit` or :meth:`PendingFile.discard` when done.
* :func:`pending_files`: several files that appear together or not at all (``edgecnn quantize``).
* :func:`pending_dir`: a whole folder (``edgecnn train``'s OUTDIR).

The one exception to the temporary-file rule is a log a running service appends to (the camera's ``--log``):
:class:`LineAppender` writes it under its final name as it goes, so it can be followed (``tail -f``) and a power
loss keeps what was written. It appends whole lines only, and after a failed write it cuts the file back to the end
of the last complete line, so no cut line is left under the name.

Imports only the standard library.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterator

from edgecnn.errors import OutputExistsError, WriteError

#: Marks a temporary output in its name, before the target's suffix.
PARTIAL = ".partial"


def current_umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a new output file: what ``open()`` gives, ``0o666 & ~umask``."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """Mode of a new output folder: what ``mkdir()`` gives, ``0o777 & ~umask``."""
    return 0o777 & ~current_umask()


def refuse_existing(path: str | Path, overwrite: bool, flag: str = "--overwrite") -> None:
    """The overwrite rule for files: an existing ``path`` is replaced only when ``overwrite`` is given.

    Raises:
        OutputExistsError: ``path`` exists (file, folder or anything else) and not ``overwrite``; the message names
            the path and ``flag``.
    """
    p = Path(path)
    if not overwrite and (p.exists() or p.is_symlink()):
        raise OutputExistsError(f"{p} exists; pass {flag} to replace it")


def refuse_nonempty_dir(path: str | Path, force: bool, flag: str = "--force") -> None:
    """The overwrite rule for output folders: a new or empty folder is fine; a non-empty one only with ``force``.

    Raises:
        OutputExistsError: ``path`` exists and is not a folder (even with ``force``), or is a non-empty folder and
            not ``force``.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputExistsError(f"{p}: exists and is not a folder, expected a new or empty output folder")
    if p.is_dir() and any(p.iterdir()) and not force:
        raise OutputExistsError(f"{p}: folder is not empty; use {flag} to replace its contents")


class PendingFile:
    """A temporary file beside ``path`` that becomes ``path`` on :meth:`commit`.

    The file is created (empty, mode :func:`file_mode`) when the object is made; ``tmp`` is its path, to be written
    by any writer. Exactly one of :meth:`commit` and :meth:`discard` ends it; both may be called again harmlessly.

    Args:
        path: the target.
    Raises:
        OSError: the temporary file cannot be created (no such folder, no permission).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        fd, name = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=PARTIAL + self.path.suffix,
                                    dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(name)
        self.done = False
        try:
            os.chmod(self.tmp, file_mode())
        except BaseException:
            self.discard()
            raise

    def commit(self) -> None:
        """Rename the temporary file onto the target (replacing it)."""
        if not self.done:
            os.replace(self.tmp, self.path)
            self.done = True

    def discard(self) -> None:
        """Delete the temporary file; the target is left as it was."""
        if not self.done:
            self.tmp.unlink(missing_ok=True)
            self.done = True


@contextlib.contextmanager
def pending_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit it becomes ``path``, on an exception it is deleted.

    Raises:
        WriteError: writing, or renaming, fails (an OSError inside the block: disk full, permissions).
        OSError: the temporary file cannot be created.
    """
    pending = PendingFile(path)
    try:
        yield pending.tmp
    except OSError as e:
        pending.discard()
        raise write_error(path, e) from None
    except BaseException:
        pending.discard()
        raise
    try:
        pending.commit()
    except OSError as e:
        raise write_error(path, e) from None
    finally:
        pending.discard()


def write_error(path: str | Path, e: OSError) -> WriteError:
    """The one-line error for a failed write of ``path``: the final name (never the temporary one) and the reason
    (``No space left on device``, ...)."""
    return WriteError(f"{path}: cannot write ({e.strerror or e}); nothing was written under that name")


@contextlib.contextmanager
def open_output(path: str | Path, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Yield ``open(temporary, mode, **kwargs)``; closed, then renamed onto ``path`` on a clean exit, deleted on an
    exception. ``mode`` is a write mode ("w", "wb", ...)."""
    with pending_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file (see the module docstring). Raises OSError."""
    with open_output(path, "wb") as f:
        f.write(data)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file (see the module docstring). Raises OSError."""
    with open_output(path, "w", encoding="utf-8") as f:
        f.write(text)


class PendingFiles:
    """Several outputs written side by side and renamed into place together (see :func:`pending_files`)."""

    def __init__(self):
        self._files: list[PendingFile] = []

    def path(self, target: str | Path) -> Path:
        """A temporary path for ``target``, renamed onto it when the group commits."""
        pending = PendingFile(target)
        self._files.append(pending)
        return pending.tmp

    def commit(self) -> None:
        """Rename every temporary file onto its target, in the order they were asked for."""
        for pending in self._files:
            pending.commit()

    def discard(self) -> None:
        """Delete every temporary file not yet renamed."""
        for pending in self._files:
            pending.discard()


@contextlib.contextmanager
def pending_files() -> Iterator[PendingFiles]:
    """Yield a :class:`PendingFiles`; on a clean exit every file is renamed into place, on an exception (or a failed
    rename) every one not yet renamed is deleted. A run that fails before the end leaves none of the targets
    touched."""
    group = PendingFiles()
    try:
        yield group
        group.commit()
    except OSError as e:
        raise write_error(", ".join(str(p.path) for p in group._files) or "output", e) from None
    finally:
        group.discard()


@contextlib.contextmanager
def pending_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path`` (mode :func:`dir_mode`); on a clean exit it replaces ``path`` (an
    old ``path`` is moved aside first and deleted only after the new one is in place), on an exception it is
    deleted with its contents. The parent folder is created when missing.

    Raises:
        OSError: the folder cannot be created or renamed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=PARTIAL, dir=path.parent))
    try:
        os.chmod(tmp, dir_mode())
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        raise write_error(path, e) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


class LineAppender:
    """Append complete lines to ``path`` under its final name, each one written out at once (no buffering in this
    process: a reader such as ``tail -f`` sees every line as soon as :meth:`write_line` returns; no fsync, so a
    power loss may lose the last lines the kernel had not yet stored).

    ``path`` is created, or emptied when it exists (the caller applies :func:`refuse_existing` first), with mode
    :func:`file_mode`. A failed write (disk full, ...) or an exception in the middle of one truncates the file back
    to the end of the last complete line, and every later :meth:`write_line` raises the same error.

    Args:
        path: the log file.
    Raises:
        OSError: the file cannot be created (no such folder, no permission).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.lines = 0
        self._f = open(self.path, "wb", buffering=0)
        self._end = 0  # bytes up to the end of the last complete line
        self._error: WriteError | None = None

    def write_line(self, text: str) -> None:
        """Append ``text`` (UTF-8, without its newline; must not contain one) and a newline.

        Raises:
            WriteError: the line cannot be written; the message names the file, the reason and the complete lines
                it keeps.
            ValueError: ``text`` contains a newline, or the appender is closed.
        """
        if "\n" in text:
            raise ValueError("a line must not contain a newline")
        if self._error is not None:
            raise self._error
        data = (text + "\n").encode("utf-8")
        try:
            view = memoryview(data)
            while view:
                view = view[self._f.write(view):]
        except OSError as e:
            self._cut()
            self._error = WriteError(f"{self.path}: cannot write ({e.strerror or e}); it keeps the {self.lines} "
                                     f"complete lines written before")
            raise self._error from None
        except BaseException:  # Ctrl-C in the middle of a line
            self._cut()
            raise
        self._end += len(data)
        self.lines += 1

    def _cut(self) -> None:
        """Truncate the file to the end of the last complete line (ftruncate also works on a full disk)."""
        try:
            self._f.truncate(self._end)
        except OSError:
            pass

    def close(self) -> None:
        """Close the file (idempotent). A line cut by an interruption is truncated away first."""
        if self._f.closed:
            return
        try:
            if self._f.seek(0, os.SEEK_END) != self._end:
                self._cut()
        except OSError:
            pass
        self._f.close()
