"""--serve: the web view's endpoints over real HTTP, on a real camera process (a video played at --max-fps), and
the server's health answers in process."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from types import SimpleNamespace

import numpy as np
import pytest

from edgecnn.loop import LoopResult
from edgecnn.runtime import Prediction
from edgecnn.serve import FrameServer, parse_address, snapshot
from edgecnn.sources import Frame

from tests.service_helpers import CameraProcess, make_video


def _get(url, timeout=10):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def _read_parts(url, n, timeout=20):
    """The first ``n`` parts of a multipart MJPEG stream: the response's Content-Type, and per part its headers
    and the decoded image."""
    import cv2

    parts = []
    with urllib.request.urlopen(url, timeout=timeout) as r:
        ctype = r.headers["Content-Type"]
        while len(parts) < n:
            line = r.readline()
            assert line, "stream ended"
            if line.strip() != b"--frame":
                continue
            headers = {}
            while (line := r.readline().strip()):
                key, value = line.decode().split(":", 1)
                headers[key] = value.strip()
            image = cv2.imdecode(np.frombuffer(r.read(int(headers["Content-Length"])), np.uint8), cv2.IMREAD_COLOR)
            parts.append((headers, image))
    return ctype, parts


def test_parse_address():
    assert parse_address("8080", "127.0.0.1") == ("127.0.0.1", 8080)
    assert parse_address("0.0.0.0:80", "127.0.0.1") == ("0.0.0.0", 80)
    assert parse_address("[::1]:0", "127.0.0.1") == ("::1", 0)
    for bad in ("", "host:", "70000", "a:b"):
        with pytest.raises(ValueError, match="expected"):
            parse_address(bad, "127.0.0.1")


def test_web_view_endpoints_on_a_running_camera(tiny_models, tmp_path):
    video = make_video(tmp_path / "clip.avi", frames=120)
    cam = CameraProcess([tiny_models["int8"], "--source", video, "--headless", "--serve", "0", "--max-fps", "25",
                         "--serve-fps", "8", "--roi", "0,0,120,120", "--json", "--log", "run.jsonl"], tmp_path)
    try:
        url = cam.url()
        assert url.startswith("http://127.0.0.1:")  # loopback unless a host is given
        status, _, body = _get(url + "healthz")
        assert (status, json.loads(body)["status"]) in ((503, "starting"), (200, "ok"))  # 503 until a frame
        deadline = time.monotonic() + 30
        while status != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
            status, _, body = _get(url + "healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"
        status, headers, page = _get(url)
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert b'src="/stream.mjpg"' in page and b"/stats.json" in page
        ctype, parts = _read_parts(url + "stream.mjpg", 3)
        assert ctype == "multipart/x-mixed-replace; boundary=frame"
        images = [im for _, im in parts]
        assert all(im is not None and im.shape[2] == 3 for im in images)
        assert [h["Content-Type"] for h, _ in parts] == ["image/jpeg"] * 3
        streamed = [int(h["X-Frame-Index"]) for h, _ in parts]
        assert streamed == sorted(set(streamed))  # newer frames only, never one twice
        assert np.abs(images[0].astype(int) - images[2].astype(int)).mean() > 1  # the picture moves
        first = json.loads(_get(url + "stats.json")[2])
        time.sleep(1.0)
        second = json.loads(_get(url + "stats.json")[2])
        assert second["frames"] > first["frames"] and first["ended"] == "running"
        assert [set(p) for p in second["top"]] == [{"index", "label", "score"}] * 3
        assert second["serve"]["roi"] == "0,0,120,120" and second["serve"]["max_fps"] == 8
        assert _get(url + "nothing")[0] == 404
        # a client that connects and then never reads does not hold up the loop (checked by the run ending)
        stuck = socket.create_connection(socket.getaddrinfo("127.0.0.1", int(url.rsplit(":", 1)[1].strip("/")))[0][4])
        stuck.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
        code, out, err = cam.finish(timeout_s=60)
        stuck.close()
    finally:
        cam.kill()
    assert code == 0, err
    summary = json.loads(out)
    assert summary["frames"] == 120 and summary["ended"] == "end of source"
    # the same object as /stats.json, which adds the newest frame's top-k and the web view's counters
    assert set(second) == set(summary) | {"top", "frame", "serve"}
    log = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    by_frame = {rec["frame"]: rec["top"] for rec in log if "event" not in rec}
    assert by_frame[second["frame"]] == second["top"]  # what the page showed is what the log recorded
    assert all(i in by_frame for i in streamed)  # every streamed frame is a logged frame
    # JPEG encoding: at most --serve-fps per second, once for all clients
    assert second["serve"]["encoded"] <= 8 * (second["wall_s"] + 1)


def _server(summary=None, stale_s=5.0):
    return FrameServer("127.0.0.1", 0, 5.0, summary or (lambda res: res.summary(
        SimpleNamespace(backend=SimpleNamespace(name="fake"), threads=1, path="fake.tflite"), "fake")),
        stale_s=stale_s)


def test_healthz_answers_503_before_frames_when_frames_stop_and_after_a_failed_source():
    server = _server(stale_s=0.5)
    try:
        url = f"http://127.0.0.1:{server.address[1]}/"
        status, _, body = _get(url + "healthz")
        assert status == 503 and json.loads(body)["status"] == "starting"
        res = LoopResult()
        res.stages_ms["invoke"].append(1.0)
        server.on_frame(Frame(np.zeros((8, 8, 3), np.uint8), "bgr", 0, time.perf_counter()),
                        [Prediction(1, "bee", 0.9)], res)
        assert _get(url + "healthz")[0] == 200
        time.sleep(0.7)  # a camera that stalls: no frame for longer than stale_s
        status, _, body = _get(url + "healthz")
        assert status == 503 and json.loads(body)["status"] == "stalled"
        res.ended, res.message = "source failed", "camera 0: stopped returning frames after 1 processed"
        server.ended(res)
        status, _, body = _get(url + "healthz")
        assert status == 503 and json.loads(body) == {"status": "failed", "reason": res.message}
    finally:
        server.close()
    with pytest.raises(OSError):  # closed: nothing listens any more
        socket.create_connection(("127.0.0.1", server.address[1]), timeout=2)


def test_stats_snapshot_while_the_loop_appends():
    res = LoopResult()
    for i in range(10):
        for v in res.stages_ms.values():
            v.append(float(i))
        res.frame_age_ms.append(float(i))
    res.stages_ms["total"].append(99.0)  # one stage a frame ahead, as if read mid-frame
    snap = snapshot(res, 2.0)
    assert snap.frames == 10 and len(snap.stages_ms["total"]) == 10 and snap.ended == "running"
    res.stages_ms["total"].append(1.0)  # the loop goes on appending: the copy is its own
    assert len(snap.stages_ms["total"]) == 10


def test_port_in_use_is_one_clear_line(tiny_models, tmp_path):
    from click.testing import CliRunner

    from edgecnn.cli import main

    video = make_video(tmp_path / "clip.avi", frames=2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = CliRunner().invoke(main, ["camera", str(tiny_models["int8"]), "--source", str(video), "--headless",
                                      "--serve", f"127.0.0.1:{port}"])
    assert r.exit_code == 2 and f"127.0.0.1:{port}: cannot listen" in r.output, r.output


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_with_stream_clients_connected_shuts_down_cleanly(tiny_models, tmp_path, signame):
    import signal
    import threading

    video = make_video(tmp_path / "clip.avi", frames=1000)
    cam = CameraProcess([tiny_models["int8"], "--source", video, "--headless", "--serve", "0", "--max-fps", "20",
                         "--json"], tmp_path)
    ended = []

    def client(url):
        with urllib.request.urlopen(url, timeout=30) as r:
            while r.read(4096):
                pass
        ended.append(True)  # the server closed the stream

    try:
        url = cam.url()
        clients = [threading.Thread(target=client, args=(url + "stream.mjpg",)) for _ in range(2)]
        for t in clients:
            t.start()
        deadline = time.monotonic() + 30
        while True:  # both clients streaming and the loop running (a stop before the loop exits 128 + signal)
            stats = json.loads(_get(url + "stats.json")[2])
            if stats["serve"]["stream_clients"] == 2 and stats["frames"] >= 5:
                break
            assert time.monotonic() < deadline
            time.sleep(0.1)
        cam.proc.send_signal(getattr(signal, signame))
        code, out, err = cam.finish(timeout_s=30)
        for t in clients:
            t.join(10)
    finally:
        cam.kill()
    assert code == 0, err
    assert json.loads(out)["ended"] in ("interrupted", f"stopped by {signame}") and json.loads(out)["frames"] < 1000
    assert ended == [True, True]
