"""Qt-free per-frame work shared by the GUI, the headless analyser and the benchmark.

Nothing here imports PySide6, and TensorFlow is imported only when a classifier loads,
so the window can appear before TensorFlow has finished loading.
"""
