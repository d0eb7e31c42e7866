"""Smoothing, events, --exec, --rotate/--roi and --print-systemd-unit: the pure rules on hand-made sequences, and
the camera command end to end on a tiny model with a real command run per event."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.cli import main
from edgecnn.config import EventOptions
from edgecnn.events import EventDetector, ScoreSmoother, SmoothedClassifier
from edgecnn.exechook import ExecHook
from edgecnn.geometry import Roi, rotate
from edgecnn.runtime import Prediction
from edgecnn.systemd import quote_arg, service_args, unit_file


def _top(label, score=0.9, index=None):
    return [Prediction({"ant": 0, "bee": 1, "cat": 2}.get(label, 9) if index is None else index, label, score)]


def _run(detector, labels, scores=None):
    out = []
    for i, lab in enumerate(labels):
        top = [] if lab is None else _top(lab, 0.9 if scores is None else scores[i])
        e = detector.update(top, i, 1000.0 + i)
        if e is not None:
            out.append((e.label, e.frame, e.previous))
    return out


# ----------------------------------------------------------------------------------------------- pure rules
def test_smoother_is_the_mean_of_the_last_n_vectors():
    rng = np.random.default_rng(0)
    vs = rng.random((12, 5)).astype(np.float32)
    s = ScoreSmoother(4)
    for i, v in enumerate(vs):
        got = s.push(v)
        np.testing.assert_allclose(got, vs[max(0, i - 3):i + 1].mean(axis=0), rtol=1e-6)
    assert ScoreSmoother(1).push(vs[0]) is not None and np.array_equal(ScoreSmoother(1).push(vs[0]), vs[0])
    with pytest.raises(ValueError, match="3 entries, earlier ones had 5"):
        s.push(np.zeros(3))
    with pytest.raises(ValueError, match=">= 1"):
        ScoreSmoother(0)


def test_events_when_the_top1_changes_and_holds():
    seq = ["ant", "ant", "bee", "ant", "bee", "bee", "bee", "bee", "cat", "cat", "cat"]
    assert _run(EventDetector(EventOptions(hold=1)), seq) == [
        ("ant", 0, None), ("bee", 2, "ant"), ("ant", 3, "bee"), ("bee", 4, "ant"), ("cat", 8, "bee")]
    # hold 3: the one-frame flickers are no events; the change is reported on the frame that completes the hold
    assert _run(EventDetector(EventOptions(hold=3)), seq) == [("bee", 6, None), ("cat", 10, "bee")]


def test_below_threshold_is_nothing_and_a_class_that_comes_back_is_a_new_event():
    seq = ["ant", "ant", "ant", "ant", "ant", "ant"]
    scores = [0.9, 0.9, 0.3, 0.3, 0.9, 0.9]
    assert _run(EventDetector(EventOptions(hold=2, threshold=0.5)), seq, scores) == [
        ("ant", 1, None), ("ant", 5, None)]
    # an empty top (nothing above the loop's threshold) is "nothing" too
    assert _run(EventDetector(EventOptions(hold=1)), ["ant", None, "ant"]) == [("ant", 0, None), ("ant", 2, None)]
    # a dip shorter than the hold changes nothing
    assert _run(EventDetector(EventOptions(hold=3, threshold=0.5)), seq, [0.9, 0.9, 0.9, 0.3, 0.9, 0.9]) == [
        ("ant", 2, None)]


def test_only_limits_events_but_other_classes_still_change_the_state():
    seq = ["bee", "bee", "ant", "ant", "bee", "bee", "cat", "cat", "bee", "bee"]
    assert _run(EventDetector(EventOptions(hold=2, only=frozenset({"bee"}))), seq) == [
        ("bee", 1, None), ("bee", 5, "ant"), ("bee", 9, "cat")]
    assert [e[0] for e in _run(EventDetector(EventOptions(hold=2, only=frozenset({"2"}))), seq)] == ["cat"]


def test_event_record_has_the_documented_keys():
    e = EventDetector().update(_top("bee", 0.71234567), 7, 1_700_000_000.5)
    assert e.to_dict() == {"event": "change", "label": "bee", "index": 1, "score": 0.712346, "frame": 7,
                           "t": 1_700_000_000.5, "previous": None}
    # a model without labels: the output index is the label
    e = EventDetector().update([Prediction(4, None, 0.5)], 0, 1.0)
    assert e.label == "4" and e.index == 4


class ScoresClassifier:
    """Stand-in for runtime.Classifier's scores/rank: the raw output is the score vector."""

    labels = ["ant", "bee", "cat"]

    def scores(self, raw):
        return np.asarray(raw, np.float32)

    def rank(self, scores, k, threshold):
        order = np.argsort(-scores, kind="stable")[:k]
        return [Prediction(int(i), self.labels[i], float(scores[i])) for i in order if scores[i] >= threshold]


