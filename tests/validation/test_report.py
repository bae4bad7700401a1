"""The validation report of a tracked model: every section, numbers that agree with independent
references, one self-contained HTML file, logged to the run, and clean in a real browser."""

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from creditmodel.cli import main
from creditmodel.validation.suite import paired_delong


@pytest.fixture(scope="module")
def report_html(demo_run):
    return demo_run["result"].output_dir / "validation_report.html"


def test_pipeline_writes_and_logs_the_report(demo_run, report_html):
    from mlflow import MlflowClient

    assert report_html.is_file()
    client = MlflowClient(demo_run["tracking_uri"])
    run_id = demo_run["result"].tracked.run_id
    logged = {a.path for a in client.list_artifacts(run_id, "validation")}
    assert {"validation/validation_report.html", "validation/summary.csv", "validation/reason_codes_oot.csv"} <= logged
    version = client.get_model_version("sme_pd", demo_run["result"].tracked.model_version)
    status = client.get_run(run_id).data.tags["validation_report_status"]
    assert version.tags["validation_status"] == status in ("green", "amber", "red")


def test_html_is_self_contained_with_the_summary_first(report_html):
    html = report_html.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the report must not load anything"
    assert "<script" not in html
    images = re.findall(r'<img[^>]+src="([^"]+)"', html)
    assert len(images) >= 10 and all(src.startswith("data:image/png;base64,") for src in images)
    first_section = min(html.index(f'id="m0-{k}"') for k in
                        ("discrimination", "calibration", "stability", "segments", "benchmark", "explanations"))
    assert html.index('id="summary"') < first_section
    for test in ("AUC (DeLong 95% CI)", "AUC now vs at development", "Jeffreys", "Binomial", "Hosmer-Lemeshow",
                 "Spiegelhalter", "Brier score", "PSI of the score", "PSI of the grades", "CSI", "Herfindahl",
                 "Concentration change", "Grade migration", "By industry", "By guarantee type", "By year",
                 "paired DeLong", "SHAP direction", "Rank agreement", "waterfall"):
        assert test in html, test


def test_report_numbers_match_independent_references(demo_run):
    import mlflow

    mlflow.set_tracking_uri(demo_run["tracking_uri"])
    run_id = demo_run["result"].tracked.run_id
    summary = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="validation/summary.csv"))
    scored = pd.read_parquet(demo_run["result"].output_dir / "scored.parquet")
    oot = scored[scored["split"] == "oot"]
    row = summary[(summary["test"] == "AUC (DeLong 95% CI)") & (summary["scope"] == "out of time")].iloc[0]
    assert row["value"] == pytest.approx(roc_auc_score(oot["default"], oot["pd_lightgbm"]), abs=1e-12)
    brier = summary[summary["test"] == "Brier score"].iloc[0]["value"]
    assert brier == pytest.approx(np.mean((oot["pd_lightgbm"] - oot["default"]) ** 2), abs=1e-12)
    from scipy.stats import beta

    jef = summary[(summary["test"] == "Jeffreys") & (summary["scope"] == "portfolio")].iloc[0]
    d, n, p = oot["default"].sum(), len(oot), oot["pd_lightgbm"].mean()
    assert jef["p_value"] == pytest.approx(beta.cdf(p, d + 0.5, n - d + 0.5), abs=1e-12)
    statuses = set(summary["status"])
    assert statuses <= {"green", "amber", "red", "info"}


def test_paired_delong_against_brute_force():
    rng = np.random.default_rng(4)
    y = np.r_[np.ones(30), np.zeros(70)]
    a = rng.normal(size=100) + y
    b = a + rng.normal(scale=0.8, size=100)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)

    def psi(x, i, j):
        return 1.0 if x[i] > x[j] else 0.5 if x[i] == x[j] else 0.0

    comps = {}
    for name, s in (("a", a), ("b", b)):
        comps[name] = (np.array([np.mean([psi(s, i, j) for j in neg]) for i in pos]),
                       np.array([np.mean([psi(s, i, j) for i in pos]) for j in neg]))
    var = 0.0
    for k, n in ((0, len(pos)), (1, len(neg))):
        c = np.cov(comps["a"][k], comps["b"][k], ddof=1)
        var += (c[0, 0] + c[1, 1] - 2 * c[0, 1]) / n
    diff = comps["a"][0].mean() - comps["b"][0].mean()
    got_diff, z, p = paired_delong(y, a, b)
    assert got_diff == pytest.approx(diff, abs=1e-12)
    assert z == pytest.approx(diff / np.sqrt(var), rel=1e-9)
    assert paired_delong(y, a, a)[2] == 1.0


def test_cli_report_with_compare(demo_run, tmp_path, capsys):
    out = tmp_path / "r.html"
    version = demo_run["result"].tracked.model_version
    assert main(["report", f"models:/sme_pd/{version}", "--out", str(out), "--compare", "models:/sme_pd@challenger",
                 "--no-log", "--tracking-uri", demo_run["tracking_uri"]]) == 0
    printed = capsys.readouterr().out
    assert f"sme_pd version {version}:" in printed and f"wrote {out}" in printed
    html = out.read_text(encoding="utf-8")
    assert "Side by side" in html and "status A" in html and "status B" in html


@pytest.mark.parametrize("argv, message", [
    (["models:/ghost@champion", "--out", "{tmp}/r.html"], "model URI 'models:/ghost@champion' not found"),
    (["models:/sme_pd@challenger", "--out", "{tmp}/r.pdf"], "expected an .html file"),
    (["not-a-uri", "--out", "{tmp}/r.html"], "expected models:/NAME@ALIAS"),
])
def test_cli_report_bad_input_is_one_line_and_writes_nothing(demo_run, tmp_path, capsys, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["report", *argv, "--tracking-uri", demo_run["tracking_uri"]]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert list(tmp_path.iterdir()) == []


def test_report_opens_cleanly_in_headless_chromium(report_html, tmp_path):
    pytest.importorskip("playwright")
    from creditmodel.validation.browser import find_chromium, open_in_browser

    if find_chromium() is None:
        pytest.skip("Chromium is not installed (.ci/run installs it)")
    shot = tmp_path / "summary.png"
    seen = open_in_browser(report_html, screenshot=shot)
    assert seen["console_errors"] == [] and seen["page_errors"] == [] and seen["outside_requests"] == []
    assert seen["images"] >= 10 and seen["broken_images"] == 0
    assert seen["summary_rows"] > 20 and seen["pills"][0] in ("green", "amber", "red")
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
