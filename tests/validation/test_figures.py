"""The report's figures drawn side by side change nothing: same findings, same reason codes, same images."""

from __future__ import annotations

import pandas as pd
import pytest

from creditmodel.config import ValidationConfig
from creditmodel.validation import suite as suite_module
from creditmodel.validation.suite import Figures, run_suite


class _Text:
    """A stand-in display object: `save` is what Figures calls on what a plot function returns."""

    def __init__(self, text):
        self.text = text

    def save(self, path):
        if self.text is None:
            raise RuntimeError(f"cannot draw {path.name}")
        path.write_text(self.text)
        return path


def _fail():
    return _Text(None)


def _write(text):
    return _Text(text)


def test_figures_are_drawn_when_rendered_in_workers_and_in_order(tmp_path):
    for workers in (1, 3):
        figures = Figures(workers)
        paths = [figures.draw(_write, f"figure {i}", path=tmp_path / f"w{workers}_{i}.txt") for i in range(5)]
        assert not any(p.exists() for p in paths)  # nothing drawn before render
        figures.render()
        assert [p.read_text() for p in paths] == [f"figure {i}" for i in range(5)]


def test_a_figure_that_fails_in_a_worker_fails_the_render(tmp_path):
    figures = Figures(2)
    figures.draw(_write, "ok", path=tmp_path / "ok.txt")
    figures.draw(_fail, path=tmp_path / "bad.png")
    with pytest.raises(RuntimeError, match="cannot draw bad.png"):
        figures.render()


def test_parallel_figures_leave_findings_and_images_unchanged(demo_run, tmp_path, monkeypatch):
    import mlflow

    from creditmodel.validation.report import load_evidence

    uri, run_id = demo_run["tracking_uri"], demo_run["result"].tracked.run_id
    ev = load_evidence(f"runs:/{run_id}/model", uri, tmp_path / "ev")
    cfg = ValidationConfig()
    serial = run_suite(ev, cfg, tmp_path / "serial", workers=1)
    parallel = run_suite(ev, cfg, tmp_path / "parallel", workers=2)
    pd.testing.assert_frame_equal(serial.summary(), parallel.summary())
    pd.testing.assert_frame_equal(serial.reason_codes, parallel.reason_codes)
    assert serial.status == parallel.status
    # the pipeline's own report (default: figures drawn by 2 workers) has the serial path's findings
    mlflow.set_tracking_uri(uri)
    logged = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="validation/summary.csv",
                                                             dst_path=str(tmp_path / "logged")))
    assert logged["status"].tolist() == serial.summary()["status"].tolist()
    assert logged["test"].tolist() == serial.summary()["test"].tolist()
    pd.testing.assert_series_equal(logged["value"], serial.summary()["value"].astype(float), check_exact=False,
                                   rtol=1e-12)
    # no finding depends on a figure: the suite with nothing drawn has the same findings, tables and reasons
    class _Undrawn(Figures):
        def render(self):
            self.jobs = []

    monkeypatch.setattr(suite_module, "Figures", _Undrawn)
    undrawn = run_suite(ev, cfg, tmp_path / "undrawn", workers=1)
    pd.testing.assert_frame_equal(serial.summary(), undrawn.summary(), check_exact=True)
    pd.testing.assert_frame_equal(serial.reason_codes, undrawn.reason_codes, check_exact=True)
    for a, b in zip(serial.sections, undrawn.sections):
        assert a.table_names == b.table_names and a.figure_names == b.figure_names
        for (_, ta), (_, tb) in zip(a.tables, b.tables):
            pd.testing.assert_frame_equal(ta, tb, check_exact=True)
    assert not any(p.exists() for s in undrawn.sections for _, p in s.figures)
    figs_s = [p for s in serial.sections for _, p in s.figures]
    figs_p = [p for s in parallel.sections for _, p in s.figures]
    assert len(figs_s) == len(figs_p) >= 10
    for a, b in zip(figs_s, figs_p):
        assert a.name == b.name and a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert a.read_bytes() == b.read_bytes(), a.name  # the beeswarm too: its jitter is seeded
