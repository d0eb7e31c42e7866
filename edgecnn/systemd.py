"""``edgecnn camera ... --print-systemd-unit``: a systemd service unit that runs the same command at boot.

The unit runs the exact command line given (minus ``--print-systemd-unit``; ``--show`` becomes ``--headless``, a
service has no display) with this Python interpreter, in the current working directory, as a dedicated user, and
restarts it when it fails. Credentials in an ``--mqtt`` URL are taken out of the command line (a unit file is
world-readable); the unit reads them from an optional environment file instead.

Quoting follows systemd.service(5) "Command lines": an argument with spaces or quotes is double-quoted with ``\\``
escapes, ``%`` is written ``%%`` (specifiers) and ``$`` is written ``$$`` (variable expansion).

Imports the standard library only.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from edgecnn.config import MQTT_ENV_PASSWORD, MQTT_ENV_USERNAME
from edgecnn.config import SYSTEMD_ENVIRONMENT_FILE, SYSTEMD_RESTART_SEC, SYSTEMD_USER

_SAFE = re.compile(r"[A-Za-z0-9_@%+=:,./$-]+")


def quote_arg(arg: str) -> str:
    """One argument for an ``ExecStart=`` line (systemd.service(5) quoting, specifiers and ``$`` escaped)."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if _SAFE.fullmatch(arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def strip_credentials(url: str) -> str:
    """``mqtt://user:pass@host:1883/topic`` -> ``mqtt://host:1883/topic`` (other URLs unchanged)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def service_args(args: list[str]) -> tuple[list[str], bool]:
    """The command-line arguments the service runs, from the ones given.

    Drops ``--print-systemd-unit``, turns ``--show`` into ``--headless`` and strips credentials from the
    ``--mqtt`` URL.

    Returns:
        (arguments, True when credentials were stripped).
    """
    out: list[str] = []
    stripped = False
    it = iter(args)
    for a in it:
        if a == "--print-systemd-unit":
            continue
        if a == "--show":
            a = "--headless"
        elif a == "--mqtt":
            out.append(a)
            a = next(it, "")
            clean = strip_credentials(a)
            stripped, a = stripped or clean != a, clean
        elif a.startswith("--mqtt="):
            clean = "--mqtt=" + strip_credentials(a[len("--mqtt="):])
            stripped, a = stripped or clean != a, clean
        out.append(a)
    return out, stripped


def unit_file(args: list[str], python: str, cwd: str, model: str, user: str = SYSTEMD_USER) -> str:
    """The text of a systemd service unit running ``python -m edgecnn`` with ``args``.

    Args:
        args: the command-line arguments after the program name (``["camera", "model.tflite", ...]``).
        python: absolute path of the Python interpreter (the one edgecnn is installed in).
        cwd: absolute working directory (relative paths in ``args`` are relative to it).
        model: the model path, for the description.
        user: the dedicated user (and group) the service runs as.
    """
    run_args, stripped = service_args(args)
    exec_start = " ".join(quote_arg(a) for a in [python, "-m", "edgecnn", *run_args])
    notes = []
    if stripped:
        notes.append(f"# The --mqtt credentials were taken out of the command line: put {MQTT_ENV_USERNAME}=... and\n"
                     f"# {MQTT_ENV_PASSWORD}=... into {SYSTEMD_ENVIRONMENT_FILE} (mode 600, owner root).")
    if any(a in ("--log", "--record") or a.startswith(("--log=", "--record=")) for a in run_args) \
            and "--overwrite" not in run_args:
        notes.append("# --log/--record refuse to replace an existing file, so a restart would fail: add --overwrite\n"
                     "# (or write each run to a new name) before enabling this unit.")
    return "\n".join([
        "# edgecnn camera as a service; made by `edgecnn camera ... --print-systemd-unit`.",
        "# Install: sudo cp THIS /etc/systemd/system/edgecnn.service && sudo systemctl daemon-reload &&",
        "#          sudo systemctl enable --now edgecnn ; logs: journalctl -u edgecnn -f (docs/raspberry-pi.md)",
        *notes,
        "[Unit]",
        f"Description=edgecnn camera classifier ({model.replace('%', '%%')})",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"User={user}",
        f"Group={user}",
        "SupplementaryGroups=video",
        f"WorkingDirectory={cwd.replace('%', '%%')}",
        "Environment=PYTHONUNBUFFERED=1",
        f"EnvironmentFile=-{SYSTEMD_ENVIRONMENT_FILE}",
        f"ExecStart={exec_start}",
        "Restart=on-failure",
        f"RestartSec={SYSTEMD_RESTART_SEC}",
        "# systemctl stop sends SIGTERM: the run ends as on Ctrl-C, with its summary in the journal, exit code 0.",
        "TimeoutStopSec=30",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])
