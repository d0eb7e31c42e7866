"""edgecnn bench: statistics on known durations, the timing wrapper with a fake clock, the environment fingerprint,
reports, and the command on tiny models."""

from __future__ import annotations

import csv
import io
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn import bench as b
from edgecnn import stats as S
from edgecnn.cli import main
from edgecnn.errors import EdgecnnError
from edgecnn.report import bench_csv, bench_table, save_histogram


# ----------------------------------------------------------------------------------------------- statistics
@pytest.mark.parametrize("durations", [list(range(1, 101)), [0.25, 3.0, 1.5, 1.5, 9.75, 0.5, 2.0],
                                       list(np.random.default_rng(1).exponential(2.0, 1000))])
def test_latency_stats_match_an_independent_implementation(durations):
    s = S.latency_stats(durations)
    # statistics.quantiles(method="inclusive") is the same rule as numpy's default "linear" (Hyndman & Fan type 7).
    cuts = statistics.quantiles(durations, n=100, method="inclusive")
    assert s["p50"] == pytest.approx(cuts[49])
    assert s["p90"] == pytest.approx(cuts[89])
    assert s["p99"] == pytest.approx(cuts[98])
    assert s["mean"] == pytest.approx(statistics.fmean(durations))
    assert s["std"] == pytest.approx(statistics.pstdev(durations))
    assert (s["min"], s["max"]) == (min(durations), max(durations))
    assert list(s) == list(S.STAT_KEYS)


def test_latency_stats_of_one_duration():
    s = S.latency_stats([4.0])
    assert s == {"p50": 4.0, "p90": 4.0, "p99": 4.0, "mean": 4.0, "std": 0.0, "min": 4.0, "max": 4.0}


@pytest.mark.parametrize("bad", [[], [1.0, -0.5], [1.0, float("nan")]])
def test_latency_stats_rejects_bad_durations(bad):
    with pytest.raises(ValueError):
        S.latency_stats(bad)


def test_throughput_is_runs_per_second():
    assert S.throughput(4.0) == 250.0


def test_time_calls_separates_first_warmup_and_timed_runs():
    """A fake nanosecond clock that each call advances by a known duration: the first call, the warm-up calls and
    the timed calls must land exactly where they belong."""
    first, warm, timed = [7_000_000], [100_000_000] * 3, [1_000_000, 2_500_000, 500_000, 4_000_000]
    script = iter(first + warm + timed)
    now = [0]

    def fn():
        now[0] += next(script)

    seen = []
    t = b.time_calls(fn, runs=len(timed), warmup=len(warm), progress=seen.append, clock=lambda: now[0])
    assert t.first_invoke_ms == 7.0
    assert t.warmup == 3
    assert t.durations_ms.tolist() == [1.0, 2.5, 0.5, 4.0]
    assert seen == [1] * len(timed)


def test_time_calls_rejects_zero_runs():
    with pytest.raises(ValueError):
        b.time_calls(lambda: None, runs=0, warmup=0)


def _row(model, kind, threads, p50):
    return {"model": model, "kind": kind, "threads": threads, "latency_ms": {"p50": p50}}


def test_ratios_are_relative_to_the_first_row():
    rows = [_row("a", "int8", 1, 2.0), _row("b", "float32", 1, 3.0), _row("a", "int8", 2, 1.0)]
    assert b.ratios(rows) == [1.0, 1.5, 0.5]


def test_warning_when_int8_is_not_faster_than_float32_at_the_same_threads():
    rows = [_row("f.tflite", "float32", 1, 1.0), _row("q.tflite", "int8", 1, 1.2),
            _row("f.tflite", "float32", 2, 1.0), _row("q.tflite", "int8", 2, 0.4)]
    warnings = b.int8_not_faster(rows)
    assert len(warnings) == 1
    assert "q.tflite" in warnings[0] and "1 thread" in warnings[0]
    assert b.int8_not_faster([_row("q", "int8", 1, 0.5), _row("f", "float32", 1, 1.0)]) == []


# ----------------------------------------------------------------------------------------------- environment
def test_parse_cpuinfo_x86_and_raspberry_pi():
    assert b.parse_cpuinfo("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n") == "AMD EPYC 7B13"
    pi = "processor\t: 0\nBogoMIPS\t: 108.00\nCPU part\t: 0xd08\n\nHardware\t: BCM2835\nModel\t: Raspberry Pi 4\n"
    assert b.parse_cpuinfo(pi) == "BCM2835"
    assert b.parse_cpuinfo("CPU part\t: 0xd03\n") == "ARM CPU part 0xd03"
    assert b.parse_cpuinfo("") is None


