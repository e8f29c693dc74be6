"""The PySide6 front end. Never imports TensorFlow: the classifier loads it in the worker thread."""
