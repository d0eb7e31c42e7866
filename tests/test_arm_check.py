"""The pieces of tools/test_arm.py that need no ARM userland: the docs recipes it runs, and how it compares
predictions with the host's. (The emulated run itself is `make test-arm`.)"""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def arm():
    spec = importlib.util.spec_from_file_location("test_arm_tool", ROOT / "tools" / "test_arm.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["test_arm_tool"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_every_target_has_its_recipe_in_the_docs(arm):
    extras = {"pi64": "[litert,opencv]", "pi64-apt": "[litert]", "pi32": "[tflite-runtime]"}
    for t in arm.TARGETS.values():
        block = arm.recipe(t.recipe)
        assert f'pip install "./edgecnn{extras[t.recipe]}"' in block
        if "--system-site-packages" in block:  # apt's numpy must not be shadowed by a pip NumPy 2
            assert '"numpy<2"' in block or "tflite-runtime" in block
        assert "--break-system-packages" not in block and "sudo pip" not in block
        # apt's numpy/OpenCV are only visible from a venv made with --system-site-packages
        assert ("python3-opencv" in block) == ("--system-site-packages" in block)


def test_recipe_errors_name_the_doc(arm, tmp_path):
    doc = tmp_path / "pi.md"
    doc.write_text("<!-- test-arm: x -->\n```sh\npython3 -m venv ~/elsewhere\n```\n")
    with pytest.raises(SystemExit, match="does not make its venv"):
        arm.recipe("x", doc)
    with pytest.raises(SystemExit, match="no ```sh block"):
        arm.recipe("y", doc)


def test_compare(arm):
    host = {"a.png": {0: 0.9, 1: 0.1}, "b.png": {2: 0.6, 0: 0.4}}
    ok, detail = arm.compare(host, {"a.png": {0: 0.875, 1: 0.125}, "b.png": {2: 0.6, 0: 0.4}})
    assert ok and "2/2" in detail and "0.0250" in detail
    ok, detail = arm.compare(host, {"a.png": {0: 0.9, 1: 0.1}, "b.png": {2: 0.4, 0: 0.6}})
    assert not ok and "1/2" in detail and "DIFFERENT: b.png" in detail
    # a near-tie that flips (x86 and Arm int8 kernels round differently) is listed, not failed
    ok, detail = arm.compare({"c.png": {6: 0.52, 2: 0.457}}, {"c.png": {2: 0.488, 6: 0.488}})
    assert ok and "0/1" in detail and "near-ties: c.png" in detail
    # a video frame decoded slightly differently: ambiguous on both sides, mirrored
    assert arm.compare({"33": {7: 0.531, 9: 0.469}}, {"33": {9: 0.531, 7: 0.469}})[0]
    # clear on one side: not a near-tie
    assert not arm.compare({"d.png": {6: 0.70, 2: 0.30}}, {"d.png": {2: 0.50, 6: 0.49}})[0]
    assert not arm.compare(host, {"a.png": {0: 1.0}})[0]  # a missing image is a failure
    assert not arm.compare({}, {})[0]                      # so is no result at all


def test_command_script_keeps_every_exit_code(arm, tmp_path):
    import subprocess

    script = arm.command_script([("ok", "echo hi"), ("bad", "false"), ("after", "echo still")])
    subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, check=True)
    rcs = [(tmp_path / "out" / f"{i:02d}.rc").read_text().strip() for i in range(3)]
    assert rcs == ["0", "1", "0"] and (tmp_path / "out" / "02.stdout").read_text() == "still\n"


def test_first_run_block_and_its_classify_output(arm):
    block = arm.recipe(arm.FIRST_RUN)
    assert block.startswith("cd ~\n") and f". {arm.VENV}/bin/activate" in block
    assert "edgecnn classify " in block and "make_video.py score fm.jsonl" in block
    text = ("edgecnn/models/x/images/000_ankle-boot.png: Ankle boot (0.996), T-shirt/top (0.000), Trouser (0.000)  "
            "[0.24 ms]\nWarning: something\nb/027_t-shirt-top.png: Shirt (0.492), T-shirt/top (0.434)  [1.07 ms]\n")
    assert arm.parse_classify_text(text) == {
        "000_ankle-boot.png": {"Ankle boot": 0.996, "T-shirt/top": 0.0, "Trouser": 0.0},
        "027_t-shirt-top.png": {"Shirt": 0.492, "T-shirt/top": 0.434}}
