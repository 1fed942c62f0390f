""""Fine-tune on my corrections": teach the slide's model the pathologist's corrections.

The dialog exports the corrected areas as training pairs (on the annotation worker, so it sees
every edit made so far), fine-tunes the parent checkpoint on them on a background thread with a
progress bar and Cancel (:func:`lobule.inference.annotations.finetune.finetune`), then shows the
agreement with the corrections before and after (train tiles, and held-out tiles when there are
enough) and offers to switch to the new model. The new checkpoint goes to the user's models
folder (:func:`lobule.models.folders.user_models_dir`, an installed model) and its card records its lineage.
"""
from __future__ import annotations

import datetime as _dt
import threading
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QDialog, QFormLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSpinBox,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from lobule.app.common.errors import error_message
from lobule.app.common.jobs import start_job
from lobule.models.folders import user_models_dir


class FinetuneDialog(QDialog):
    """Non-modal dialog running one fine-tuning.

    Signals
    -------
    modelChosen(str) : the user chose to use the new model (its name).
    progress(object), log(str), finished(object), failed(str), cancelled() : from the worker
        thread.
    """

    modelChosen = Signal(str)
    progress = Signal(object)
    log = Signal(str)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("Fine-tune on my corrections")
        self.setMinimumWidth(460)
        self._cancel = threading.Event()
        self._job = None
        self.result = None
        self.settings = {}  # further FinetuneSettings fields (batch_size, crop, threads...)
        store = controller.store
        self.parent_name = store.model.get("name", "model") if store is not None else None
        self.parent_card = (store.model.get("card") or self.parent_name) if store is not None else None
        layout = QVBoxLayout(self)
        intro = QLabel(f"Fine-tunes <b>{self.parent_name}</b> on the pixels you corrected on this slide (only "
                       "corrected pixels teach; the rest is ignored). The new model is saved beside your other "
                       "models and its card records the parent model, the corrections used and when.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.iterations = QSpinBox()
        self.iterations.setRange(10, 100000)
        self.iterations.setValue(300)
        self.iterations.setToolTip("Training steps of 4 crops of 256 px around corrected pixels")
        form.addRow("Iterations", self.iterations)
        layout.addLayout(form)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Agreement with corrections", "Before", "After"])
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.hide()
        layout.addWidget(self.table)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.cancel_button = QPushButton("Cancel")
        self.use_button = QPushButton("Use the new model")
        self.close_button = QPushButton("Close")
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.use_button.clicked.connect(self._use)
        self.close_button.clicked.connect(self.close)
        for button in (self.start_button, self.cancel_button, self.use_button, self.close_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.progress.connect(self._on_progress)
        self.log.connect(self._on_log)
        self.finished.connect(self._on_finished)
        self.failed.connect(self._on_failed)
        self.cancelled.connect(lambda: self._end("Cancelled; nothing was written."))
        self.cancel_button.setEnabled(False)
        self.use_button.setEnabled(False)
        if store is None:
            self.start_button.setEnabled(False)
            self.status.setText("Analyse the slide and correct it first.")

    # --- running ------------------------------------------------------------------------------
    def start(self) -> None:
        session = self.controller.session
        reader = self.controller.document.reader if self.controller.document is not None else None
        if session is None or reader is None:
            return
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.iterations.setEnabled(False)
        self._cancel.clear()
        self.status.setText("Exporting the corrected areas as training tiles...")
        pairs = session.folder / "training-pairs"

        def export():
            from lobule.inference.annotations.training_pairs import export_training_pairs

            return export_training_pairs(session.labels, reader, pairs)

        self.controller.worker.submit(export, self._train, lambda error: self._on_failed(error_message(error)))

    def _train(self, export) -> None:
        if self._cancel.is_set():
            self._end("Cancelled; nothing was written.")
            return
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        name = f"{self.parent_name}-ft-{stamp}"
        out_card = user_models_dir() / f"{name}.json"
        self.status.setText(f"Fine-tuning on {export.train} training tiles ({export.val} held out), "
                            f"{export.corrected_pixels:,} corrected pixels...")
        self.progress_bar.setRange(0, self.iterations.value())
        iterations = self.iterations.value()
        extra = dict(self.settings)

        def run(job):
            from lobule.inference.annotations.finetune import FinetuneSettings, finetune
            from lobule.inference.engine import select_device

            settings = FinetuneSettings(**{"device": select_device("auto"), **extra, "iterations": iterations})
            return finetune(self.parent_card, export.folder, out_card, settings, name=name,
                            on_progress=job.report, on_log=job.say, cancel=self._cancel)

        self._job = start_job(run, self.finished.emit, lambda error: self.failed.emit(error_message(error)),
                              self.progress.emit, self.cancelled.emit)
        self._job.message.connect(self.log)

    def cancel(self) -> None:
        self._cancel.set()
        self.status.setText("Cancelling after the current step...")

    def _on_progress(self, event) -> None:
        self.progress_bar.setRange(0, event.iterations)
        self.progress_bar.setValue(event.iteration)
        self.progress_bar.setFormat(f"step %v of %m, {event.elapsed_s:.0f} s")

    def _on_log(self, line: str) -> None:
        self.status.setText(line.strip())

    def _on_finished(self, result) -> None:
        self.result = result
        self._end(f"Saved {result.card.stem} ({result.seconds:.0f} s).")
        self.use_button.setEnabled(True)
        self.table.setRowCount(0)
        for split in ("train", "val"):
            before, after = result.before.get(split), result.after.get(split)
            if not before or not after:
                continue
            row = self.table.rowCount()
            self.table.insertRow(row)
            label = "corrected pixels, training tiles" if split == "train" else "corrected pixels, held-out tiles"
            values = [f"{label} ({before['pixels']:,})", _percent(before["agreement"]), _percent(after["agreement"])]
            for column, text in enumerate(values):
                item = QTableWidgetItem(text)
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(row, column, item)
        self.table.show()

    def _on_failed(self, message: str) -> None:
        self._end(f"Fine-tuning failed: {message}")

    def _end(self, text: str) -> None:
        self.status.setText(text)
        self.cancel_button.setEnabled(False)
        self.start_button.setEnabled(True)
        self.iterations.setEnabled(True)

    def _use(self) -> None:
        if self.result is not None:
            self.modelChosen.emit(self.result.card.stem)
            self.close()

    def closeEvent(self, event) -> None:  # noqa: N802
        self._cancel.set()
        super().closeEvent(event)


def _percent(value) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"
