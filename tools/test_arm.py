"""Prove the Raspberry Pi installs on emulated ARM userlands (``make test-arm``; too slow for CI).

For each target it installs edgecnn in a Debian bookworm ARM userland (what Raspberry Pi OS is built on) exactly as
docs/raspberry-pi.md tells a Pi user -- the fenced block after ``<!-- test-arm: RECIPE -->`` is run as written --,
then runs ``edgecnn info --system``, the docs' first-run block (``<!-- test-arm: first-run -->``, as written, its
answers compared with the same block on this host), the device test suite, and classify / camera / bench on the
shipped Fashion-MNIST model and on a 224x224 photo model, comparing every prediction with the same command on this
host (top-1 identical; the largest score difference is reported). One PASS/FAIL line per step, then a total.

Targets (``--targets``; default: all four):

- ``arm64``: Pi OS 64-bit (recipe ``pi64``: a plain venv, wheels from PyPI).
- ``armhf``: Pi OS 32-bit on a 32-bit kernel (recipe ``pi32``: apt's numpy and OpenCV, ``--system-site-packages``).
- ``armhf-on-arm64``: Pi OS 32-bit on a Pi 4/5, whose kernel is 64-bit: the armhf userland with ``uname`` (and so
  ``platform.machine()`` and pip's ``platform_machine``) reporting ``aarch64``, through an LD_PRELOAD library.
- ``arm64-apt``: Pi OS 64-bit with apt's numpy and OpenCV (recipe ``pi64-apt``: the picamera2 / desktop case).

How: ``mmdebstrap`` builds each userland once into ``--cache`` (about 350 MB each); every step runs in it with
``chroot`` under QEMU user-mode emulation (``qemu-user-static`` + binfmt_misc), inside a private mount namespace, so
nothing stays mounted. Two traps of the emulation itself (not Pi problems) are handled here: QEMU shows the host's
x86 ``/proc/cpuinfo`` (the interpreter then crashes), so a Raspberry Pi 4's cpuinfo is bind-mounted over it; and
QEMU's default ``max`` CPU has the SME matrix extension, with which ai-edge-litert's int8 results are wrong, so the
CPU is pinned (``QEMU_CPU=cortex-a72`` for arm64, ``cortex-a7`` for armhf). Commands run as root in the userland and
``sudo`` is a pass-through (setuid binaries do not work through binfmt_misc without its ``C`` flag).

Host needs (root): ``apt-get install mmdebstrap qemu-user-static binfmt-support gcc-arm-linux-gnueabihf``, network
to deb.debian.org and PyPI, and the project's .venv (the host reference run). Extra CA certificates of this host
(``/usr/local/share/ca-certificates``) are trusted in the userlands too, for networks behind a TLS proxy.

    python tools/test_arm.py --cache /var/cache/edgecnn-arm
    python tools/test_arm.py --targets armhf --skip-tests      # quicker: install + commands only
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
from shared_data import FLOWERS5  # noqa: E402
DOC = REPO / "docs" / "raspberry-pi.md"
SUITE = "bookworm"
#: Debian packages of every userland: what Raspberry Pi OS (Lite) has before the docs' own apt command.
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")
#: apt sources of the userlands. Without bookworm-security: the check tests the install, not the patches, and a
#: security index caught mid-sync (size mismatch) failed whole builds here.
MIRRORS = (f"deb http://deb.debian.org/debian {SUITE} main", f"deb http://deb.debian.org/debian {SUITE}-updates main")
#: Where the docs put the venv and the source (checked against the recipes).
VENV = "~/edgecnn-venv"
#: The docs block of commands a new user runs right after installing (checked in every userland).
FIRST_RUN = "first-run"
#: Folder under the work folder where the host runs that block (links to this checkout and its venv: never copied)
FIRST_RUN_HOME = "first-run-home"
SOURCE = "/root/edgecnn"
WORK = "/root/check"  # images, models and outputs exchanged with the host
FM_IMAGES = 200
PHOTO_IMAGES = 50
VIDEO_FRAMES = 40
#: Two classes closer than this in score on both machines may swap places between them: 0.08 is 20 steps of a
#: 1/256 output scale, about twice the 0.043 measured between interpreter versions.
NEAR_TIE = 0.08

# /proc/cpuinfo of a Raspberry Pi 4 (Cortex-A72, part 0xd08): 64-bit kernel, and what a 32-bit process sees.
_A72 = "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n"
CPUINFO = {
    "arm64": "".join(f"processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n{_A72}"
                     for i in range(4)) + "Revision\t: c03114\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n",
    "armhf": "".join(f"processor\t: {i}\nmodel name\t: ARMv7 Processor rev 3 (v7l)\nBogoMIPS\t: 108.00\n"
                     "Features\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm "
                     f"crc32\n{_A72}" for i in range(4))
             + "Hardware\t: BCM2711\nRevision\t: c03114\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n",
}
# An LD_PRELOAD library that makes uname() say aarch64, as a 64-bit kernel does under a 32-bit userland.
UNAME_SHIM_C = r"""
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>
int uname(struct utsname *buf) {
    int r = syscall(SYS_uname, buf);
    if (r == 0) strcpy(buf->machine, "aarch64");
    return r;
}
"""
UNAME_SHIM = "/opt/edgecnn-check/uname-aarch64.so"
# A pytest plugin for the userlands, which have no TensorFlow, until every test that needs it skips by itself: a test
# that fails only because TensorFlow is missing (a fixture that builds its models with it, or a workstation command
# answering "this command needs TensorFlow") is reported as skipped; any other failure stays a failure.
SKIP_WITHOUT_TF = """
import pytest

