"""Stopping and writing, with real signals sent to real processes (``os.kill``): SIGTERM and SIGHUP end a camera run
exactly as Ctrl-C does; train stopped by Ctrl-C / SIGTERM exits 130 / 143 and leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.service_helpers import ctrl_c_as_in_a_terminal

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "fashion_mnist" / "int8.tflite"


@pytest.fixture(scope="module")
def slideshow(tmp_path_factory) -> Path:
    import cv2

    folder = tmp_path_factory.mktemp("slides")
    for i in range(120):
        cv2.imwrite(str(folder / f"f{i:03d}.png"), np.random.default_rng(i).integers(0, 256, (48, 64, 3), np.uint8))
    return folder


def _start(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "edgecnn", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=kw.get("cwd"),
                            preexec_fn=ctrl_c_as_in_a_terminal)


def _wait_for(predicate, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the process to get going")


def _frames(records: list[dict]) -> list[dict]:
    """The per-frame records of a --log (event records, which have an "event" key, left out)."""
    return [r for r in records if "event" not in r]


def test_log_can_be_followed_while_the_camera_runs(tmp_path, slideshow):
    """A service's --log is there, in complete lines, while the camera runs (``tail -f``), and it grows."""
    log = tmp_path / "run.jsonl"
    p = _start(["camera", MODEL, "--source", slideshow, "--max-fps", "10", "--log", log, "--headless", "--json"])
    try:
        seen = []
        for want in (1, 4):  # first lines, then more of them: the file grows under its name as frames are done
            _wait_for(lambda: p.poll() is not None or (log.exists() and log.read_text().count("\n") >= want))
            text = log.read_text()
            assert p.poll() is None, p.communicate()
            complete = text[:text.rfind("\n") + 1]  # what tail -f has shown so far
            seen.append([json.loads(ln) for ln in complete.splitlines()])  # every line whole JSON
            assert len(seen[-1]) >= want
        assert seen[1][:len(seen[0])] == seen[0]
        assert [r["frame"] for r in seen[1] if "event" not in r] == list(range(len(_frames(seen[1]))))
        os.kill(p.pid, signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    records = [json.loads(ln) for ln in log.read_text().splitlines()]
    # every line written while it ran is still there; the frame being finished when SIGTERM landed may miss its line
    assert records[:len(seen[1])] == seen[1] and len(_frames(records)) >= len(_frames(seen[1]))
    assert 0 <= summary["frames"] - len(_frames(records)) <= 1, (out, err)
    assert sorted(q.name for q in tmp_path.iterdir()) == ["run.jsonl"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_stop_signal_ends_camera_like_ctrl_c(tmp_path, slideshow, sig):
    import cv2

    video, log = tmp_path / "run.mp4", tmp_path / "run.jsonl"
    p = _start(["camera", MODEL, "--source", slideshow, "--max-fps", "10", "--record", video, "--log", log,
                "--headless", "--json"])

    def logging():  # the log is written under its name as the run goes
        return (log.exists() and log.stat().st_size > 0) or p.poll() is not None

    _wait_for(logging)
    time.sleep(0.3)
    os.kill(p.pid, sig)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "Traceback" not in err
    summary = json.loads(out.strip().splitlines()[-1])
    name = "interrupted" if sig == signal.SIGINT else f"stopped by {signal.Signals(sig).name}"
    assert summary["ended"] == name and 0 < summary["frames"] < 120, (out, err)
    # A frame is recorded, counted and logged together or not at all (edgecnn.stop.StopHold): the counts agree.
    records = [json.loads(ln) for ln in log.read_text().splitlines()]  # every line complete JSON
    assert len([r for r in records if "event" not in r]) == summary["frames"], (out, err)
    left = sorted(q.name for q in tmp_path.iterdir())
    assert left == ["run.jsonl", "run.mp4"], (left, out, err)  # no hidden temporary (of the recording) left
    cap = cv2.VideoCapture(str(video))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == summary["frames"], (n, out, err)  # the recording was finalized with every frame


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_during_a_frame_waits_until_it_is_recorded_counted_and_logged(tmp_path, sig):
    """A real signal sent to this process while the loop records frame 3 (the moment that left the video one frame
    ahead of the summary and the log) ends the run after that frame is recorded, counted and logged."""
    import cv2

    from edgecnn.config import LoopOptions
    from edgecnn.loop import FrameLog, Recorder, Renderer, run_loop
    from edgecnn.stop import stop_signals
    from tests.test_camera import FakeClassifier, FakeSource

    class SignalWhileRecording(Renderer):
        def render(self, frame, top, fps, invoke_ms):
            quit_ = super().render(frame, top, fps, invoke_ms)
            if self.recorder.frames == 3:
                os.kill(os.getpid(), sig)
                time.sleep(0.2)  # without the hold, the stop is raised here, inside the frame's steps
            return quit_

    video, log = tmp_path / "run.avi", FrameLog(tmp_path / "run.jsonl")
    renderer = SignalWhileRecording(recorder=Recorder(video, 10))
    ctrl_c = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (see ctrl_c_as_in_a_terminal)
    try:
        with stop_signals():
            res = run_loop(FakeSource(n=100), FakeClassifier(), LoopOptions(), renderer=renderer, log=log)
    finally:
        signal.signal(signal.SIGINT, ctrl_c)
    renderer.close()
    log.close()
    assert res.ended == ("interrupted" if sig == signal.SIGINT else "stopped by SIGTERM")
    assert res.frames == 3
    assert len((tmp_path / "run.jsonl").read_text().splitlines()) == 3
    cap, n = cv2.VideoCapture(str(video)), 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 3


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_train_stopped_exits_128_plus_signal_and_leaves_nothing(tmp_path, sig, code):
    pytest.importorskip("tensorflow", reason="train needs TensorFlow (edgecnn[train])")
    from tests.test_data import make_folder

    data = make_folder(tmp_path / "data", per_class=8, bad_files=False)
    out = tmp_path / "run"
    p = _start(["train", data, "-o", out, "--epochs", "500", "--img-size", "16", "--batch-size", "4"])
    lines: list[str] = []

    def training_started():  # the parameter table is printed just before fitting starts
        line = p.stdout.readline()
        lines.append(line)
        return "params" in line.lower() or p.poll() is not None

    _wait_for(training_started, timeout=300)
    assert p.poll() is None, "".join(lines)
    time.sleep(1.0)
    os.kill(p.pid, sig)
    _, err = p.communicate(timeout=120)
    assert p.returncode == code, "".join(lines) + err
    assert "Traceback" not in err and f"Stopped by {signal.Signals(sig).name}" in err
    assert sorted(q.name for q in tmp_path.iterdir()) == ["data"]  # no run/, no hidden .run.partial-*


# ----------------------------------------------------------------------------------------------- a full disk
@pytest.fixture
def small_fs(tmp_path):
    """``small_fs(free_bytes)``: a real 2 MiB tmpfs (mounted as root) filled up to leave about ``free_bytes``."""
    mounts = []

    def make(free: int) -> Path:
        mnt = tmp_path / f"sd{len(mounts)}"
        mnt.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here (needs root): {r.stderr.strip() or r.returncode}")
        mounts.append(mnt)
        st = os.statvfs(mnt)
        (mnt / "filler").write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - free))
        return mnt

    yield make
    for mnt in mounts:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _camera(*args):
    from click.testing import CliRunner

    from edgecnn.cli import main

    return CliRunner().invoke(main, ["camera", str(MODEL), "--headless", "--json", *map(str, args)])


