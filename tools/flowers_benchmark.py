"""The flowers5 measurement: an ImageNet-pretrained MobileNetV2, fine-tuned, against a ResNet-8 trained from scratch,
float vs int8 top-1 on the fixed test split, file sizes, MACs and training time, in one run on this machine.

    python tools/flowers_benchmark.py --weights ../shared/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5

flowers5 (``../shared/data/flowers5``, 5 classes x 600 photos) has a fixed split: the **test** images are the
files whose number is divisible by 5 (120 per class); training and validation use the other 2,400. The script
links the two halves into ``OUT/split/{train,test}/<class>/`` (symbolic links, nothing copied), a layout edgecnn
reads as an image folder with its own test split, then runs the user's commands as a subprocess each:

    edgecnn train OUT/split -o OUT/<model> ...                 (timed; validation drawn from train/)
    edgecnn quantize OUT/<model> --data OUT/split -o OUT/<model>_int8.tflite --float-out OUT/<model>_float32.tflite
    edgecnn evaluate OUT/<model>_float32.tflite OUT/split --json

``quantize`` reports the Keras float model and the int8 .tflite on the test split (the 600 photos); ``evaluate``
adds the float32 .tflite. The script prints one table (top-1 on the test photos, int8 drop in points, file sizes,
parameters, MACs, training time); ``OUT/results.json`` holds the same with the machine description and every
command line. Command output goes to ``OUT/<model>.log``.

Goals this measures (README, "Train on your own photos"): int8 top-1 >= 0.88 at <= 160 px with alpha 0.35, int8
drop <= 1.0 point, int8 file <= 1 MB.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import click

from shared_data import FLOWERS5, MOBILENETV2_035_WEIGHTS  # noqa: E402  (tools/ is on sys.path)
WEIGHTS = MOBILENETV2_035_WEIGHTS
#: Every file whose number is divisible by this is a test image (flowers5 README).
TEST_EVERY = 5


def link_split(data: Path, out: Path) -> tuple[Path, Path]:
    """Symlink DATA/<class>/NNNN.* into out/train and out/test by the fixed rule; returns (train, test) roots.

    Raises click.ClickException when a file name has no number or a class ends up empty.
    """
    train, test = out / "train", out / "test"
    for cls in sorted(p for p in data.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(cls.iterdir()):
            if not f.is_file():
                continue
            if not f.stem.isdigit():
                raise click.ClickException(f"{f}: expected a numbered file name (NNNN.jpg) for the fixed split")
            dest = (test if int(f.stem) % TEST_EVERY == 0 else train) / cls.name / f.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not dest.is_symlink():
                dest.symlink_to(f.resolve())
    for root in (train, test):
        if not root.is_dir() or not any(root.iterdir()):
            raise click.ClickException(f"{data}: no images for {root.name}")
    return train, test


def edgecnn(args: list[str], log: Path, json_out: bool = False) -> tuple[float, dict | None]:
    """Run ``python -m edgecnn ARGS``; append its output to ``log``. Returns (seconds, last stdout line as JSON).

    Raises click.ClickException naming the command and the log when it fails.
    """
    cmd = [sys.executable, "-m", "edgecnn", *args]
    t0 = time.perf_counter()
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd[2:]) + "\n")
        f.flush()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=f, text=True)
        f.write(p.stdout)
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        raise click.ClickException(f"{' '.join(cmd[2:4])} failed (exit {p.returncode}); see {log}")
    return seconds, (json.loads(p.stdout.strip().splitlines()[-1]) if json_out else None)


def measure(name: str, train_args: list[str], data: Path, out: Path, reuse: bool) -> dict:
    """Train (unless ``reuse`` and OUT/name exists), quantize, and evaluate one model on the test split."""
    run, log = out / name, out / f"{name}.log"
    int8, f32 = out / f"{name}_int8.tflite", out / f"{name}_float32.tflite"
    train_cmd = ["train", str(data), "-o", str(run), "--force", *train_args]
    reused = reuse and (run / "model.keras").is_file()
    if not reused:
        log.write_text("")
        edgecnn(train_cmd, log)
    report = json.loads((run / "train_report.json").read_text())
    q_cmd = ["quantize", str(run), "--data", str(data), "-o", str(int8), "--float-out", str(f32), "--overwrite",
             "--json"]
    q_s, q = edgecnn(q_cmd, log, json_out=True)
    _, ev = edgecnn(["evaluate", str(f32), str(data), "--json"], log, json_out=True)
    if q["split"] != "test" or ev["split"] != "test":
        raise click.ClickException(f"{data}: expected edgecnn to find the test/ split, got {q['split']}")
    return {"name": name, "train_command": "edgecnn " + " ".join(train_cmd), "reused": reused,
            "quantize_command": "edgecnn " + " ".join(q_cmd), "arch": report["arch"], "width": report["width"],
            "input": f"{report['input']['height']}x{report['input']['width']}", "params": report["params"],
            "macs": report["macs"], "train_s": report["wall_time_s"], "quantize_s": round(q_s, 1),
            "phases": report.get("phases"), "best_val_accuracy": report["best_val_accuracy"],
            "int8_bytes": q["sizes"]["int8_bytes"], "float32_bytes": q["sizes"]["float32_bytes"],
            "fully_integer": not q["float_ops"], "agreement": q["agreement"],
            "keras": {"top1": q["float"]["accuracy"], "n": q["n"], "per_class": q["float"]["per_class"]},
            "int8": {"top1": q["int8"]["accuracy"], "n": q["n"], "per_class": q["int8"]["per_class"]},
            "float32": {"top1": ev["accuracy"], "n": ev["n"]},
            "drop_pp": q["drop_pp"]}


def table(rows: list[dict]) -> str:
    """The results as a fixed-width text table."""
    head = (f"{'model':<28} {'input':>7} {'params':>8} {'MACs':>6} {'Keras':>7} {'f32 tfl':>7} {'int8':>7} "
            f"{'drop':>6} {'int8 file':>10} {'f32 file':>10} {'train':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['name']:<28} {r['input']:>7} {r['params'] / 1e3:>7.0f}k {r['macs'] / 1e6:>5.1f}M "
                     f"{100 * r['keras']['top1']:>6.2f}% {100 * r['float32']['top1']:>6.2f}% "
                     f"{100 * r['int8']['top1']:>6.2f}% {r['drop_pp']:>5.2f}p {r['int8_bytes']:>10,} "
                     f"{r['float32_bytes']:>10,} {r['train_s'] / 60:>5.1f}mn")
    n = rows[0]["int8"]["n"] if rows else 0
    lines.append(f"top-1 on the {n} fixed flowers5 test photos (numbers divisible by {TEST_EVERY}); drop = Keras "
                 "float minus int8, in points; train = wall time of edgecnn train")
    return "\n".join(lines)


def machine() -> dict:
    """CPU model, cores available, Python and platform: what the timings depend on."""
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "python": platform.python_version(),
            "platform": platform.platform(), "load_avg_1m_at_start": os.getloadavg()[0]}


@click.command()
@click.option("--data", type=click.Path(file_okay=False, exists=True, path_type=Path), default=FLOWERS5,
              show_default=True, help="flowers5: <class>/NNNN.jpg.")
@click.option("--weights", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=WEIGHTS,
              show_default=True, help="ImageNet MobileNetV2 no-top .h5 for --alpha.")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("flowers-bench"),
              show_default=True, help="Working folder (split links, models, logs, results.json).")
@click.option("--img-size", type=click.IntRange(32, 224), default=160, show_default=True,
              help="Square input size of the MobileNetV2.")
@click.option("--alpha", type=click.Choice(["0.35", "0.5", "0.75", "1.0"]), default="0.35", show_default=True)
@click.option("--resnet8-epochs", type=click.IntRange(min=0), default=20, show_default=True,
              help="Epochs of the from-scratch ResNet-8 (0 = leave it out).")
@click.option("--resnet8-size", type=click.IntRange(32, 224), default=96, show_default=True,
              help="Input size of the ResNet-8. With --resnet8-width 0.5 at 96 px it costs 29M MACs, about what "
                   "MobileNetV2 alpha 0.35 costs at 160 px (30M): the same compute budget. At width 1 and 160 px it "
                   "costs 314M MACs, an epoch took ~17 minutes here.")
@click.option("--resnet8-width", type=click.FloatRange(min=0.05), default=0.5, show_default=True)
@click.option("--extra", default="", help="More `edgecnn train` options for the MobileNetV2 run (one string).")
@click.option("--reuse", is_flag=True, help="Keep an already trained OUT/<model> (re-quantize and re-evaluate).")
def main(data: Path, weights: Path, out: Path, img_size: int, alpha: str, resnet8_epochs: int, resnet8_size: int,
         resnet8_width: float, extra: str, reuse: bool) -> None:
    """Run the flowers5 benchmark and print the table (see the module docstring)."""
    out.mkdir(parents=True, exist_ok=True)
    link_split(data, out / "split")
    runs = [(f"mobilenetv2_{alpha}_pretrained", ["--arch", "mobilenetv2", "--alpha", alpha, "--pretrained",
                                                  "imagenet", "--weights", str(weights), "--img-size", str(img_size),
                                                  *extra.split()])]
    if resnet8_epochs:
        runs.append(("resnet8_scratch", ["--arch", "resnet8", "--width", str(resnet8_width), "--augment", "photo",
                                         "--epochs", str(resnet8_epochs), "--img-size", str(resnet8_size)]))
    info = machine()
    rows = []
    for name, args in runs:
        click.echo(f"{name}: training and measuring (log: {out / (name + '.log')})", err=True)
        rows.append(measure(name, args, out / "split", out, reuse))
    (out / "results.json").write_text(json.dumps({"machine": info, "data": str(data), "results": rows}, indent=2)
                                      + "\n")
    click.echo(table(rows))
    click.echo(f"machine: {info['cpu']}, {info['cores']} cores (load {info['load_avg_1m_at_start']:.1f} at start); "
               f"details in {out / 'results.json'}")


if __name__ == "__main__":
    main()