def _needs_tf(call, rep):
    e = call.excinfo
    if e is not None and e.errisinstance(ModuleNotFoundError):
        return (e.value.name or "").split(".")[0] in ("tensorflow", "keras")
    return "this command needs TensorFlow" in rep.longreprtext

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and _needs_tf(call, rep):
        rep.outcome, rep.longrepr = "skipped", (str(item.path), item.location[1] or 0, "needs TensorFlow")
"""


@dataclass(frozen=True)
class Target:
    """One emulated install: a userland (``arch``), a docs recipe, and what it must report."""

    name: str
    arch: str            # Debian architecture of the userland
    recipe: str          # the docs block to run
    qemu_cpu: str
    userland: str        # the "userland" line `edgecnn info --system` must print
    backend: str         # the interpreter it must pick
    mixed: bool = False  # 32-bit userland on a 64-bit kernel (uname shim)
    copy: bool = False   # its own copy of the userland (apt packages the other recipes must not see)

    @property
    def userland_dir(self) -> str:
        return f"{SUITE}-{self.name}" if self.copy else f"{SUITE}-{self.arch}"


TARGETS = {
    "arm64": Target("arm64", "arm64", "pi64", "cortex-a72", "aarch64 (64-bit)", "ai_edge_litert"),
    "armhf": Target("armhf", "armhf", "pi32", "cortex-a7", "armv7l (32-bit)", "tflite_runtime"),
    "armhf-on-arm64": Target("armhf-on-arm64", "armhf", "pi32", "cortex-a7",
                             "armv7l (32-bit userland on a 64-bit aarch64 kernel)", "tflite_runtime", mixed=True),
    "arm64-apt": Target("arm64-apt", "arm64", "pi64-apt", "cortex-a72", "aarch64 (64-bit)", "ai_edge_litert",
                        copy=True),
}
DEFAULT_TARGETS = ("arm64", "armhf", "armhf-on-arm64", "arm64-apt")


# ----------------------------------------------------------------------------------------------- reporting
class Report:
    """Collects one PASS/FAIL line per step and prints them as they happen."""

    def __init__(self):
        self.rows: list[tuple[bool, str, str]] = []

    def step(self, ok: bool, name: str, detail: str = "", seconds: float | None = None) -> bool:
        took = f" [{seconds:.0f} s]" if seconds is not None else ""
        line = f"{'PASS' if ok else 'FAIL'}  {name:<42} {detail}{took}"
        print(line, flush=True)
        self.rows.append((ok, name, detail))
        return ok

    def total(self, seconds: float, cache: Path) -> int:
        passed = sum(ok for ok, _, _ in self.rows)
        failed = len(self.rows) - passed
        print(f"{'PASS' if failed == 0 else 'FAIL'}  TOTAL: {passed} passed, {failed} failed in {seconds / 60:.1f} min;"
              f" cache {_du(cache)} in {cache}", flush=True)
        return 0 if failed == 0 else 1


def _du(path: Path) -> str:
    p = subprocess.run(["du", "-sh", str(path)], capture_output=True, text=True)  # exit 1 on vanished files
    return p.stdout.split()[0] if p.stdout else "?"


# ----------------------------------------------------------------------------------------------- userlands
def recipe(name: str, doc: Path = DOC) -> str:
    """The shell block that follows ``<!-- test-arm: name -->`` in the docs.

    Raises:
        SystemExit: no such block, or it does not use the venv path this check reads results from.
    """
    m = re.search(rf"<!-- test-arm: {re.escape(name)} -->\s*```(?:sh|bash)\n(.*?)```", doc.read_text(), re.S)
    if not m:
        raise SystemExit(f"{doc}: no ```sh block after <!-- test-arm: {name} -->")
    if VENV not in m.group(1):
        raise SystemExit(f"{doc}: recipe {name} does not make its venv at {VENV}")
    return m.group(1)


def parse_classify_text(text: str) -> dict[str, dict[str, float]]:
    """{image file name: {label: score}} from ``edgecnn classify``'s text lines ("path: A (0.9), B (0.1)  [ms]")."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"(\S+\.(?:png|jpe?g|bmp)): (.*?)\s+\[[\d.]+ ms\]$", line)
        if m:
            out[Path(m.group(1)).name] = {lab: float(v) for lab, v in re.findall(r"(.+?) \(([\d.]+)\)(?:, |$)",
                                                                                 m.group(2))}
    return out


