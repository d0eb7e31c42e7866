"""What to install where (edgecnn/install.py), OpenCV version differences (edgecnn/opencv.py) and
`edgecnn info --system` (edgecnn/system.py). The real installs are checked on ARM userlands by `make test-arm`."""

import json
import re
import subprocess
import sys
import types

import pytest
from click.testing import CliRunner

from edgecnn.cli import main
from edgecnn.errors import DependencyError
from edgecnn.install import interpreter_advice, interpreter_extra, opencv_advice, userland
from edgecnn.opencv import gui_backend, import_cv2, import_error_message, quiet_logs
from edgecnn.system import parse_arm_core, parse_cpu_features, system_text

# (uname -m, pointer bits) -> (userland arch, extra): the three Raspberry Pi OS installs, the Pi Zero, a PC.
CASES = [
    ("aarch64", 64, "aarch64", "litert"),          # Pi OS 64-bit
    ("armv7l", 32, "armv7l", "tflite-runtime"),    # Pi OS 32-bit, 32-bit kernel (Pi 2/3)
    ("aarch64", 32, "armv7l", "tflite-runtime"),   # Pi OS 32-bit on a Pi 4/5: 64-bit kernel
    ("armv8l", 32, "armv7l", "tflite-runtime"),
    ("armv6l", 32, "armv6l", None),                # Pi Zero / Pi 1
    ("x86_64", 64, "x86_64", "litert"),
]


@pytest.mark.parametrize("machine, bits, arch, extra", CASES)
def test_userland_and_interpreter_extra(machine, bits, arch, extra):
    u = userland(machine, bits, "linux")
    assert u.arch == arch and u.bits == bits and u.mixed == (arch != machine)
    assert interpreter_extra(u) == extra
    advice = interpreter_advice(u)
    if extra:
        assert f"pip install 'edgecnn[{extra}]'" in advice
    else:
        assert "armv6l" in advice and "Pi Zero" in advice and "pip install" not in advice


def test_mixed_userland_is_named():
    u = userland("aarch64", 32, "linux")
    assert u.describe() == "armv7l (32-bit userland on a 64-bit aarch64 kernel)"
    assert "no 32-bit wheels" in interpreter_advice(u)
    assert userland("arm64", 64, "darwin").arch == "arm64" and interpreter_extra(userland("arm64", 64, "darwin"))


def test_opencv_advice_per_userland():
    assert "sudo apt install python3-opencv" in opencv_advice(userland("aarch64", 32, "linux"))
    assert "--system-site-packages" in opencv_advice(userland("armv7l", 32, "linux"))
    assert "pip install 'edgecnn[opencv]'" in opencv_advice(userland("aarch64", 64, "linux"))


def test_import_error_message_names_the_debian_package():
    msg = import_error_message("libGL.so.1: cannot open shared object file: No such file or directory")
    assert "libGL.so.1" in msg and "sudo apt install libgl1" in msg and "opencv-python-headless" in msg
    assert "\n" not in msg
    # what opencv-python 5.0 says on a minimal arm64 Debian (measured in the ARM check's userland)
    assert "sudo apt install libxcb1" in import_error_message(
        "libxcb.so.1: cannot open shared object file: No such file or directory")
    msg = import_error_message("libfoo.so.3: cannot open shared object file: No such file or directory")
    assert "apt-file search libfoo.so.3" in msg
    assert "No module named 'cv2'" in import_error_message("No module named 'cv2'")
    # apt's OpenCV (built for NumPy 1.x) under a pip NumPy 2, as the ARM check found it
    msg = import_error_message("numpy.core.multiarray failed to import")
    assert "another NumPy" in msg and "pip install 'numpy<2'" in msg and "\n" not in msg


def test_missing_cv2_is_one_line_through_the_cli(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "cv2", None)  # makes `import cv2` raise ImportError
    with pytest.raises(DependencyError, match="OpenCV"):
        import_cv2()
    (tmp_path / "a.png").write_bytes(b"\x89PNG")
    r = CliRunner().invoke(main, ["classify", "models/fashion_mnist/int8.tflite", str(tmp_path / "a.png")])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "OpenCV (cv2) cannot be imported" in r.output and opencv_advice(userland()) in r.output


class _Recorder:
    def __init__(self):
        self.level, self.calls = 3, []

    def get(self):
        return self.level

    def set(self, level):
        self.calls.append(level)
        self.level = level


