"""Where the real data and weights the tools and slow tests use live: the ``shared/`` folder beside the checkout
(``../shared``: ``data/flowers5`` and the ImageNet MobileNetV2 weights; see their READMEs), or ``$EDGECNN_SHARED``.

Nothing is downloaded: a tool or test that needs these says where it looked when they are absent.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The shared folder: $EDGECNN_SHARED, else ``shared/`` beside the repository checkout.
SHARED = Path(os.environ.get("EDGECNN_SHARED") or Path(__file__).resolve().parents[2] / "shared")
#: 3,000 colour photos in 5 classes; the test split is the photos whose number is divisible by 5.
FLOWERS5 = SHARED / "data" / "flowers5"
#: The ImageNet MobileNetV2 alpha 0.35 backbone without its top (Keras Applications' file name).
MOBILENETV2_035_WEIGHTS = SHARED / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
