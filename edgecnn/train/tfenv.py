"""TensorFlow on the workstation: its environment defaults, importing it, and holding back its native log lines.

Every workstation module gets TensorFlow through :func:`import_tf`, so the environment defaults are applied before
the first import and the C++ start-up chatter stays off the terminal.
"""

from __future__ import annotations

import os
import sys

from edgecnn.nativelog import quiet_native_stderr

#: Environment defaults for TensorFlow on the training side (a value the user has set wins):
#: TF_CPP_MIN_LOG_LEVEL=2 keeps TensorFlow's C++ start-up chatter off the terminal; TF_ENABLE_ONEDNN_OPTS=0 turns
#: off the oneDNN CPU kernels of TensorFlow 2.21, which crash (SIGSEGV in model.fit) on some layer shapes, e.g. a
#: ResNet-8 at width 0.5 on 96x96 inputs. Training is about 30% slower without them; set
#: TF_ENABLE_ONEDNN_OPTS=1 to take the risk.
TENSORFLOW_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}


def apply_tensorflow_env() -> None:
    """Apply :data:`TENSORFLOW_ENV` to ``os.environ`` (without replacing values already set); call before
    TensorFlow or Keras is imported."""
    for key, value in TENSORFLOW_ENV.items():
        os.environ.setdefault(key, value)


def import_tf():
    """Import TensorFlow (once, with :data:`TENSORFLOW_ENV` applied and its native start-up lines held back by
    :func:`quiet_native_stderr`) and return the module.

    Raises:
        ImportError: TensorFlow is not installed (``pip install edgecnn[train]``).
    """
    apply_tensorflow_env()
    if "tensorflow" not in sys.modules:
        with quiet_native_stderr():
            import tensorflow  # noqa: F401
    import tensorflow as tf

    return tf
