"""edgecnn: compact CNN image classifiers for small devices, from training to an int8 camera loop.

Importing the package imports nothing heavy (no TensorFlow, no OpenCV).
"""

__version__ = "0.1.0"