def test_smoothing_removes_a_flicker_the_raw_ranking_shows():
    # ant wins every frame but every third, where bee spikes: raw top-1 flickers, the 3-frame mean does not
    raws = [[0.6, 0.4, 0.0] if i % 3 else [0.3, 0.7, 0.0] for i in range(12)]
    raw_top1 = [ScoresClassifier().rank(np.array(r), 1, 0)[0].label for r in raws]
    smooth = SmoothedClassifier(ScoresClassifier(), 3)
    smooth_top1 = [smooth.postprocess(np.array(r), 1, 0.0)[0].label for r in raws]
    assert "bee" in raw_top1[2:]
    assert smooth_top1[2:] == ["ant"] * 10
    assert smooth.labels == ScoresClassifier.labels  # other attributes are the wrapped classifier's


def test_rotation_and_roi():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert np.array_equal(rotate(img, 90), np.rot90(img, -1))
    assert np.array_equal(rotate(img, 270), np.rot90(img, 1))
    assert np.array_equal(rotate(img, 180), img[::-1, ::-1])
    assert rotate(img, 0) is img
    roi = Roi.parse("1,0,2,2")
    assert np.array_equal(roi.crop(img), img[0:2, 1:3])
    with pytest.raises(ValueError, match="does not fit in a 3x2 frame"):
        Roi.parse("2,0,2,2").crop(img)
    for bad in ("1,2,3", "a,b,c,d", "-1,0,2,2", "0,0,0,5"):
        with pytest.raises(ValueError):
            Roi.parse(bad)


# ----------------------------------------------------------------------------------------------- --exec
def _env_logger(tmp_path, sleep_s=0.0):
    """A real program that appends its EDGECNN_* environment (and start/end times) to a JSON-lines file."""
    script = tmp_path / "hook.py"
    out = tmp_path / "hook.jsonl"
    script.write_text(
        "import json, os, sys, time\n"
        "t0 = time.time()\n"
        f"time.sleep({sleep_s})\n"
        "env = {k: v for k, v in os.environ.items() if k.startswith('EDGECNN_')}\n"
        f"open({str(out)!r}, 'a').write(json.dumps({{'env': env, 'start': t0, 'end': time.time()}}) + '\\n')\n")
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}", out


def _records(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()] if Path(path).exists() else []


