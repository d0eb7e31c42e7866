"""Label files <-> ``list[str]``, and fitting labels to a model's output size: every label file edgecnn reads or
writes goes through here.

Accepted forms, one label per line (blank lines ignored):
plain ``label``; ``index label``; ``index: label``; ``index,label``.
A file is read as indexed only when every line starts with an index and the indices are distinct and mostly
dense (largest index < 2 x number of lines), so plain labels such as "101 dalmatians" stay plain. Files that are
plain by contract (``labels.txt`` of a training OUTDIR or of an IDX folder) are read with ``plain=True``.
edgecnn writes plain files (:func:`write_labels`).
"""

from __future__ import annotations

import re
from pathlib import Path

from edgecnn.errors import LabelsError
from edgecnn.outputs import write_text

_INDEXED = re.compile(r"^\s*(\d+)\s*(?:[:,]\s*|\s+)(.*?)\s*$")

#: Label given to index 0 when the label list is one shorter than the output (a leading background class).
BACKGROUND = "background"


def parse_labels(text: str, name: str = "<labels>", plain: bool = False) -> list[str | None]:
    """Parse the text of a label file; ``plain``: every non-blank line is one label, no index forms.

    Returns:
        labels by index; indices missing from an indexed file are None.
    Raises:
        LabelsError: no labels, or an index given twice.
    """
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise LabelsError(f"{name}: no labels found, expected one label per line")
    if plain:
        return list(lines)
    matches = [_INDEXED.match(ln) for ln in lines]
    if not all(m and m.group(2) for m in matches):
        return list(lines)
    indices = [int(m.group(1)) for m in matches]
    if max(indices) >= 2 * len(lines):
        return list(lines)
    out: dict[int, str] = {}
    for i, m in zip(indices, matches):
        if i in out:
            raise LabelsError(f"{name}: index {i} appears twice")
        out[i] = m.group(2)
    return [out.get(i) for i in range(max(out) + 1)]


def read_labels(path: str | Path, plain: bool = False) -> list[str | None]:
    """Read a label file (UTF-8). See :func:`parse_labels`.

    Raises:
        LabelsError: the file cannot be read or holds no labels.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise LabelsError(f"{path}: cannot read label file ({e})") from None
    return parse_labels(text, str(path), plain)


def fit_labels(labels: list[str | None], n_outputs: int, name: str = "labels") -> list[str | None]:
    """Align labels with a model output of ``n_outputs`` classes.

    ``n_outputs`` labels are used as they are; ``n_outputs - 1`` labels mean the model has a leading background
    class (as the TF/Coral ImageNet MobileNets with 1001 outputs do): index 0 becomes :data:`BACKGROUND`; an indexed
    file numbered 1..N for N outputs (:func:`is_one_based`) is numbered from 0 instead.

    Raises:
        LabelsError: any other count, naming both numbers.
    """
    if is_one_based(labels, n_outputs):
        return list(labels[1:])
    if len(labels) == n_outputs:
        return list(labels)
    if len(labels) == n_outputs - 1:
        return [BACKGROUND, *labels]
    raise LabelsError(f"{name} has {len(labels)} entries, model outputs {n_outputs} classes "
                      f"(expected {n_outputs}, or {n_outputs - 1} plus a leading background class)")


def is_one_based(labels: list[str | None], n_outputs: int) -> bool:
    """True for an indexed label file numbered 1..N for a model with N outputs (index 0 absent, every other present),
    which :func:`fit_labels` shifts to 0..N-1."""
    return len(labels) == n_outputs + 1 and labels[0] is None and all(x is not None for x in labels[1:])


def format_labels(labels: list[str]) -> str:
    """Plain one-label-per-line text, the form edgecnn writes (``labels.txt``)."""
    return "".join(f"{label}\n" for label in labels)


def write_labels(path: str | Path, labels: list[str]) -> None:
    """Write ``labels`` as a plain label file (:func:`format_labels`) through :func:`edgecnn.outputs.write_text`.

    Raises:
        OSError: the file cannot be written.
    """
    write_text(path, format_labels(labels))