def test_parse_throttled_names_the_set_bits():
    t = b.parse_throttled("throttled=0x50005")
    assert t["raw"] == "0x50005"
    assert t["flags"] == [b.THROTTLE_BITS[i] for i in (0, 2, 16, 18)]
    assert b.parse_throttled("throttled=0x0")["flags"] == []
    assert b.parse_throttled("error") is None


def test_environment_describes_this_machine():
    env = b.environment()
    for key in ("cpu_model", "cores", "cores_available", "machine", "os", "kernel", "python", "board",
                "cpu_governor", "temperature_c", "throttled", "load_1m"):
        assert key in env
    assert env["cores"] >= 1 and env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert env["machine"] in b.describe_environment(env)


# ----------------------------------------------------------------------------------------------- reports
def _full_row(model, p50):
    stats = {k: p50 for k in S.STAT_KEYS}
    return {"model": model, "kind": "int8", "size_bytes": 2048, "input_dtype": "int8", "output_dtype": "int8",
            "backend": "x", "backend_version": "1", "threads": 1, "runs": 5, "warmup": 1, "first_invoke_ms": 9.0,
            "latency_ms": stats, "throughput_per_s": 1000 / p50, "environment": {"cpu_model": "cpu, with comma"}}


def test_csv_round_trips_nested_keys():
    rows = [_full_row("a.tflite", 2.0), _full_row("b.tflite", 3.0)]
    back = list(csv.DictReader(io.StringIO(bench_csv(rows))))
    assert [r["model"] for r in back] == ["a.tflite", "b.tflite"]
    assert float(back[1]["latency_ms.p50"]) == 3.0
    assert back[0]["environment.cpu_model"] == "cpu, with comma"


def test_table_shows_ratio_to_first_row():
    table = bench_table([_full_row("a.tflite", 2.0), _full_row("b.tflite", 3.0)])
    lines = table.splitlines()
    assert lines[1].rstrip().endswith("1.00x") and lines[2].rstrip().endswith("1.50x")