def test_exec_runs_one_at_a_time_with_the_event_in_the_environment(tmp_path):
    cmd, out = _env_logger(tmp_path, sleep_s=0.3)
    hook = ExecHook(cmd, timeout_s=5)
    hostile = "$(touch pwned); rm -rf x"
    events = [{"event": "change", "label": lab, "index": i, "score": 0.5, "frame": i, "t": 1.0, "previous": None}
              for i, lab in enumerate([hostile, "bee", "cat", "ant"])]
    t0 = time.perf_counter()
    hook.submit(events[0])
    while hook.runs == 0 and time.perf_counter() - t0 < 5:
        time.sleep(0.01)
    for e in events[1:]:
        hook.submit(e)
    assert time.perf_counter() - t0 < 0.25  # submitting never waits for the command
    hook.close()
    runs = _records(out)
    # the first runs; while it runs, later events replace each other as the single pending one
    assert [r["env"]["EDGECNN_LABEL"] for r in runs] == [hostile, "ant"]
    assert hook.counts() == {"runs": 2, "failed": 0, "timeouts": 0, "skipped": 2}
    assert runs[0]["end"] <= runs[1]["start"]  # never two at once
    assert json.loads(runs[1]["env"]["EDGECNN_EVENT"]) == events[3]
    assert runs[1]["env"]["EDGECNN_INDEX"] == "3" and runs[1]["env"]["EDGECNN_PREVIOUS"] == ""
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_exec_timeout_and_failure_are_counted_and_reported(tmp_path):
    problems = []
    slow = ExecHook(f"{shlex.quote(sys.executable)} -c 'import time; time.sleep(30)'", 0.3, problems.append)
    slow.submit({"label": "ant"})
    slow.close()
    assert slow.timeouts == 1 and "killed after 0.3 s" in problems[0]
    bad = ExecHook(f"{shlex.quote(sys.executable)} -c 'raise SystemExit(3)'", 5, problems.append)
    bad.submit({"label": "ant"})
    bad.close()
    assert bad.failed == 1 and "exit code 3" in problems[1]
    for cmd, words in [("", "empty"), ("no-such-program-xyz --x", "no such program"), ("'unbalanced", "cannot split")]:
        with pytest.raises(ValueError, match=words):
            ExecHook(cmd)


# ----------------------------------------------------------------------------------------------- the command
def _slideshow(tmp_path, colours):
    import cv2

    d = tmp_path / "frames"
    d.mkdir()
    for i, c in enumerate(colours):
        img = np.zeros((48, 64, 3), np.uint8)
        img[:] = c
        cv2.imwrite(str(d / f"f{i:03d}.png"), img)
    return d


def test_camera_events_go_to_the_log_and_the_command(tiny_models, tmp_path):
    """Events in the --log and the runs of --exec agree with the rule applied to the per-frame log records."""
    black, white = (0, 0, 0), (255, 255, 255)
    frames = _slideshow(tmp_path, [black] * 3 + [white] + [black] + [white] * 4 + [black] * 3)
    cmd, out = _env_logger(tmp_path)
    log = tmp_path / "run.jsonl"
    r = CliRunner().invoke(main, ["camera", str(tiny_models["int8"]), "--source", str(frames), "--headless",
                                  "--log", str(log), "--hold", "3", "--exec", cmd, "--json"])
    assert r.exit_code == 0, r.output
    recs = [json.loads(line) for line in log.read_text().splitlines()]
    frame_top1 = [rec["top"][0]["label"] for rec in recs if "event" not in rec]
    events = [rec for rec in recs if "event" in rec]
    # the rule, applied independently to the per-frame records: a new top-1 that holds 3 frames
    expected, run, state = [], 0, None
    for i, lab in enumerate(frame_top1):
        run = run + 1 if i and lab == frame_top1[i - 1] else 1
        if run == 3 and lab != state:
            expected.append((lab, i))
            state = lab
    assert len(set(frame_top1)) == 2 and len(expected) == 3
    assert [(e["label"], e["frame"]) for e in events] == expected
    assert all(abs(e["t"] - time.time()) < 60 for e in events)  # Unix seconds
    # the command saw the same events, in order (each ran before the next event came, or as the pending one)
    ran = [json.loads(rec["env"]["EDGECNN_EVENT"]) for rec in _records(out)]
    assert ran and all(e in events for e in ran) and ran[-1] == events[-1]
    summary = json.loads(r.stdout)
    assert summary["service"]["events"] == 3 and summary["service"]["last_event"] == events[-1]
    assert summary["service"]["exec"]["runs"] == len(ran)


