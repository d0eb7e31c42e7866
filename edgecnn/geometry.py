"""Frame geometry for a mounted camera: rotation (``--rotate``) and the region of interest (``--roi``).

Rotation turns the whole frame (what is classified, drawn, recorded and served); the region of interest is then a
rectangle in the rotated frame's pixel coordinates, and only that part is classified.

Imports numpy and OpenCV (for the rotation) only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgecnn.opencv import import_cv2

#: Clockwise rotations ``--rotate`` accepts, in degrees.
ROTATIONS = (0, 90, 180, 270)


def rotate(image: np.ndarray, degrees: int) -> np.ndarray:
    """Rotate an (H, W[, C]) image clockwise by 0, 90, 180 or 270 degrees.

    Returns:
        the image itself for 0, else a new contiguous array, (W, H[, C]) for 90 and 270.
    Raises:
        ValueError: another angle.
    """
    cv2 = import_cv2()
    codes = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    if degrees == 0:
        return image
    if degrees not in codes:
        raise ValueError(f"rotation is {degrees} degrees, expected one of {', '.join(map(str, ROTATIONS))}")
    return cv2.rotate(image, codes[degrees])


@dataclass(frozen=True)
class Roi:
    """A region of interest: ``w`` x ``h`` pixels with its top-left corner at (``x``, ``y``), in frame pixels.

    Raises:
        ValueError: a negative corner or a size < 1.
    """

    x: int
    y: int
    w: int
    h: int

    def __post_init__(self) -> None:
        if self.x < 0 or self.y < 0:
            raise ValueError(f"region corner is ({self.x}, {self.y}), expected x >= 0 and y >= 0")
        if self.w < 1 or self.h < 1:
            raise ValueError(f"region size is {self.w}x{self.h}, expected at least 1x1 pixels")

    @classmethod
    def parse(cls, text: str) -> "Roi":
        """``"x,y,w,h"`` (integers, pixels) -> Roi.

        Raises:
            ValueError: not four integers, or values :class:`Roi` rejects.
        """
        parts = str(text).split(",")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            values = []
        if len(values) != 4:
            raise ValueError(f"{text!r} is not x,y,w,h (four integers, pixels)")
        return cls(*values)

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The region of an (H, W[, C]) image (a view, no copy).

        Raises:
            ValueError: the region does not lie inside the image.
        """
        h, w = image.shape[:2]
        if self.x + self.w > w or self.y + self.h > h:
            raise ValueError(f"region {self} does not fit in a {w}x{h} frame (after --rotate, if any)")
        return image[self.y:self.y + self.h, self.x:self.x + self.w]

    def __str__(self) -> str:
        return f"{self.x},{self.y},{self.w},{self.h}"
