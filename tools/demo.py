"""The main job end to end on the real Fashion-MNIST sample shipped in models/ (what `make demo` runs).

train briefly -> quantize to int8 (float-vs-int8 report) -> camera loop on a 640x480 video made from real test
images -> latency summary and accuracy of the camera's answers. Needs edgecnn[train]; no dataset installed, no
network. Outputs go to demo-out/ (or --out); a folder this script did not make is never touched.

    python tools/demo.py [--out demo-out] [--epochs 5]
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "models" / "fashion_mnist_sample"
MARKER = ".edgecnn-demo"


def step(title: str) -> None:
    click.secho(f"\n== {title}", bold=True)


def run(*args: str, capture: bool = False) -> str:
    """Run `python -m edgecnn ARGS` (or a tools/ script), echoing the command; exit on failure."""
    cmd = [sys.executable, *args] if args[0].endswith(".py") else [sys.executable, "-m", "edgecnn", *args]
    shown = " ".join(["edgecnn", *args] if cmd[1] == "-m" else ["python", *args])
    click.secho(f"$ {shown}", fg="cyan")
    p = subprocess.run(cmd, cwd=ROOT, text=True, stdout=subprocess.PIPE if capture else None)
    if p.returncode != 0:
        raise click.ClickException(f"step failed (exit {p.returncode}): {shown}")
    return p.stdout or ""


def fresh_outdir(out: Path) -> None:
    """Create ``out``; an existing one is replaced only if an earlier demo made it (it holds the marker file)."""
    if out.exists():
        if not (out / MARKER).exists():
            raise click.ClickException(f"{out} exists and was not made by this demo; pass another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by tools/demo.py; the next demo run replaces this folder\n")


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=ROOT / "demo-out",
              show_default=True, help="Folder for everything the demo writes.")
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True,
              help="Training epochs on the 3,600-image training part of the sample.")
def main(out: Path, epochs: int) -> None:
    """Train -> quantize -> camera -> latency on the shipped real Fashion-MNIST sample."""
    t0 = time.perf_counter()
    fresh_outdir(out)
    data = f"fashion-mnist:{SAMPLE.relative_to(ROOT)}"
    rel = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out

    step(f"1/4 Train a ResNet-8 briefly ({epochs} epochs) on the shipped 4,000-image sample. This is a short demo "
         f"run, so expect roughly 75-85% top-1, not the shipped model's accuracy (models/fashion_mnist/, full dataset).")
    run("train", data, "-o", f"{rel}/model", "--epochs", str(epochs))

    step("2/4 Quantize to full-integer int8 and compare with float on the sample's 1,000 test images")
    report = json.loads(run("quantize", f"{rel}/model", "--data", data, "-o", f"{rel}/int8.tflite",
                            "--float-out", f"{rel}/float32.tflite", "--json", capture=True))
    sizes = report["sizes"]
    click.echo(f"top-1 on {report['n']} test images: float {report['float']['accuracy']:.1%}, "
               f"int8 {report['int8']['accuracy']:.1%} (drop {report['drop_pp']:.2f} points, "
               f"top-1 agreement {report['agreement']:.1%}); int8 file {sizes['int8_bytes']:,} bytes = "
               f"{sizes['int8_to_float32']:.2f}x float32; report: {rel}/int8_report.json")
    run("info", f"{rel}/int8.tflite")

    step("3/4 Camera loop on a 640x480 video made from 100 real test images (3 frames each)")
    run("tools/make_video.py", "make", f"{rel}/test.mp4", "--idx", str(SAMPLE.relative_to(ROOT)),
        "--count", "100", "--hold", "3")
    summary = json.loads(run("camera", f"{rel}/int8.tflite", "--source", f"{rel}/test.mp4", "--headless",
                             "--log", f"{rel}/frames.jsonl", "--record", f"{rel}/annotated.mp4", "--json",
                             capture=True))
    run("tools/make_video.py", "score", f"{rel}/frames.jsonl", f"{rel}/test.labels.csv")

    step("4/4 Latency summary of the camera loop (ms per frame)")
    stages = summary["stages_ms"]
    click.echo(f"{'stage':<12}{'p50':>9}{'p90':>9}{'p99':>9}{'mean':>9}")
    for name, s in stages.items():
        click.echo(f"{name:<12}{s['p50']:>9.3f}{s['p90']:>9.3f}{s['p99']:>9.3f}{s['mean']:>9.3f}")
    click.echo(f"{summary['frames']} frames at {summary['fps']:.1f} frames/s, {summary['dropped']} dropped; "
               f"backend {summary['backend']}, {summary['threads']} thread(s)")
    run("bench", f"{rel}/float32.tflite", f"{rel}/int8.tflite", "--threads", "1", "--runs", "300")
    click.secho(f"\nDone in {time.perf_counter() - t0:.0f} s. Outputs in {rel}/ "
                f"(model, int8.tflite + report, annotated.mp4, frames.jsonl).", bold=True)


if __name__ == "__main__":
    main()
