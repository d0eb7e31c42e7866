"""Image file discovery: turn command-line paths, folders and globs into a sorted list of image files."""

from __future__ import annotations

import glob
from pathlib import Path

from edgecnn.config import IMAGE_SUFFIXES


def is_image_path(path: Path) -> bool:
    """True when the file name ends in one of :data:`edgecnn.config.IMAGE_SUFFIXES` (case-insensitive)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def expand_images(specs: list[str] | tuple[str, ...]) -> list[Path]:
    """Expand each spec: a folder gives its image files (recursively, sorted); a path that exists is kept as it is
    (even with ``[`` or ``*`` in its name); a glob pattern gives its matching image files (sorted); a pattern that
    matches nothing, and any other missing path, is kept as given so that reading it reports it. Duplicates are
    removed, order kept.
    """
    out: list[Path] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.is_file() and is_image_path(q)))
        elif p.exists() or not glob.has_magic(spec):
            out.append(p)
        else:
            matches = sorted(Path(q) for q in glob.glob(spec, recursive=True))
            files = [q for q in matches if q.is_file() and is_image_path(q)]
            out.extend(files if matches else [p])
    return list(dict.fromkeys(out))
