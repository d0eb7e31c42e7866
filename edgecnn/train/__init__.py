"""The workstation side of edgecnn (``pip install edgecnn[train]``: TensorFlow and Keras): data, models, training,
int8 conversion, evaluation and their reports. Nothing on the device side imports this package.

Importing the package imports nothing (TensorFlow is imported by the commands that need it).
"""