def test_recording_into_a_full_disk(small_fs, slideshow, tmp_path):
    sd = small_fs(600 * 1024)
    video, log = sd / "run.mp4", tmp_path / "run.jsonl"
    res = _camera("--source", slideshow, "--record", video, "--log", log)
    assert res.exit_code == 1 and res.exception is None or isinstance(res.exception, SystemExit)
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and str(video) in errors[0] and "space" in errors[0], res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])  # the summary of what was done
    assert summary["ended"] == "write failed" and 0 < summary["frames"] < 120
    assert sorted(q.name for q in sd.iterdir()) == ["filler"]  # no broken video, no temporary left
    frames = [json.loads(ln) for ln in log.read_text().splitlines()]  # the log on the other disk is complete
    assert len([f for f in frames if "event" not in f]) == summary["frames"]


def test_log_into_a_full_disk(small_fs, slideshow):
    sd = small_fs(8 * 1024)
    log = sd / "run.jsonl"
    res = _camera("--source", slideshow, "--log", log)
    assert res.exit_code == 1
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and str(log) in errors[0] and "No space left on device" in errors[0], res.stderr
    assert "Traceback" not in res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["ended"] == "write failed" and 0 < summary["frames"] < 120
    assert sorted(q.name for q in sd.iterdir()) == ["filler", "run.jsonl"]  # the log stays, with what it holds
    text = log.read_text()
    assert text.endswith("\n")  # cut back to the last complete line: no cut line under the name
    records = [json.loads(ln) for ln in text.splitlines()]  # every line whole JSON
    assert [r["frame"] for r in _frames(records)] == list(range(summary["frames"] - 1))  # all but the last frame's
    assert f"keeps the {len(records)} complete lines" in errors[0]


def test_histogram_into_a_full_disk(small_fs, tmp_path):
    from click.testing import CliRunner

    from edgecnn.cli import main

    pytest.importorskip("matplotlib", reason="--histogram needs matplotlib")
    sd = small_fs(0)
    png = sd / "h.png"
    res = CliRunner().invoke(main, ["bench", str(MODEL), "--runs", "5", "--histogram", str(png)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and str(png) in errors[0] and "No space left on device" in errors[0], res.stderr
    assert str(MODEL) in res.stdout  # the measured row is still reported
    assert sorted(q.name for q in sd.iterdir()) == ["filler"]


def _group_with(command_body):
    """An edgecnn command group holding one command ``work`` that runs ``command_body``."""
    import click

    from edgecnn.cli import EdgecnnGroup

    @click.group(cls=EdgecnnGroup)
    def grp():
        pass

    @grp.command()
    def work():
        command_body()

    return grp


def test_a_stop_that_native_code_turns_into_another_error_still_exits_143():
    """TensorFlow's SavedModel export, hit by SIGTERM, swallowed the Stopped raised in it and failed with
    ``SystemError: bad argument to internal function``: that must end as a stop, not as a traceback."""
    from click.testing import CliRunner

    def body():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises Stopped here
        except KeyboardInterrupt:
            raise SystemError("Objects/listobject.c:338: bad argument to internal function") from None

    r = CliRunner().invoke(_group_with(body), ["work"])
    assert r.exit_code == 143, r.output
    assert "Stopped by SIGTERM before finishing" in r.output
    assert "Traceback" not in r.output


def test_an_error_without_a_stop_is_not_taken_for_one():
    from click.testing import CliRunner

    def body():
        raise SystemError("a real bug")

    r = CliRunner().invoke(_group_with(body), ["work"])
    assert r.exit_code == 1
    assert isinstance(r.exception, SystemError)
    assert "Stopped" not in r.output