def test_quiet_logs_on_every_opencv_api():
    # OpenCV >= 4.8 wheels: cv2.utils.logging
    rec = _Recorder()
    new = types.SimpleNamespace(utils=types.SimpleNamespace(logging=types.SimpleNamespace(
        getLogLevel=rec.get, setLogLevel=rec.set, LOG_LEVEL_SILENT=0)))
    with quiet_logs(new):
        assert rec.level == 0
    assert rec.calls == [0, 3]
    # Debian's OpenCV 4.6: no cv2.utils.logging, but cv2.setLogLevel / getLogLevel
    rec = _Recorder()
    old = types.SimpleNamespace(utils=types.SimpleNamespace(), getLogLevel=rec.get, setLogLevel=rec.set)
    with pytest.raises(KeyError):  # restored also when the block fails
        with quiet_logs(old):
            assert rec.level == 0
            raise KeyError("x")
    assert rec.calls == [0, 3]
    with quiet_logs(types.SimpleNamespace()):  # neither: logs as before, no error
        pass


def test_quiet_logs_on_this_opencv():
    cv2 = import_cv2()
    with quiet_logs(cv2):
        assert not cv2.VideoCapture("/nonexistent/video.mp4").isOpened()


def test_gui_backend():
    assert gui_backend("  Video I/O:\n  GUI:                           QT5\n    QT:  YES") == "QT5"
    assert gui_backend("  GUI:                           GTK3\n") == "GTK3"
    assert gui_backend("  GUI:                           NONE\n") is None
    assert gui_backend("  GUI:\n    GTK+:   NO\n") is None
    assert gui_backend("") is None


def test_parse_arm_core():
    pi4 = "processor\t: 0\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU part\t: 0xd08\n"
    assert parse_arm_core(pi4) == "Cortex-A72"
    assert parse_arm_core(pi4.replace("0xd08", "0xd0b")) == "Cortex-A76"
    assert parse_arm_core(pi4.replace("0x41", "0x51")) is None  # not an Arm Ltd core
    assert parse_arm_core("flags\t: fpu avx2\n") is None


def test_parse_cpu_features():
    arm = "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU part\t: 0xd08\n" \
          "processor\t: 1\nFeatures\t: fp asimd\n"
    assert parse_cpu_features(arm) == ["fp", "asimd", "evtstrm", "crc32", "cpuid"]
    assert parse_cpu_features("flags\t\t: fpu vme avx2\n") == ["fpu", "vme", "avx2"]
    assert parse_cpu_features("") == []


def test_info_system_text_and_json():
    r = CliRunner().invoke(main, ["info", "--system"])
    assert r.exit_code == 0, r.output
    keys = [line.split()[0] for line in r.output.splitlines()]
    for k in ("edgecnn", "board", "cpu", "os", "kernel", "userland", "python", "interpreter", "numpy", "opencv",
              "governor", "temperature", "throttling"):
        assert k in keys, r.output
    import numpy

    assert re.search(rf"^numpy +{re.escape(numpy.__version__)} ", r.output, re.M)
    assert re.search(rf"^python +{re.escape('.'.join(map(str, sys.version_info[:3])))}$", r.output, re.M)
    r = CliRunner().invoke(main, ["info", "--system", "--json"])
    d = json.loads(r.output)
    assert d["userland"]["bits"] == 8 * __import__("struct").calcsize("P")
    assert d["interpreter"]["name"] and d["opencv"]["version"] == import_cv2().__version__
    assert CliRunner().invoke(main, ["info"]).exit_code == 2
    assert CliRunner().invoke(main, ["info", "--system", "models/fashion_mnist/int8.tflite"]).exit_code == 2


def test_info_system_reports_a_missing_interpreter(monkeypatch):
    for mod in ("ai_edge_litert", "ai_edge_litert.interpreter", "tflite_runtime", "tflite_runtime.interpreter",
                "tensorflow"):
        monkeypatch.setitem(sys.modules, mod, None)
    r = CliRunner().invoke(main, ["info", "--system"])
    assert r.exit_code == 0
    line = next(line for line in r.output.splitlines() if line.startswith("interpreter"))
    assert "NOT AVAILABLE" in line and interpreter_advice(userland()) in line


def test_throttling_text():
    from edgecnn.system import system_report

    r = system_report()
    r["machine"]["throttled"] = {"raw": "0x50005", "flags": ["under-voltage detected", "currently throttled"]}
    assert any(line.startswith("throttling") and "0x50005: under-voltage detected" in line
               for line in system_text(r))


def test_help_still_imports_no_opencv():
    code = "import sys; from edgecnn.cli import main; print('cv2' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == "False"


def test_opencv_is_imported_in_one_place():
    """Every module gets cv2 through edgecnn.opencv.import_cv2 (one clear error when it is missing; the OpenCV
    version differences handled in one file)."""
    from pathlib import Path

    pkg = Path(__file__).resolve().parents[1] / "edgecnn"
    offenders = [p.name for p in pkg.rglob("*.py") if p.name != "opencv.py"
                 and re.search(r"^\s*(import cv2|from cv2 )", p.read_text(), re.M)]
    assert offenders == []
