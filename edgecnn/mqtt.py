"""``--mqtt mqtt://[user:pass@]host[:port]/topic``: events and state to an MQTT broker (paho-mqtt, the optional
extra ``edgecnn[mqtt]``).

Topics under ``topic``:

* ``topic/event``: one JSON event (:meth:`edgecnn.events.Event.to_dict`) per event, QoS 1, not retained;
* ``topic/state``: the same JSON for the newest event, QoS 1, **retained** (what the camera sees now; a client that
  subscribes later gets it at once). Re-sent after every reconnect;
* ``topic/status``: ``online`` (retained) once connected, ``offline`` (retained) on a clean stop, and the same
  ``offline`` as the last will the broker publishes when the connection is lost without one.
* with ``--mqtt-discovery``: Home Assistant MQTT discovery configs (retained) under
  ``homeassistant/sensor/<node>/class/config`` and ``.../score/config``: two sensors, the class and its score, read
  from ``topic/state`` and available while ``topic/status`` is ``online``.

The camera loop never waits for the broker: only at start-up, before the first frame, does the publisher wait (at
most :data:`edgecnn.config.MQTT_START_WAIT_S`) for the broker's first answer, so the run's first events are not
dropped while the connection is being made. The connection, reconnects (back-off from
:data:`edgecnn.config.MQTT_RECONNECT_MIN_S` doubling to :data:`edgecnn.config.MQTT_RECONNECT_MAX_S` seconds) and
sending all happen in paho's network thread. While disconnected, events are counted as dropped, not queued; the
state is kept and sent on reconnect. Credentials come from the URL or, when it has none, from
:data:`edgecnn.config.MQTT_ENV_USERNAME` / :data:`edgecnn.config.MQTT_ENV_PASSWORD`; they are never printed.

Imports the standard library; paho-mqtt when :class:`MqttPublisher` is made.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from edgecnn import __version__
from edgecnn.config import MQTT_DEFAULT_PORT, MQTT_DISCOVERY_PREFIX, MQTT_ENV_PASSWORD, MQTT_ENV_USERNAME
from edgecnn.config import MQTT_KEEPALIVE_S, MQTT_RECONNECT_MAX_S, MQTT_RECONNECT_MIN_S, MQTT_START_WAIT_S
from edgecnn.errors import EdgecnnError

#: Messages paho may hold for sending at once (QoS 1 in flight); beyond it a publish counts as dropped.
MAX_QUEUED = 100
#: Seconds :meth:`MqttPublisher.close` waits for the "offline" status to reach the broker.
CLOSE_WAIT_S = 2.0
#: mqtts:// port when the URL has none (IANA: secure-mqtt).
MQTTS_DEFAULT_PORT = 8883


@dataclass(frozen=True)
class MqttTarget:
    """Where to publish. ``password`` is left out of ``repr`` and :meth:`describe`."""

    host: str
    port: int
    topic: str
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        """``mqtt://host:port/topic`` (no credentials), for messages."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}/{self.topic}"


def parse_url(url: str, env: dict | None = None) -> MqttTarget:
    """``mqtt[s]://[user[:pass]@]host[:port]/topic`` -> :class:`MqttTarget`; credentials from ``env`` (default
    ``os.environ``) when the URL has none.

    Raises:
        ValueError: another scheme, no host, no topic, or a topic with MQTT wildcards (``+``, ``#``). The message
            never contains the credentials.
    """
    env = os.environ if env is None else env
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        parts, port = None, None
    safe = re.sub(r"//[^@/]*@", "//", str(url))  # for messages: the URL without credentials
    if parts is None or parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"{safe!r}: expected mqtt://[user:pass@]host[:port]/topic (or mqtts://)")
    topic = parts.path.strip("/")
    if not topic or "+" in topic or "#" in safe:  # "#" would otherwise be read as the start of a URL fragment
        raise ValueError(f"{safe!r}: expected a topic without wildcards after the host, e.g. mqtt://host/birds")
    tls = parts.scheme == "mqtts"
    username = unquote(parts.username) if parts.username else env.get(MQTT_ENV_USERNAME) or None
    password = unquote(parts.password) if parts.password else env.get(MQTT_ENV_PASSWORD) or None
    return MqttTarget(parts.hostname, port or (MQTTS_DEFAULT_PORT if tls else MQTT_DEFAULT_PORT), topic, tls,
                      username, password)