def first_run_results(home: Path, stdout: str) -> tuple[dict, dict, str]:
    """What the docs' first-run block gave in ``home``: (classify {image: {label: score}}, camera log {frame:
    {index: score}}, the score line "... top-1 N%, top-3 M%")."""
    log = home / "fm.jsonl"
    rows = _jsonl(log) if log.exists() else []
    frames = {str(r["frame"]): {t["index"]: t["score"] for t in r["top"]} for r in rows if "top" in r}
    score = next((ln.strip() for ln in stdout.splitlines() if "labelled frames classified" in ln), "no score line")
    return parse_classify_text(stdout), frames, score


def host_first_run(report: Report, work: Path) -> tuple[dict, dict, str] | None:
    """Run the docs' first-run block on this host (``~`` holding the checkout as ``edgecnn`` and the project's venv
    as the docs' venv) for the reference answers."""
    home = work / FIRST_RUN_HOME
    home.mkdir(parents=True, exist_ok=True)
    (home / "edgecnn").symlink_to(REPO)
    (home / VENV.removeprefix("~/")).symlink_to(Path(sys.executable).parent.parent)
    start = time.time()
    p = subprocess.run(["bash", "-euo", "pipefail", "-c", recipe(FIRST_RUN)], cwd=home, capture_output=True,
                       text=True, env=dict(os.environ, HOME=str(home)))
    got = first_run_results(home, p.stdout)
    ok = p.returncode == 0 and bool(got[0]) and bool(got[1])
    tail = (p.stdout + p.stderr).strip().splitlines()
    report.step(ok, "host: docs first-run block", got[2] if ok else f"exit {p.returncode}: {tail[-1] if tail else ''}",
                time.time() - start)
    return got if ok else None


def arm_first_run(report: Report, t: Target, root: Path, log: Path, host: tuple[dict, dict, str] | None) -> None:
    """The docs' first-run block in the userland, as written; its answers compared with the host's."""
    start = time.time()
    home = root / "root"
    for f in ("fm.mp4", "fm.labels.csv", "fm.jsonl"):
        (home / f).unlink(missing_ok=True)
    p = run_in(root, recipe(FIRST_RUN), t.qemu_cpu, t.mixed, log=log)
    tail = (p.stdout + p.stderr).strip().splitlines()
    if p.returncode != 0 or host is None:
        report.step(False, f"{t.name}: docs first-run block",
                    f"exit {p.returncode}: {tail[-1] if tail else ''}" if p.returncode else "no host reference",
                    time.time() - start)
        return
    classify, frames, score = first_run_results(home, p.stdout)
    ok_c, detail_c = compare(host[0], classify)
    ok_f, detail_f = compare(host[1], frames)
    same = "the host's" if score == host[2] else f"host: {host[2]}"
    report.step(ok_c and ok_f, f"{t.name}: docs first-run block",
                f"classify {detail_c}; camera {detail_f}; {score} ({same})", time.time() - start)