def test_camera_roi_classifies_the_region_and_rotate_turns_the_frame(tiny_models, tmp_path):
    import cv2

    img = np.zeros((40, 60, 3), np.uint8)
    img[5:25, 30:50] = (255, 255, 255)  # white patch, bee; the rest black
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "a.png"), img)
    log = tmp_path / "roi.jsonl"
    r = CliRunner().invoke(main, ["camera", str(tiny_models["int8"]), "--source", str(frames), "--headless",
                                  "--log", str(log), "--roi", "30,5,20,20", "-k", "3"])
    assert r.exit_code == 0, r.output
    c = CliRunner().invoke(main, ["classify", str(tiny_models["int8"]), "--json", "-k", "3",
                                  str(_write(tmp_path / "patch.png", img[5:25, 30:50]))])
    assert json.loads(log.read_text().splitlines()[0])["top"] == json.loads(c.stdout)["top"]
    # after --rotate 90 the 60x40 frame is 40x60: the same region no longer fits -> one clear line, exit 1
    r = CliRunner().invoke(main, ["camera", str(tiny_models["int8"]), "--source", str(frames), "--headless",
                                  "--roi", "30,5,20,20", "--rotate", "90"])
    assert r.exit_code == 1 and "--roi region 30,5,20,20 does not fit in a 40x60 frame" in r.output
    r = CliRunner().invoke(main, ["camera", str(tiny_models["int8"]), "--source", str(frames), "--headless",
                                  "--roi", "5,30,20,20", "--rotate", "90"])
    assert r.exit_code == 0, r.output


def _write(path, img):
    import cv2

    cv2.imwrite(str(path), img)
    return path


@pytest.mark.parametrize("args, words", [
    (["--only", "bee,wasp"], "wasp: not a class of this model (expected one of ant, bee, cat)"),
    (["--roi", "1,2,3"], "is not x,y,w,h"),
    (["--exec", "no-such-program-xyz"], "no such program"),
    (["--hold", "0"], "--hold"),
])
def test_service_option_mistakes_are_one_clear_line(tiny_models, tmp_path, args, words):
    frames = _slideshow(tmp_path, [(0, 0, 0)])
    r = CliRunner().invoke(main, ["camera", str(tiny_models["int8"]), "--source", str(frames), "--headless", *args])
    assert r.exit_code == 2 and words in r.output, r.output


# ----------------------------------------------------------------------------------------------- systemd
def test_systemd_quoting_and_argument_rewriting():
    assert quote_arg("models/int8.tflite") == "models/int8.tflite"
    assert quote_arg('my "cam" dir') == '"my \\"cam\\" dir"'
    assert quote_arg("50%$HOME") == "50%%$$HOME"
    args, stripped = service_args(["camera", "m.tflite", "--show", "--mqtt", "mqtt://u:secret@broker:1884/birds",
                                   "--print-systemd-unit"])
    assert args == ["camera", "m.tflite", "--headless", "--mqtt", "mqtt://broker:1884/birds"] and stripped
    args, stripped = service_args(["camera", "--mqtt=mqtt://u:p@h/t"])
    assert args == ["camera", "--mqtt=mqtt://h/t"] and stripped


def test_print_systemd_unit_for_the_exact_command_line(tiny_models, tmp_path):
    """Through a real process (the unit is built from its command line); checked by systemd-analyze if present."""
    cmd = [sys.executable, "-m", "edgecnn", "camera", str(tiny_models["int8"]), "--source", "my frames/",
           "--hold", "3", "--log", "events.jsonl", "--exec", "notify 50%", "--print-systemd-unit"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    unit = done.stdout
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert exec_start == (f"ExecStart={sys.executable} -m edgecnn camera {tiny_models['int8']} --source "
                          f'"my frames/" --hold 3 --log events.jsonl --exec "notify 50%%"')
    for line in ("Restart=on-failure", "User=edgecnn", f"WorkingDirectory={tmp_path}", "WantedBy=multi-user.target",
                 "EnvironmentFile=-/etc/default/edgecnn"):
        assert line in unit.splitlines(), line
    assert "add --overwrite" in unit  # --log without --overwrite would fail on the first restart
    if shutil.which("systemd-analyze") is None:
        return
    path = tmp_path / "edgecnn-test.service"
    path.write_text(unit.replace("User=edgecnn", "User=root").replace("Group=edgecnn", "Group=root"))
    check = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    problems = [line for line in check.stderr.splitlines() if "edgecnn-test.service" in line]
    assert not problems, check.stderr