def node_id(topic: str) -> str:
    """A Home Assistant node id from a topic: characters other than ``[A-Za-z0-9_-]`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", topic)


def discovery_configs(target: MqttTarget, model: str, prefix: str = MQTT_DISCOVERY_PREFIX) -> dict[str, dict]:
    """Home Assistant MQTT discovery: {config topic: payload} for a "class" and a "score" sensor of this camera."""
    node = node_id(target.topic)
    base = target.topic
    device = {"identifiers": [f"edgecnn_{node}"], "name": f"edgecnn {target.topic}", "manufacturer": "edgecnn",
              "model": os.path.basename(model), "sw_version": __version__}
    common = {"state_topic": f"{base}/state", "json_attributes_topic": f"{base}/state",
              "availability_topic": f"{base}/status", "payload_available": "online",
              "payload_not_available": "offline", "device": device}
    return {
        f"{prefix}/sensor/{node}/class/config": {**common, "name": "class", "unique_id": f"edgecnn_{node}_class",
                                                 "value_template": "{{ value_json.label }}", "icon": "mdi:cctv"},
        f"{prefix}/sensor/{node}/score/config": {**common, "name": "score", "unique_id": f"edgecnn_{node}_score",
                                                 "value_template": "{{ value_json.score }}", "icon": "mdi:percent"},
    }


class MqttPublisher:
    """Publishes events and state to ``target`` from paho's network thread (see the module docstring).

    Args:
        target: :class:`MqttTarget`.
        model: model path (for the discovery device).
        discovery: publish Home Assistant discovery configs on every connect.
        warn: called with one line of text when the broker goes away or comes back, or refuses us (from paho's
            thread); None = silent.
    Raises:
        EdgecnnError: paho-mqtt is not installed.
    """

    def __init__(self, target: MqttTarget, model: str = "", discovery: bool = False, warn=None):
        try:
            import paho.mqtt.client as paho
        except ImportError:
            raise EdgecnnError("--mqtt needs paho-mqtt: pip install 'edgecnn[mqtt]'") from None
        self.target = target
        self.topics = {k: f"{target.topic}/{k}" for k in ("event", "state", "status")}
        self.discovery = discovery_configs(target, model) if discovery else {}
        self.warn = warn
        self.connected = False
        self.published = self.dropped = self.connects = self.disconnects = self.connect_failures = 0
        self._state: str | None = None
        self._closing = False
        self._lock = threading.Lock()
        self._answered = threading.Event()  # the first connect attempt has an outcome (connected, refused, failed)
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"edgecnn-{socket.gethostname()}-{os.getpid()}")
        if target.username is not None:
            c.username_pw_set(target.username, target.password)
        if target.tls:
            c.tls_set()
        c.will_set(self.topics["status"], "offline", qos=1, retain=True)
        c.reconnect_delay_set(MQTT_RECONNECT_MIN_S, MQTT_RECONNECT_MAX_S)
        c.max_queued_messages_set(MAX_QUEUED)
        c.on_connect, c.on_disconnect, c.on_connect_fail = self._on_connect, self._on_disconnect, self._on_fail
        self._client = c
        c.connect_async(target.host, target.port, MQTT_KEEPALIVE_S)
        c.loop_start()
        self._answered.wait(MQTT_START_WAIT_S)

    # ------------------------------------------------------------------ paho's thread
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.connect_failures += 1
            self._warn(f"MQTT broker {self.target.describe()} refused the connection ({reason_code}); retrying")
            self._answered.set()
            return
        with self._lock:
            self.connected = True
            self.connects += 1
            state = self._state
        self._answered.set()
        client.publish(self.topics["status"], "online", qos=1, retain=True)
        for topic, config in self.discovery.items():
            client.publish(topic, json.dumps(config, separators=(",", ":")), qos=1, retain=True)
        if state is not None:
            client.publish(self.topics["state"], state, qos=1, retain=True)
        if self.connects > 1:
            self._warn(f"MQTT broker {self.target.describe()} is back ({self.dropped} events dropped so far)")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._lock:
            was, self.connected = self.connected, False
        if was and not self._closing:
            self.disconnects += 1
            self._warn(f"MQTT broker {self.target.describe()} went away ({reason_code}); reconnecting, events are "
                       f"counted as dropped meanwhile")

    def _on_fail(self, client, userdata) -> None:
        self.connect_failures += 1
        self._answered.set()
        if self.connect_failures == 1:
            self._warn(f"MQTT broker {self.target.describe()} cannot be reached; retrying in the background")

    def _warn(self, text: str) -> None:
        if self.warn is not None:
            self.warn(text)

    # ------------------------------------------------------------------ the loop's side: never waits
    def publish_event(self, event: dict) -> None:
        """Send one event (:meth:`edgecnn.events.Event.to_dict`) and make it the retained state; while
        disconnected, count it as dropped (the state is still sent on reconnect)."""
        payload = json.dumps(event, separators=(",", ":"))
        with self._lock:
            self._state = payload
            connected = self.connected
        if not connected:
            self.dropped += 1
            return
        info = self._client.publish(self.topics["event"], payload, qos=1)
        self._client.publish(self.topics["state"], payload, qos=1, retain=True)
        if info.rc == 0:
            self.published += 1
        else:  # paho's queue is full (the broker stopped reading) or the connection just broke
            self.dropped += 1

    def counts(self) -> dict:
        """``{"broker": URL without credentials, "connected", "published", "dropped", "connects", "disconnects",
        "connect_failures"}``."""
        return {"broker": self.target.describe(), "connected": self.connected, "published": self.published,
                "dropped": self.dropped, "connects": self.connects, "disconnects": self.disconnects,
                "connect_failures": self.connect_failures}

    def close(self) -> None:
        """Publish ``offline`` (retained; waits up to :data:`CLOSE_WAIT_S`), disconnect, stop the network thread."""
        self._closing = True
        if self.connected:
            info = self._client.publish(self.topics["status"], "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(CLOSE_WAIT_S)
            except (RuntimeError, ValueError):  # the connection broke meanwhile: the last will says the same
                pass
        self._client.disconnect()
        self._client.loop_stop()
