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
