"""The PySide6 + pyqtgraph desktop GUI; the only package that imports Qt.

This ``__init__`` imports nothing heavy, so ``lobule analyze`` (whose console script lives in
``lobule.app.cli``) never loads Qt or torch.
"""
