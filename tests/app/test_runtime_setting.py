"""Settings > Model Runtime: the choice is stored, offered only where it can run, and used by
the Analyze button's model loading."""
from __future__ import annotations

from lobule.app.common import settings
from lobule.app.main_window import MainWindow
from lobule.inference.engine import runtime as rt


def test_runtime_menu_stores_the_choice(qtbot):
    window = MainWindow(show_dialogs=False)
    qtbot.addWidget(window)
    actions = window.runtime_actions
    assert list(actions) == list(rt.RUNTIMES)
    assert actions["torch"].isChecked()  # the tests' $LOBULE_RUNTIME
    assert actions["torch-bf16"].isEnabled() == rt.cpu_has_native_bf16()
    actions["auto"].trigger()
    assert settings.model_runtime() == "auto" and actions["auto"].isChecked()
    assert not actions["torch"].isChecked()


def test_run_analysis_uses_the_setting(monkeypatch):
    import lobule.inference.engine as engine
    from lobule.app.slide import analysis_worker

    asked = {}

    class Stop(Exception):
        pass

    def load(model=None, device="auto", runtime="torch"):
        asked["runtime"] = runtime
        raise Stop

    monkeypatch.setattr(engine, "load_predictor", load)
    settings.set_model_runtime("openvino")

    class Slide:
        mpp = (0.5, 0.5)
        dimensions = (4096, 4096)
        path = "x.svs"

    try:
        analysis_worker.run_analysis(Slide(), "liver-hne")
    except Stop:
        pass
    assert asked["runtime"] == "openvino"
