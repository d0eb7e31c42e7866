"""The workstation's reports: the training curve, the float-vs-int8 confusion matrices and the quantize summary
[train extra]. Pure functions of the report dicts; matplotlib is imported by the plots only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_curve(history: list[dict], best_epoch: int, path: str | Path, title: str = "") -> None:
    """Write loss and accuracy per epoch (train and validation) as a PNG; the best epoch is marked.

    Args:
        history: one dict per epoch with ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``.
        best_epoch: 1-based epoch number whose weights were kept.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    starts = [h for i, h in enumerate(history) if "phase" in h and (i == 0 or history[i - 1].get("phase") != h["phase"])]
    for h in starts[1:]:  # phase boundaries (transfer learning: head, then fine-tune)
        for a in (a1, a2):
            a.axvline(h["epoch"] - 0.5, color="tab:red", alpha=0.4, linestyle="--")
            a.text(h["epoch"] - 0.4, 0.02, h["phase"], transform=a.get_xaxis_transform(), color="tab:red",
                   fontsize=8)
    a1.plot(ep, [h["loss"] for h in history], label="train")
    a1.plot(ep, [h["val_loss"] for h in history], label="validation")
    a1.set_xlabel("epoch")
    a1.set_ylabel("loss (cross-entropy + L2)")
    a1.legend()
    a2.plot(ep, [100 * h["accuracy"] for h in history], label="train (augmented)")
    a2.plot(ep, [100 * h["val_accuracy"] for h in history], label="validation")
    a2.axvline(best_epoch, color="grey", linestyle=":", label=f"best (epoch {best_epoch})")
    a2.set_xlabel("epoch")
    a2.set_ylabel("top-1 accuracy (%)")
    a2.legend()
    for a in (a1, a2):
        a.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusions(mats: dict[str, np.ndarray], labels: list[str], path: str | Path) -> None:
    """Write side-by-side confusion matrices (rows true, columns predicted; colour = row share) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(labels)
    fig, axes = plt.subplots(1, len(mats), figsize=(1.2 + 0.55 * n * len(mats) + 2, 0.55 * n + 2), squeeze=False)
    for ax, (title, m) in zip(axes[0], mats.items()):
        m = np.asarray(m)
        rows = np.maximum(m.sum(axis=1, keepdims=True), 1)
        ax.imshow(m / rows, cmap="Blues", vmin=0, vmax=1)
        if n <= 20:
            for i in range(n):
                for j in range(n):
                    if m[i, j]:
                        ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                                color="white" if m[i, j] / rows[i, 0] > 0.5 else "black")
        ax.set_xticks(range(n), labels, rotation=90, fontsize=8)
        ax.set_yticks(range(n), labels, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def report_paths(out: str | Path) -> tuple[Path, Path]:
    """(report JSON, confusion PNG) written beside MODEL.tflite: ``<stem>_report.json``, ``<stem>_confusion.png``."""
    out = Path(out)
    return out.with_name(out.stem + "_report.json"), out.with_name(out.stem + "_confusion.png")


def summary(report: dict) -> str:
    """Human-readable lines for a quantize report."""
    s = report["sizes"]
    f, q = report["float"], report["int8"]
    lines = [f"{report['model']}: {s['int8_bytes']:,} bytes ({100 * s['int8_to_float32']:.1f}% of the float32 "
             f".tflite, {s['float32_bytes']:,} bytes); input {report['input']['dtype']} "
             f"scale={report['input']['scale']:.6g} zero_point={report['input']['zero_point']}",
             f"{report['split']} split, {report['n']} images:",
             f"  float Keras  top-1 {100 * f['accuracy']:.2f}%  top-{f['top_k']['k']} "
             f"{100 * f['top_k']['accuracy']:.2f}%",
             f"  int8 TFLite  top-1 {100 * q['accuracy']:.2f}%  top-{q['top_k']['k']} "
             f"{100 * q['top_k']['accuracy']:.2f}%",
             f"  drop {report['drop_pp']:.2f} points (one image = {report['one_image_pp']:.2f} points), "
             f"top-1 agreement {100 * report['agreement']:.2f}%"]
    w = max(len(k) for k in f["per_class"])
    lines.append(f"  {'class':<{w}}  float   int8")
    for k in f["per_class"]:
        a, b = f["per_class"][k], q["per_class"][k]
        lines.append(f"  {k:<{w}}  " + "  ".join(f"{100 * v:5.1f}" if v is not None else "    -" for v in (a, b)))
    return "\n".join(lines)


def quantize_report(targets, tm, spec: str, split: str, opts, check: dict, fm: dict, qm: dict, agreement: float,
                    warnings: list[str], calibration: dict, split_record: dict, sizes: tuple[int, int]) -> dict:
    """The quantize report (see :func:`edgecnn.train.convert.quantize` for the keys; ``seconds`` is added by the
    caller when everything is written).

    Args:
        targets: :class:`edgecnn.train.convert.Targets`; tm: :class:`edgecnn.train.outdir.TrainedModel`.
        check: :func:`edgecnn.train.convert.verify_integer`'s result; fm, qm: float and int8
            :func:`edgecnn.train.evaluate.metrics`; agreement: top-1 agreement 0..1.
        warnings: collapse warnings so far (float ops left are added here).
        calibration: {split, n, per_class}; split_record: {seed, val_split, preprocessing}.
        sizes: (int8 bytes, float32 bytes) of the .tflite files.
    """
    warnings = list(warnings)
    if check["float_ops"]:
        warnings.append(f"float ops left (allowed by --allow-float): {', '.join(check['float_ops'])}")
    drop = 100.0 * (fm["accuracy"] - qm["accuracy"])
    n = int(fm["n"])
    int8_bytes, float_bytes = sizes
    return {
        "model": str(targets.model), "float_model": str(tm.path), "data": spec, "split": split, "n": n,
        "io": opts.io, "calibration": calibration, **split_record,
        "input": check["input"], "output": check["output"], "operators": check["operators"],
        "float_ops": check["float_ops"],
        "float": fm, "int8": qm,
        "agreement": agreement,
        "drop_pp": round(drop, 3), "one_image_pp": round(100.0 / max(n, 1), 3),
        "sizes": {"int8_bytes": int8_bytes, "float32_bytes": float_bytes, "keras_bytes": tm.path.stat().st_size,
                  "int8_to_float32": round(int8_bytes / float_bytes, 4)},
        "params": tm.report.get("params"), "macs": tm.report.get("macs"),
        "warnings": warnings, "max_drop": opts.max_drop, "passed": opts.max_drop is None or drop <= opts.max_drop,
    }


def plot_quantize_confusions(report: dict, labels: list[str], path: str | Path) -> None:
    """The float and int8 confusion matrices of a quantize report side by side, as a PNG at ``path``."""
    fm, qm = report["float"], report["int8"]
    plot_confusions({f"float Keras ({100 * fm['accuracy']:.2f}%)": np.array(fm["confusion"]),
                     f"int8 TFLite ({100 * qm['accuracy']:.2f}%)": np.array(qm["confusion"])}, labels, path)
