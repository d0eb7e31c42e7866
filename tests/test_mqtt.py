"""--mqtt against a real Mosquitto broker (the OS package) that each test starts on a free port with its own config:
events, retained state and status, the last will, Home Assistant discovery, a broker restart in the middle of a
run, a broker that is down from the start, and credentials that are never printed.

Skips with the reason when Mosquitto or paho-mqtt is missing (CI installs both: ``.ci/run``, the test extra).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from edgecnn.mqtt import discovery_configs, parse_url

from tests.service_helpers import MOSQUITTO, Broker, CameraProcess, Subscriber, make_blocks_video, retained

pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed (pip install 'edgecnn[mqtt]')")
needs_broker = pytest.mark.skipif(not os.access(MOSQUITTO, os.X_OK),
                                  reason=f"no Mosquitto broker at {MOSQUITTO} (Debian: apt-get install mosquitto)")


def _log_events(path):
    return [json.loads(line) for line in path.read_text().splitlines() if '"event"' in line]


# ----------------------------------------------------------------------------------------------- URL
def test_parse_url_and_credentials_from_the_environment():
    t = parse_url("mqtt://broker.lan/birds/feeder", env={})
    assert (t.host, t.port, t.topic, t.username, t.password, t.tls) == ("broker.lan", 1883, "birds/feeder",
                                                                         None, None, False)
    t = parse_url("mqtts://u%40x:p%3Aw@h:8884/cam", env={"EDGECNN_MQTT_USERNAME": "other"})
    assert (t.username, t.password, t.port, t.tls) == ("u@x", "p:w", 8884, True)
    t = parse_url("mqtt://h/cam", env={"EDGECNN_MQTT_USERNAME": "birds", "EDGECNN_MQTT_PASSWORD": "s3cret"})
    assert (t.username, t.password) == ("birds", "s3cret")
    assert "s3cret" not in repr(t) and "s3cret" not in t.describe()
    for bad in ("http://h/cam", "mqtt://h", "mqtt://h/", "mqtt://h/a/#", "mqtt:///cam", "mqtt://h:99999/cam"):
        with pytest.raises(ValueError, match="expected"):
            parse_url(bad, env={})
    with pytest.raises(ValueError) as e:
        parse_url("mqtt://u:s3cret@h", env={})
    assert "s3cret" not in str(e.value)


def test_discovery_configs_name_the_state_and_status_topics():
    configs = discovery_configs(parse_url("mqtt://h/birds/feeder 1", env={}), "m/int8.tflite")
    assert set(configs) == {"homeassistant/sensor/birds_feeder_1/class/config",
                            "homeassistant/sensor/birds_feeder_1/score/config"}
    c = configs["homeassistant/sensor/birds_feeder_1/class/config"]
    assert c["state_topic"] == "birds/feeder 1/state" and c["availability_topic"] == "birds/feeder 1/status"
    assert c["value_template"] == "{{ value_json.label }}" and c["unique_id"] == "edgecnn_birds_feeder_1_class"


# ----------------------------------------------------------------------------------------------- real broker
@needs_broker
def test_events_state_status_and_discovery_reach_the_broker(tiny_models, tmp_path):
    broker = Broker(tmp_path).start()
    sub = Subscriber(broker.port, ("cam/#",))
    try:
        video = make_blocks_video(tmp_path / "blocks.avi", frames=60, block=10)
        cam = CameraProcess([tiny_models["int8"], "--source", video, "--headless", "--hold", "2", "--log",
                             "run.jsonl", "--mqtt", f"mqtt://127.0.0.1:{broker.port}/cam", "--mqtt-discovery",
                             "--json"], tmp_path)
        code, out, err = cam.finish()
        assert code == 0, err
        time.sleep(0.5)
        sub.close()
        events = _log_events(tmp_path / "run.jsonl")
        assert [e["label"] for e in events] == ["ant", "bee"] * 3
        assert [json.loads(p) for p, _ in sub.on("cam/event")] == events  # every event, in order, same JSON
        assert sub.on("cam/status")[0] == ("online", False) and sub.on("cam/status")[-1] == ("offline", False)
        summary = json.loads(out)["service"]["mqtt"]
        assert summary == {"broker": f"mqtt://127.0.0.1:{broker.port}/cam", "connected": False, "published": 6,
                           "dropped": 0, "connects": 1, "disconnects": 0, "connect_failures": 0}
        # what a client that subscribes later gets: the newest state, the clean "offline", the discovery configs
        kept = retained(broker.port, ("cam/#", "homeassistant/#"))
        assert json.loads(kept["cam/state"]) == events[-1]
        assert kept["cam/status"] == "offline"
        config = json.loads(kept["homeassistant/sensor/cam/class/config"])
        assert config["state_topic"] == "cam/state" and config["availability_topic"] == "cam/status"
    finally:
        sub.close()
        broker.stop()


@needs_broker
def test_last_will_says_offline_when_the_camera_dies(tiny_models, tmp_path):
    broker = Broker(tmp_path).start()
    try:
        video = make_blocks_video(tmp_path / "blocks.avi", frames=2000, block=10)
        cam = CameraProcess([tiny_models["int8"], "--source", video, "--headless", "--max-fps", "50",
                             "--mqtt", f"mqtt://127.0.0.1:{broker.port}/cam"], tmp_path)
        deadline = time.monotonic() + 30
        while retained(broker.port, ("cam/status",), 0.3).get("cam/status") != "online":
            assert time.monotonic() < deadline and cam.proc.poll() is None, "never online"
        cam.kill()  # SIGKILL: no clean "offline"; the broker publishes the will
        time.sleep(0.5)
        assert retained(broker.port, ("cam/status",), 0.3)["cam/status"] == "offline"
    finally:
        broker.stop()


@needs_broker
def test_broker_restart_mid_run_reconnects_and_the_loop_keeps_classifying(tiny_models, tmp_path):
    broker = Broker(tmp_path).start()
    sub = Subscriber(broker.port, ("cam/#",))
    video = make_blocks_video(tmp_path / "blocks.avi", frames=250, block=5)
    cam = CameraProcess([tiny_models["int8"], "--source", video, "--headless", "--max-fps", "25", "--hold", "2",
                         "--log", "run.jsonl", "--mqtt", f"mqtt://127.0.0.1:{broker.port}/cam", "--json"], tmp_path)
    try:
        deadline = time.monotonic() + 30
        while len(sub.on("cam/event")) < 2:
            assert time.monotonic() < deadline and cam.proc.poll() is None, "no events before the restart"
            time.sleep(0.05)
        before = len(sub.on("cam/event"))
        broker.stop()
        time.sleep(2.5)  # ~12 events happen while the broker is away
        broker.start()
        code, out, err = cam.finish(timeout_s=60)
    finally:
        cam.kill()
        sub.close()
        broker.stop()
    assert code == 0, err
    summary = json.loads(out)
    mq = summary["service"]["mqtt"]
    events = _log_events(tmp_path / "run.jsonl")
    assert summary["frames"] == 250 and summary["ended"] == "end of source"  # the loop never stopped
    assert mq["disconnects"] == 1 and mq["connects"] == 2 and mq["dropped"] >= 5
    assert mq["published"] + mq["dropped"] == len(events) == summary["service"]["events"]
    received = [json.loads(p) for p, _ in sub.on("cam/event")]
    assert len(received) > before  # events after the restart arrived
    assert all(e in events for e in received)
    assert "went away" in err and "is back" in err
    # the retained state is the last event, re-sent after the reconnect
    state = [json.loads(p) for p, _ in sub.on("cam/state")]
    assert state[-1] == events[-1]


@needs_broker
def test_broker_down_from_the_start_costs_the_loop_nothing(tiny_models, tmp_path):
    broker = Broker(tmp_path)  # configured, never started: nothing listens on its port
    video = make_blocks_video(tmp_path / "blocks.avi", frames=200, block=5)
    cam = CameraProcess([tiny_models["int8"], "--source", video, "--headless", "--hold", "2", "--json",
                         "--mqtt", f"mqtt://127.0.0.1:{broker.port}/cam"], tmp_path)
    code, out, err = cam.finish(timeout_s=60)
    assert code == 0, err
    summary = json.loads(out)
    mq = summary["service"]["mqtt"]
    assert summary["frames"] == 200
    assert mq["connects"] == 0 and mq["published"] == 0 and mq["dropped"] == summary["service"]["events"] > 0


@needs_broker
def test_credentials_from_the_environment_are_used_and_never_printed(tiny_models, tmp_path):
    pw = tmp_path / "passwords"
    pw.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(pw), "birds", "s3cret-pw"], check=True, capture_output=True)
    broker = Broker(tmp_path, extra=f"allow_anonymous false\npassword_file {pw}").start()
    try:
        video = make_blocks_video(tmp_path / "blocks.avi", frames=30, block=10)
        args = [tiny_models["int8"], "--source", video, "--headless", "--hold", "2", "--json",
                "--mqtt", f"mqtt://127.0.0.1:{broker.port}/cam"]
        code, out, err = CameraProcess(args, tmp_path, env={"EDGECNN_MQTT_USERNAME": "birds",
                                                            "EDGECNN_MQTT_PASSWORD": "s3cret-pw"}).finish()
        assert code == 0, err
        assert json.loads(out)["service"]["mqtt"]["published"] == 3
        assert "s3cret" not in out + err
        # a wrong password in the URL: refused, said so, the password not shown; the loop still runs to the end
        args[-1] = f"mqtt://birds:wrong-s3cret@127.0.0.1:{broker.port}/cam"
        code, out, err = CameraProcess(args, tmp_path).finish()
        assert code == 0, err
        assert json.loads(out)["service"]["mqtt"]["connects"] == 0
        assert "refused" in err and "s3cret" not in out + err
        unit = subprocess.run([sys.executable, "-m", "edgecnn", "camera", *map(str, args), "--print-systemd-unit"],
                              capture_output=True, text=True, cwd=tmp_path, timeout=60)
        assert unit.returncode == 0 and "s3cret" not in unit.stdout + unit.stderr
    finally:
        broker.stop()