def test_histogram_png(tmp_path):
    pytest.importorskip("matplotlib", reason="the latency histogram needs matplotlib (edgecnn[plot])")
    out = tmp_path / "h.png"
    save_histogram([("a", np.random.default_rng(0).normal(2, 0.1, 200)), ("b", [3.0, 3.1, 3.2])], out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind


def test_histogram_without_matplotlib_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    with pytest.raises(EdgecnnError, match="pip install matplotlib"):
        save_histogram([("a", [1.0])], tmp_path / "h.png")
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------------------------- command
def _bench(args):
    return CliRunner().invoke(main, ["bench", *map(str, args)])


def test_bench_json_rows_for_models_and_threads(tiny_models):
    r = _bench([tiny_models["int8"], tiny_models["uint8"], "--threads", "1,2", "--runs", "30", "--warmup", "2",
                "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [(row["model"], row["threads"]) for row in rows] == [
        (str(tiny_models["int8"]), 1), (str(tiny_models["int8"]), 2),
        (str(tiny_models["uint8"]), 1), (str(tiny_models["uint8"]), 2)]
    for row in rows:
        assert row["runs"] == 30 and row["warmup"] == 2
        assert row["first_invoke_ms"] > 0
        assert set(row["latency_ms"]) == set(S.STAT_KEYS)
        lat = row["latency_ms"]
        assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert row["size_bytes"] == Path(row["model"]).stat().st_size
        assert row["kind"] == "int8" and row["backend"] and row["backend_version"]
        assert row["environment"]["cores"] >= 1
    assert rows[2]["input_dtype"] == "uint8"


def test_bench_table_and_histogram_and_real_image_input(tiny_models, image_dir, tmp_path):
    pytest.importorskip("matplotlib", reason="the latency histogram needs matplotlib (edgecnn[plot])")
    png = tmp_path / "lat.png"
    r = _bench([tiny_models["int8"], tiny_models["float"], "--mean", "0", "--std", "1", "--runs", "20",
                "--input", image_dir / "colour.png", "--histogram", png])
    assert r.exit_code == 0, r.output
    assert "p50 vs 1st" in r.stdout and "machine:" in r.stdout
    assert png.exists()
    again = _bench([tiny_models["int8"], "--runs", "5", "--histogram", png])
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_bench_csv(tiny_models):
    r = _bench([tiny_models["int8"], "--runs", "10", "--csv"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 1 and rows[0]["runs"] == "10" and "latency_ms.p99" in rows[0]


def test_bench_pipeline_on_a_video(tiny_models, tmp_path):
    import cv2

    video = tmp_path / "v.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(12):
        w.write(np.full((48, 64, 3), i * 20, np.uint8))
    w.release()
    r = _bench([tiny_models["int8"], "--pipeline", video, "--runs", "8", "--warmup", "1", "--json"])
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.stdout)
    assert row["pipeline"] == str(video) and row["runs"] == 8
    assert set(row["stages_ms"]) == {"capture", "preprocess", "invoke", "postprocess", "render", "total"}


@pytest.mark.parametrize("args, words", [
    (["{missing}"], "no such file"),
    (["{notmodel}"], "not a TFLite"),
    (["{int8}", "--threads", "0"], "--threads"),
    (["{int8}", "--threads", "1,x"], "--threads"),
    (["{int8}", "--input", "{missing}"], "cannot read"),
])
def test_bench_bad_input_is_one_clear_line(tiny_models, tmp_path, args, words):
    notmodel = tmp_path / "n.tflite"
    notmodel.write_bytes(b"not a model at all" * 10)
    fill = {"missing": tmp_path / "nope.tflite", "notmodel": notmodel, "int8": tiny_models["int8"]}
    r = _bench([a.format(**fill) for a in args])
    assert r.exit_code in (1, 2)
    assert words.lower() in r.output.lower()
    assert "Traceback" not in r.output


def test_model_kind_tells_int8_from_float32(tiny_models):
    from edgecnn.config import RuntimeOptions
    from edgecnn.runtime import Classifier

    assert b.model_kind(Classifier(tiny_models["int8"])) == "int8"
    assert b.model_kind(Classifier(tiny_models["uint8"])) == "int8"
    assert b.model_kind(Classifier(tiny_models["float"], RuntimeOptions(mean=(0.0,), std=(1.0,)))) == "float32"


def test_bench_float_model_without_normalisation(tiny_models, image_dir):
    # Random input needs no --mean/--std (float inputs get uniform [-1, 1]); a real image does.
    r = _bench([tiny_models["float"], "--runs", "5", "--warmup", "0", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)[0]["input_dtype"] == "float32"
    r = _bench([tiny_models["float"], "--runs", "5", "--input", image_dir / "colour.png"])
    assert r.exit_code == 1 and "--mean and --std" in r.output


# ----------------------------------------------------------------------------------------------- tools/frame_bench.py
def test_frame_bench_compares_edgecnn_with_the_bare_loop(tiny_models):
    """The per-frame comparison of tools/benchmark.py runs end to end on a tiny model: same frames for every
    contender, p50s and ratios from them, top-1 per contender, MediaPipe only when installed."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    import frame_bench as fb

    rng = np.random.default_rng(0)
    frames = list(rng.integers(0, 256, (25, 48, 64, 3), dtype=np.uint8))
    labels = rng.integers(0, 3, 25)
    r = fb.compare(tiny_models["int8"], frames, labels, rounds=2)
    assert {"edgecnn", "bare loop"} <= set(r["p50_ms"]) and all(len(v) == 2 for v in r["p50_ms_per_round"].values())
    assert r["edgecnn_over_bare"] == pytest.approx(r["p50_ms"]["edgecnn"] / r["p50_ms"]["bare loop"])
    assert r["edgecnn_preprocess_p50_ms"] < r["p50_ms"]["edgecnn"]
    assert all(0.0 <= t <= 1.0 for t in r["top1"].values())
    assert ("MediaPipe" in r["p50_ms"] or "MediaPipe" in r["skipped"]) == (fb.mediapipe_version() is not None)
    text = "\n".join(fb.report_lines({"frames": 25, "photos": "x", "pinned_cpu": None, "mediapipe": None,
                                      "models": [r], "opencv_threads": {"preprocess_p50_ms": {"1": 0.1}}}))
    assert "edgecnn/bare" in text and "target <= 1.05" in text
    st = r["stages_p50_ms"]
    assert list(st["edgecnn"]) == ["crop + resize", "BGR -> RGB", "normalise + quantize", "set_tensor + invoke",
                                   "postprocess"]
    assert list(st["bare loop"]) == ["resize (stretch)", "cast", "set_tensor + invoke", "argmax"]
    assert all(v >= 0 for s in st.values() for v in s.values()) and st["edgecnn"]["set_tensor + invoke"] > 0
    assert "stages p50, edgecnn: crop + resize" in text and "stages p50, bare loop: resize (stretch)" in text