def build_userland(t: Target, cache: Path) -> tuple[Path, str]:
    """The cached userland of ``t`` (built with mmdebstrap when missing, or copied from the plain one for a target
    with its own copy). Returns (root, "cached" / "built" / "copied")."""
    root, arch = cache / t.userland_dir, t.arch
    if (root / "etc" / "edgecnn-check-ready").exists():
        prepare_userland(root, arch)  # cheap; keeps the check's own files current
        return root, "cached"
    # No ready marker: a build that never finished (the marker is written last, by prepare_userland).
    shutil.rmtree(root, ignore_errors=True)
    if t.copy:
        base, _ = build_userland(Target(t.name, arch, t.recipe, t.qemu_cpu, t.userland, t.backend), cache)
        subprocess.run(["cp", "-a", str(base), str(root)], check=True)
        prepare_userland(root, arch)
        return root, "copied"
    subprocess.run(["nice", "-n", "10", "mmdebstrap", f"--arch={arch}", "--variant=minbase",
                    "--include=" + ",".join(BASE_PACKAGES), SUITE, str(root), *MIRRORS], check=True,
                   stdout=subprocess.DEVNULL)
    prepare_userland(root, arch)
    return root, "built"


def prepare_userland(root: Path, arch: str) -> None:
    """Make a fresh userland usable here: DNS, this host's extra CAs, a pass-through sudo, ARM cpuinfo, the shim."""
    shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
    # Appended to the bundle directly: update-ca-certificates under emulation takes minutes.
    bundle = root / "etc" / "ssl" / "certs" / "ca-certificates.crt"
    for ca in sorted(Path("/usr/local/share/ca-certificates").glob("*.crt")):
        if ca.read_text() not in bundle.read_text():
            with open(bundle, "a") as f:
                f.write(ca.read_text())
    sudo = root / "usr" / "local" / "bin" / "sudo"
    sudo.write_text('#!/bin/sh\n# test-arm: commands already run as root\nwhile [ "${1#-}" != "$1" ]; do shift; done\n'
                    'exec "$@"\n')
    sudo.chmod(0o755)
    (root / "opt" / "edgecnn-check").mkdir(parents=True, exist_ok=True)
    (root / "opt" / "edgecnn-check" / "cpuinfo").write_text(CPUINFO[arch])
    (root / "opt" / "edgecnn-check" / "skip_without_tf.py").write_text(SKIP_WITHOUT_TF)
    if arch == "armhf":
        src = root / "opt" / "edgecnn-check" / "uname-aarch64.c"
        src.write_text(UNAME_SHIM_C)
        subprocess.run(["arm-linux-gnueabihf-gcc", "-shared", "-fPIC", "-O2", "-o", str(root / UNAME_SHIM.lstrip("/")),
                        str(src)], check=True)
    (root / "etc" / "edgecnn-check-ready").write_text("prepared by tools/test_arm.py\n")


