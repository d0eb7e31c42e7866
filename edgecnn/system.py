"""What a bug report needs to know about this machine (``edgecnn info --system``).

The machine itself (board, CPU, OS, governor, temperature, throttling) comes from
:func:`edgecnn.bench.environment`, the one place that reads it; this module adds the userland
(:mod:`edgecnn.install`), the CPU features the kernel reports, and the versions of everything edgecnn runs on.
Every probe is optional: a missing package or file is reported, never raised.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import numpy as np

from edgecnn import __version__
from edgecnn.bench import environment
from edgecnn.errors import EdgecnnError
from edgecnn.install import interpreter_extra, userland
from edgecnn.opencv import gui_backend, import_cv2
from edgecnn.runtime import load_backend

#: CPU features that matter for int8 inference speed, highlighted in the text report: Arm ``asimd`` (NEON),
#: ``asimddp`` (SDOT/UDOT dot product, Cortex-A76 / Pi 5), ``i8mm``, ``neon`` (32-bit kernels), x86 ``avx2``,
#: ``avx512_vnni``, ``avx_vnni``, ``amx_int8`` (Linux ``/proc/cpuinfo`` names).
INT8_FEATURES = ("neon", "asimd", "asimddp", "i8mm", "sve", "sme", "avx2", "avx512f", "avx512_vnni", "avx_vnni",
                 "amx_int8")


#: Arm core names by ``CPU part`` (implementer 0x41, Arm Ltd), for the cores of Raspberry Pi boards: Pi 1/Zero,
#: Pi 2, Pi 3/Zero 2 W, Pi 4, Pi 5 (part numbers from Linux arch/arm64/include/asm/cputype.h and
#: arch/arm/include/asm/cputype.h).
ARM_CPU_PARTS = {"0xb76": "ARM1176", "0xc07": "Cortex-A7", "0xd03": "Cortex-A53", "0xd08": "Cortex-A72",
                 "0xd0b": "Cortex-A76"}


def parse_arm_core(cpuinfo: str) -> str | None:
    """The Arm core named by the first ``CPU part`` in ``/proc/cpuinfo`` text (e.g. "Cortex-A72"), None when it is
    not an Arm Ltd core listed in :data:`ARM_CPU_PARTS`."""
    impl = re.search(r"^CPU implementer\s*:\s*(0x[0-9a-f]+)", cpuinfo, re.M | re.I)
    part = re.search(r"^CPU part\s*:\s*(0x[0-9a-f]+)", cpuinfo, re.M | re.I)
    if not impl or not part or int(impl.group(1), 16) != 0x41:
        return None
    return ARM_CPU_PARTS.get(part.group(1).lower())


def parse_cpu_features(cpuinfo: str) -> list[str]:
    """The CPU feature flags of the first processor in ``/proc/cpuinfo`` text: ``Features`` on Arm, ``flags`` on
    x86. Empty when there is neither."""
    m = re.search(r"^(?:Features|flags)\s*:\s*(.*)$", cpuinfo, re.M)
    return m.group(1).split() if m else []


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def _package_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _opencv() -> dict:
    try:
        cv2 = import_cv2()
    except EdgecnnError as e:
        return {"version": None, "error": str(e)}
    # Which distribution provides cv2: a PyPI wheel has metadata; apt's python3-opencv has none.
    dists = [d for d in ("opencv-python", "opencv-python-headless", "opencv-contrib-python",
                         "opencv-contrib-python-headless") if _package_version(d)]
    return {"version": cv2.__version__, "path": getattr(cv2, "__file__", None),
            "distribution": ", ".join(dists) or "not from pip (e.g. apt's python3-opencv)",
            "gui": gui_backend(cv2.getBuildInformation())}


def _interpreter() -> dict:
    try:
        b = load_backend()
    except EdgecnnError as e:
        return {"name": None, "version": None, "error": str(e)}
    return {"name": b.name, "version": b.version}


def system_report() -> dict:
    """Everything a bug report needs, JSON-ready.

    Keys: ``edgecnn`` (version), ``machine`` (:func:`edgecnn.bench.environment`: board, cpu_model, cores, os,
    kernel, python, cpu_governor, cpu_max_mhz, temperature_c, throttled, load_1m), ``userland`` (kernel_machine,
    bits, arch, description, interpreter_extra), ``cpu_core`` (:func:`parse_arm_core`), ``cpu_features`` (list of flags), ``numpy`` (version, path),
    ``opencv`` / ``interpreter`` (version and where from, or ``error``: the one-line message a command would print).
    """
    u = userland()
    cpuinfo = _cpuinfo()
    return {
        "edgecnn": __version__,
        "machine": environment(),
        "userland": {"kernel_machine": u.kernel_machine, "bits": u.bits, "arch": u.arch,
                     "description": u.describe(), "interpreter_extra": interpreter_extra(u)},
        "cpu_core": parse_arm_core(cpuinfo),
        "cpu_features": parse_cpu_features(cpuinfo),
        "numpy": {"version": np.__version__, "path": np.__file__},
        "opencv": _opencv(),
        "interpreter": _interpreter(),
    }


def system_text(r: dict) -> list[str]:
    """The report of :func:`system_report` as aligned ``key  value`` lines for a terminal or an issue."""
    m = r["machine"]
    thr = m.get("throttled")
    throttling = ("not available (no vcgencmd)" if thr is None
                  else f"{thr['raw']}: {', '.join(thr['flags']) or 'none'}")
    cv, it = r["opencv"], r["interpreter"]
    opencv = (f"{cv['version']} ({cv['distribution']}; GUI: {cv['gui'] or 'none'})" if cv["version"]
              else f"NOT AVAILABLE: {cv['error']}")
    interp = f"{it['name']} {it['version']}" if it["name"] else f"NOT AVAILABLE: {it['error']}"
    key = [f for f in r["cpu_features"] if f in INT8_FEATURES]
    rows = [
        ("edgecnn", r["edgecnn"]),
        ("board", m.get("board") or "unknown (no /proc/device-tree/model)"),
        ("cpu", (f"{r['cpu_core']}, " if r.get("cpu_core") else "")
         + f"{m.get('cpu_model') or 'unknown'}, {m.get('cores_available')}/{m.get('cores')} cores"
                + (f", max {m['cpu_max_mhz']:.0f} MHz" if m.get("cpu_max_mhz") else "")),
        ("cpu features", (" ".join(key) + f" ({len(r['cpu_features'])} flags in all)") if key
         else (" ".join(r["cpu_features"]) or "unknown")),
        ("os", m.get("os")),
        ("kernel", f"{m.get('kernel')} ({r['userland']['kernel_machine']})"),
        ("userland", r["userland"]["description"]),
        ("python", m.get("python")),
        ("interpreter", interp),
        ("numpy", f"{r['numpy']['version']} ({r['numpy']['path']})"),
        ("opencv", opencv),
        ("governor", m.get("cpu_governor") or "unknown"),
        ("temperature", f"{m['temperature_c']:.1f} C" if m.get("temperature_c") is not None else "unknown"),
        ("throttling", throttling),
        ("load", f"{m['load_1m']:.2f} (1-minute average)" if m.get("load_1m") is not None else "unknown"),
    ]
    return [f"{k:<13}{v}" for k, v in rows]
