"""The one output writer (edgecnn.outputs): complete-or-nothing files and folders, umask permissions, the
overwrite rules, and that no other module renames temporary files itself."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from edgecnn import outputs
from edgecnn.errors import OutputExistsError, WriteError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_write_replaces_only_with_a_complete_file(tmp_path, umask_027):
    target = tmp_path / "report.json"
    outputs.write_text(target, "new\n")
    assert target.read_text() == "new\n" and _mode(target) == 0o640  # 0666 & ~027, not mkstemp's 0600
    with pytest.raises(RuntimeError):
        with outputs.open_output(target, "w") as f:
            f.write("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]  # temporary file deleted


def test_pending_path_keeps_the_suffix_and_is_hidden_until_commit(tmp_path):
    target = tmp_path / "clip.mp4"
    with outputs.pending_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".clip.") and tmp.name.endswith(".partial.mp4")
        tmp.write_bytes(b"video")
        assert not target.exists()
    assert target.read_bytes() == b"video" and not tmp.exists()


def test_pending_file_commit_and_discard(tmp_path):
    keep = outputs.PendingFile(tmp_path / "log.jsonl")
    keep.tmp.write_text("a\n")
    keep.commit()
    keep.commit()  # a second call changes nothing
    drop = outputs.PendingFile(tmp_path / "other.jsonl")
    drop.discard()
    assert [p.name for p in tmp_path.iterdir()] == ["log.jsonl"]


def test_pending_files_appear_together_or_not_at_all(tmp_path):
    (tmp_path / "m.tflite").write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with outputs.pending_files() as files:
            files.path(tmp_path / "m.tflite").write_bytes(b"new")
            files.path(tmp_path / "m_report.json").write_text("{}")
            raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["m.tflite"] and (tmp_path / "m.tflite").read_bytes() == b"old"
    with outputs.pending_files() as files:
        files.path(tmp_path / "m.tflite").write_bytes(b"new")
        files.path(tmp_path / "m_report.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tflite", "m_report.json"]


def test_pending_dir_replaces_a_folder_only_when_done(tmp_path, umask_027):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(ValueError):
        with outputs.pending_dir(out) as tmp:
            (tmp / "model.keras").write_bytes(b"half")
            raise ValueError("training failed")
    assert [p.name for p in out.iterdir()] == ["old.txt"] and [p.name for p in tmp_path.iterdir()] == ["run"]
    with outputs.pending_dir(out) as tmp:
        (tmp / "model.keras").write_bytes(b"done")
    assert [p.name for p in out.iterdir()] == ["model.keras"] and _mode(out) == 0o750
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_overwrite_rules(tmp_path):
    f = tmp_path / "a.png"
    outputs.refuse_existing(f, overwrite=False)  # missing: fine
    f.write_bytes(b"x")
    with pytest.raises(OutputExistsError, match="a.png exists; pass --overwrite"):
        outputs.refuse_existing(f, overwrite=False)
    outputs.refuse_existing(f, overwrite=True)
    d = tmp_path / "run"
    outputs.refuse_nonempty_dir(d, force=False)
    d.mkdir()
    outputs.refuse_nonempty_dir(d, force=False)  # empty: fine
    (d / "x").write_text("x")
    with pytest.raises(OutputExistsError, match="not empty; use --force"):
        outputs.refuse_nonempty_dir(d, force=False)
    outputs.refuse_nonempty_dir(d, force=True)
    with pytest.raises(OutputExistsError, match="not a folder"):
        outputs.refuse_nonempty_dir(f, force=True)


def test_temporary_file_and_rename_live_only_in_outputs():
    """mkstemp/mkdtemp + os.replace/os.rename is the pattern; only edgecnn/outputs.py may spell it."""
    pattern = re.compile(r"\b(mkstemp|mkdtemp|os\.replace|os\.rename|\.rename\()")
    files = sorted((REPO / "edgecnn").rglob("*.py")) + sorted((REPO / "tools").glob("*.py"))
    offenders = [f"{p.relative_to(REPO)}:{i}" for p in files if p.name != "outputs.py"
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def test_line_appender_writes_under_the_name_and_cuts_a_failed_line(tmp_path):
    import errno

    log = tmp_path / "run.jsonl"
    out = outputs.LineAppender(log)
    out.write_line('{"frame":0}')
    assert log.read_text() == '{"frame":0}\n'  # readable under its name at once, before close
    real = out._f

    class HalfThenFull:  # the disk fills in the middle of a line: part of it is written, then ENOSPC
        def __init__(self):
            self.calls = 0

        def write(self, data):
            self.calls += 1
            if self.calls == 1:
                return real.write(data[:5])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(real, name)

    out._f = HalfThenFull()
    with pytest.raises(WriteError, match=r"run.jsonl: cannot write \(No space left on device\); it keeps the 1 "):
        out.write_line('{"frame":1}')
    assert log.read_text() == '{"frame":0}\n'  # the cut line is gone
    with pytest.raises(WriteError):
        out.write_line('{"frame":2}')  # later lines fail the same way
    out.close()
    assert log.read_text() == '{"frame":0}\n' and oct(log.stat().st_mode & 0o777) == oct(outputs.file_mode())
    with pytest.raises(ValueError, match="newline"):
        outputs.LineAppender(tmp_path / "other.jsonl").write_line("a\nb")
