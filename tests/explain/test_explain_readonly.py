"""``explain`` on a run it cannot write to still shows its answer (with a warning)."""

from __future__ import annotations

from helpers.report import fake_run

from ipo_vlm.explain import explain_run
from ipo_vlm.explain import explain as explain_module


def test_an_unwritable_run_still_gets_its_explanation(tmp_path, monkeypatch, caplog):
    run = fake_run(tmp_path / "run")

    def denied(path, obj):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(explain_module, "atomic_write_json", denied)
    with caplog.at_level("WARNING"):
        out = explain_run(run.path, dataset=run.dataset, vlm=run.vlm)
    assert out["saved"] is False and out["ablations"]
    assert "cannot save explain.json" in caplog.text and "Permission denied" in caplog.text
    assert not (run.path / "explain.json").exists()