def run_in(root: Path, script: str, qemu_cpu: str, mixed: bool = False, timeout: float = 3600,
           log: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``script`` with bash (-e -u -o pipefail) as root in the userland at ``root``, in a private mount namespace
    with /proc (ARM cpuinfo over it), /sys (the interpreter's cpuinfo library reads the CPU lists there), /dev and
    a fresh /tmp. Output goes to ``log`` (appended) and is returned."""
    step = root / "opt" / "edgecnn-check" / "step.sh"
    step.write_text(script)
    env = ["HOME=/root", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
           "TERM=dumb", f"QEMU_CPU={qemu_cpu}", "PYTHONDONTWRITEBYTECODE=1"]
    if mixed:
        env.append(f"LD_PRELOAD={UNAME_SHIM}")
    r = shlex.quote(str(root))
    mounts = (f"mount -t proc proc {r}/proc && mount --bind {r}/opt/edgecnn-check/cpuinfo {r}/proc/cpuinfo && "
              f"mount -t sysfs sysfs {r}/sys && mount --rbind /dev {r}/dev && mount -t tmpfs tmpfs {r}/tmp && "
              f"exec env -i {' '.join(env)} chroot {r} /bin/bash -euo pipefail /opt/edgecnn-check/step.sh")
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", mounts],
                       capture_output=True, text=True, timeout=timeout)
    if log is not None:
        with open(log, "a") as f:
            f.write(f"\n$ [{root.name}{' uname=aarch64' if mixed else ''}] {script}\n{p.stdout}{p.stderr}"
                    f"[exit {p.returncode}]\n")
    return p


# ----------------------------------------------------------------------------------------------- inputs
def prepare_inputs(work: Path, photo_model: Path | None) -> list[str]:
    """Write the shared inputs into ``work``: Fashion-MNIST test PNGs, flower photos, a short mp4 and the models.
    Returns the names of what is missing (empty when everything is there)."""
    import cv2
    import gzip

    sys.path.insert(0, str(REPO))
    from edgecnn.train.data import parse_idx_images

    (work / "models").mkdir(parents=True, exist_ok=True)
    (work / "fm").mkdir(exist_ok=True)
    images = parse_idx_images(gzip.open(REPO / "models/fashion_mnist_sample/t10k-images-idx3-ubyte.gz").read())
    for i in range(FM_IMAGES):
        cv2.imwrite(str(work / "fm" / f"{i:04d}.png"), images[i])
    shutil.copy(REPO / "models/fashion_mnist/int8.tflite", work / "models" / "fm_int8.tflite")
    subprocess.run([sys.executable, str(REPO / "tools/make_video.py"), "make", str(work / "fm.mp4"), "--idx",
                    str(REPO / "models/fashion_mnist_sample"), "--count", str(VIDEO_FRAMES // 2), "--hold", "2",
                    "--overwrite"], check=True, capture_output=True)
    missing = []
    flowers = FLOWERS5
    (work / "photos").mkdir(exist_ok=True)
    if flowers.is_dir():
        classes = sorted(p for p in flowers.iterdir() if p.is_dir())
        for c in classes:
            test_split = [f for f in sorted(c.glob("*.jpg")) if int(f.stem) % 5 == 0]  # flowers5's fixed test split
            for f in test_split[: PHOTO_IMAGES // len(classes)]:
                shutil.copy(f, work / "photos" / f"{c.name}_{f.name}")
    else:
        missing.append(f"photos ({flowers} not found)")
    if photo_model is not None and photo_model.is_file():
        shutil.copy(photo_model, work / "models" / "photo224.tflite")
    else:
        missing.append(f"photo model ({photo_model})")
    return missing


def commands(photo: bool) -> list[tuple[str, str]]:
    """(name, command) run identically on the host and in each userland, from the work folder."""
    cmds = [
        ("classify fashion-mnist", f"edgecnn classify models/fm_int8.tflite fm --json --top-k 10"),
        ("camera folder", f"edgecnn camera models/fm_int8.tflite --source fm --headless --frames {VIDEO_FRAMES} "
                          f"--json --log out/camera_folder.jsonl --overwrite"),
        ("camera mp4", "edgecnn camera models/fm_int8.tflite --source fm.mp4 --headless --json "
                       "--log out/camera_mp4.jsonl --overwrite"),
        ("bench", "edgecnn bench models/fm_int8.tflite --runs 20 --warmup 3 --json"),
    ]
    if photo:
        cmds[1:1] = [("classify photo-224", "edgecnn classify models/photo224.tflite photos --json --top-k 5")]
        cmds.append(("bench photo-224", "edgecnn bench models/photo224.tflite --runs 5 --warmup 1 --json"))
    return cmds


def command_script(cmds: list[tuple[str, str]]) -> str:
    """Bash that runs each command, keeping stdout, stderr, exit code and seconds in out/NN.*."""
    lines = ["rm -rf out && mkdir out", "set +e"]
    for i, (_, cmd) in enumerate(cmds):
        lines.append(f"s=$(date +%s.%N); {cmd} > out/{i:02d}.stdout 2> out/{i:02d}.stderr; echo $? > out/{i:02d}.rc; "
                     f"echo $s $(date +%s.%N) > out/{i:02d}.time")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------- comparing
def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def predictions(out: Path, i: int, name: str) -> dict[str, dict[int, float]] | None:
    """{image or frame: {class index: score}} from a command's output (classify JSON lines, camera --log)."""
    if name.startswith("classify"):
        rows = _jsonl(out / f"{i:02d}.stdout")
        return {Path(r["image"]).name: {t["index"]: t["score"] for t in r["top"]} for r in rows}
    if name.startswith("camera"):
        log = out / ("camera_folder.jsonl" if "folder" in name else "camera_mp4.jsonl")
        rows = _jsonl(log) if log.exists() else []  # per-frame rows; event rows ("event": ...) have no "top"
        return {str(r["frame"]): {t["index"]: t["score"] for t in r["top"]} for r in rows if "top" in r} or None
    return None


def _top1(scores: dict[int, float]) -> int:
    return min(scores, key=lambda c: (-scores[c], c))  # ties: the lower index, as edgecnn's top-k


def compare(host: dict, arm: dict) -> tuple[bool, str]:
    """Top-1 identical on every item, except near-ties; and the largest score difference (over the classes both
    outputs list).

    A near-tie is an item both machines find ambiguous: its two candidate classes (the host's top-1 and the ARM
    top-1) are within :data:`NEAR_TIE` of each other in each output. Such an item may flip with a one-step
    difference in the input (another OpenCV's resize or video decoder) or in int8 rounding. Each one is listed.
    """
    if set(host) != set(arm) or not host:
        return False, f"{len(arm)} results vs {len(host)} on the host"
    flips, ties, worst = [], [], 0.0
    for key, h in host.items():
        a = arm[key]
        worst = max([worst] + [abs(h[c] - a[c]) for c in h.keys() & a.keys()])
        ch, ca = _top1(h), _top1(a)
        if ch != ca:
            gap = max(h[ch] - h.get(ca, 0.0), a[ca] - a.get(ch, 0.0))
            (ties if gap <= NEAR_TIE else flips).append(
                f"{key} (host {ch}: {h[ch]:.3f} vs {h.get(ca, 0.0):.3f}; arm {ca}: {a[ca]:.3f} vs {a.get(ch, 0.0):.3f})")
    same = len(host) - len(flips) - len(ties)
    detail = f"top-1 identical on {same}/{len(host)}, largest score difference {worst:.4f}"
    if ties:
        detail += f"; near-ties: {'; '.join(ties[:3])}"
    if flips:
        detail += f"; DIFFERENT: {'; '.join(flips[:3])}"
    return not flips, detail


def check_outputs(report: Report, tag: str, cmds, host_out: Path, arm_out: Path) -> None:
    """One PASS/FAIL line per command: exit code 0, and predictions equal to the host's."""
    for i, (name, _) in enumerate(cmds):
        rc = int((arm_out / f"{i:02d}.rc").read_text()) if (arm_out / f"{i:02d}.rc").exists() else -1
        t0, t1 = map(float, (arm_out / f"{i:02d}.time").read_text().split()) if rc != -1 else (0.0, 0.0)
        if rc != 0:
            err = (arm_out / f"{i:02d}.stderr").read_text().strip().splitlines() if rc != -1 else ["not run"]
            report.step(False, f"{tag}: {name}", f"exit {rc}: {err[-1] if err else ''}", t1 - t0)
            continue
        if name.startswith("bench"):
            rows = json.loads((arm_out / f"{i:02d}.stdout").read_text())
            detail = ", ".join(f"{Path(r['model']).name} p50 {r['latency_ms']['p50']:.1f} ms (emulated)"
                               for r in rows)
            report.step(bool(rows), f"{tag}: {name}", detail, t1 - t0)
            continue
        ok, detail = compare(predictions(host_out, i, name), predictions(arm_out, i, name) or {})
        report.step(ok, f"{tag}: {name}", detail, t1 - t0)


# ----------------------------------------------------------------------------------------------- targets
def install(report: Report, t: Target, root: Path, log: Path) -> bool:
    """Fresh source copy and venv, then the docs recipe as written; then --help and info --system."""
    home = root / "root"
    shutil.rmtree(home / "edgecnn", ignore_errors=True)
    shutil.rmtree(home / VENV.removeprefix("~/"), ignore_errors=True)
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for f in filter(None, files):
        if (REPO / f).is_file():
            (home / "edgecnn" / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, home / "edgecnn" / f)
    start = time.time()
    p = run_in(root, f"cd ~\n{recipe(t.recipe)}", t.qemu_cpu, t.mixed, log=log)
    tail = (p.stdout + p.stderr).strip().splitlines()
    if not report.step(p.returncode == 0, f"{t.name}: install (docs recipe {t.recipe})",
                       "" if p.returncode == 0 else f"exit {p.returncode}: {tail[-1] if tail else ''}",
                       time.time() - start):
        return False
    start = time.time()
    p = run_in(root, f". {VENV}/bin/activate\nedgecnn --help >/dev/null\nedgecnn info --system --json\n"
                     "(ldconfig -p | grep -q 'libGL.so.1 ' && echo libGL.so.1=present || echo libGL.so.1=absent)\n"
                     "uname -m; python3 -c 'import platform, struct; print(platform.machine(), 8 * struct.calcsize(\"P\"))'",
               t.qemu_cpu, t.mixed, log=log)
    ok, detail = p.returncode == 0, f"exit {p.returncode}"
    if ok:
        info = json.loads(next(line for line in p.stdout.splitlines() if line.startswith("{")))
        got = (info["userland"]["description"], info["interpreter"]["name"], info["opencv"]["version"])
        ok = got[0] == t.userland and got[1] == t.backend and got[2] is not None
        detail = (f"userland {got[0]!r}, {got[1]} {info['interpreter']['version']}, numpy {info['numpy']['version']}, "
                  f"OpenCV {got[2]} ({info['opencv'].get('distribution')}); {p.stdout.split()[-4]}; "
                  f"uname -m {p.stdout.split()[-3]}")
    report.step(ok, f"{t.name}: --help, info --system", detail, time.time() - start)
    return True


def device_tests(report: Report, t: Target, root: Path, log: Path) -> None:
    """The default test suite (no TensorFlow in the userland: its tests must skip cleanly), with pytest added."""
    start = time.time()
    # The test extra's pure-Python parts (playwright has no 32-bit Arm wheel; its browser tests skip without it).
    p = run_in(root, f". {VENV}/bin/activate\npip install --quiet 'pytest>=7.4' 'hypothesis>=6.100' 'paho-mqtt>=2.0'\n"
                     f"cd {SOURCE}\n"
                     "PYTHONPATH=/opt/edgecnn-check python -m pytest -q -p no:cacheprovider -p skip_without_tf -rfE "
                     "2>&1", t.qemu_cpu, t.mixed, log=log)
    last = [line for line in p.stdout.splitlines() if re.search(r"\d+ (passed|failed|error)", line)]
    summary = last[-1].strip("= ") if last else "no pytest summary"
    report.step(p.returncode == 0 and "failed" not in summary and "error" not in summary,
                f"{t.name}: device test suite", summary, time.time() - start)


def run_target(report: Report, t: Target, cache: Path, work: Path, cmds, host_out: Path, tests: bool,
               host_first: tuple | None = None) -> None:
    """Userland, install, the docs' first-run block, tests and the compared commands for one target."""
    log = cache / f"{t.name}.log"
    log.write_text("")
    start = time.time()
    try:
        root, how = build_userland(t, cache)
    except (subprocess.CalledProcessError, OSError) as e:
        report.step(False, f"{t.name}: userland {t.userland_dir}", str(e), time.time() - start)
        return
    report.step(True, f"{t.name}: userland {t.userland_dir}", f"{how}, {_du(root)}", time.time() - start)
    if not install(report, t, root, log):
        return
    arm_first_run(report, t, root, log, host_first)
    if tests:
        device_tests(report, t, root, log)
    shutil.rmtree(root / WORK.lstrip("/"), ignore_errors=True)
    shutil.copytree(work, root / WORK.lstrip("/"), ignore=shutil.ignore_patterns("out", FIRST_RUN_HOME))
    run_in(root, f". {VENV}/bin/activate\ncd {WORK}\n{command_script(cmds)}", t.qemu_cpu, t.mixed, log=log)
    check_outputs(report, t.name, cmds, host_out, root / WORK.lstrip("/") / "out")


def host_reference(report: Report, work: Path, cmds) -> Path:
    """Run the commands with this host's edgecnn (the project's venv) for the reference answers."""
    start = time.time()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    subprocess.run(["bash", "-c", command_script(cmds)], cwd=work, env=env, check=True)
    rcs = [int((work / "out" / f"{i:02d}.rc").read_text()) for i in range(len(cmds))]
    report.step(all(rc == 0 for rc in rcs), "host: reference run",
                ", ".join(f"{n} exit {rc}" for (n, _), rc in zip(cmds, rcs) if rc) or
                f"{len(cmds)} commands with {Path(sys.executable).parent / 'edgecnn'}", time.time() - start)
    return work / "out"


def photo_model_path(cache: Path, given: Path | None, report: Report) -> Path | None:
    """--photo-model, else a 224x224 uint8 model built once with tools/build_photo_model.py into the cache."""
    if given is not None:
        return given
    out = cache / "photo224_uint8.tflite"
    builder = REPO / "tools" / "build_photo_model.py"
    if not out.exists() and builder.exists():
        start = time.time()
        p = subprocess.run(["nice", "-n", "10", sys.executable, str(builder), "-o", str(out)], capture_output=True,
                           text=True)
        report.step(p.returncode == 0, "host: build 224-px photo model", (p.stderr.strip().splitlines() or [""])[-1],
                    time.time() - start)
    return out if out.exists() else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("EDGECNN_ARM_CACHE", "/var/cache/edgecnn-arm")),
                    help="Folder for the userlands and logs (outside git). Default: %(default)s")
    ap.add_argument("--targets", default=",".join(DEFAULT_TARGETS),
                    help=f"Comma-separated, of {', '.join(TARGETS)}. Default: %(default)s")
    ap.add_argument("--photo-model", type=Path, default=None,
                    help="A 224x224 image-classifier .tflite. Default: built with tools/build_photo_model.py.")
    ap.add_argument("--skip-tests", action="store_true", help="Do not run the device test suite in the userlands.")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    if unknown := [n for n in names if n not in TARGETS]:
        ap.error(f"unknown target(s) {', '.join(unknown)}: expected {', '.join(TARGETS)}")
    if os.geteuid() != 0:
        ap.error("needs root (mmdebstrap, chroot, mounts)")
    for tool in ("mmdebstrap", "unshare", "chroot") + (("arm-linux-gnueabihf-gcc",) if "armhf" in args.targets else ()):
        if shutil.which(tool) is None:
            ap.error(f"{tool} not found: apt-get install mmdebstrap qemu-user-static binfmt-support "
                     "gcc-arm-linux-gnueabihf")
    start, report = time.time(), Report()
    args.cache.mkdir(parents=True, exist_ok=True)
    work = args.cache / f"work-{'-'.join(names)}"  # per target list: runs for other targets can go on meanwhile
    shutil.rmtree(work, ignore_errors=True)
    photo = photo_model_path(args.cache, args.photo_model, report)
    missing = prepare_inputs(work, photo)
    report.step(not missing, "host: inputs", "; ".join(f"missing {m}" for m in missing) or
                f"{FM_IMAGES} Fashion-MNIST PNGs, {PHOTO_IMAGES} photos, {VIDEO_FRAMES}-frame mp4, 2 models")
    cmds = commands(photo=not missing)
    host_out = host_reference(report, work, cmds)
    host_first = host_first_run(report, work)
    for n in names:
        run_target(report, TARGETS[n], args.cache, work, cmds, host_out, tests=not args.skip_tests,
                   host_first=host_first)
    return report.total(time.time() - start, args.cache)


if __name__ == "__main__":
    sys.exit(main())
