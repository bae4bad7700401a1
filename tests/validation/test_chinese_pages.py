"""The pages people read in Chinese: the validation report and the price sheet render Chinese glyphs in a
real headless Chromium, not missing-glyph boxes (tofu). Their screenshots are kept as artifacts of the test
run in test-artifacts/ (git-ignored; $CREDITMODEL_TEST_ARTIFACTS moves it), never committed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from creditmodel.config import PricingConfig
from creditmodel.data.dictionary import default_dictionary
from creditmodel.pricing.grid import grid_html, rate_grid

ROOT = Path(__file__).resolve().parents[2]
CJK = re.compile(r"[\u4e00-\u9fff]")


def artifacts() -> Path:
    path = Path(os.environ.get("CREDITMODEL_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser():
    pytest.importorskip("playwright")
    from creditmodel.validation.browser import find_chromium, glyph_check

    if find_chromium() is None:
        pytest.skip("Chromium is not installed (.ci/run installs it)")
    fc = shutil.which("fc-list")
    if fc is None or not subprocess.run([fc, ":lang=zh"], capture_output=True, text=True).stdout.strip():
        pytest.skip("no font with Chinese glyphs is installed (.ci/run installs fonts-noto-cjk)")
    return glyph_check


def test_the_check_tells_missing_glyphs_from_real_ones(browser, tmp_path):
    page = tmp_path / "control.html"
    page.write_text("<!doctype html><html><head><meta charset='utf-8'></head><body>"
                    "<h1>&#x380;&#x381;&#x382;&#x383;&#x38b;</h1><h2>信用等级执行利率</h2></body></html>", encoding="utf-8")
    tofu = browser(page, selector="h1", pattern="[\\u0380-\\u038b]")
    assert len(tofu["chars"]) == 5 and tofu["distinct"] == 1 and tofu["like_notdef"] == 5  # five identical boxes
    real = browser(page, selector="h2")
    assert real["chars"] == list("信用等级执行利率") and real["distinct"] == 8 and real["like_notdef"] == 0


def test_the_chinese_price_sheet_shows_glyphs(browser):
    cfg = PricingConfig()
    grid = rate_grid(["A1", "B2", "C3"], [0.002, 0.02, 0.15], ["furniture", "livestock"], cfg,
                     amounts=[cfg.grid_ead, 6_000_000.0])
    page = artifacts() / "price_sheet_zh.html"
    labels = default_dictionary().labels
    page.write_text(grid_html(grid, labels=labels["guarantee_type"], team_labels=labels["industry"]), encoding="utf-8")
    shot = artifacts() / "price_sheet_zh.png"
    seen = browser(page, shot)
    assert len(seen["chars"]) == 12 and seen["distinct"] == 12 and seen["like_notdef"] == 0, seen
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


@pytest.fixture(scope="module")
def chinese_report(demo_run, tmp_path_factory):
    from creditmodel.validation.report import build_report

    out = tmp_path_factory.mktemp("zh") / "validation_report_zh.html"
    results = build_report(f"runs:/{demo_run['result'].tracked.run_id}/model", out,
                           tracking_uri=demo_run["tracking_uri"], log=False, lang="zh")
    return out, results[0]


def test_every_heading_finding_and_caption_of_the_suite_has_its_chinese_text(chinese_report):
    from creditmodel.texts import has_text
    from creditmodel.validation.report import ReportTexts, slug

    _, result = chinese_report
    words = ReportTexts("zh")
    for s in result.sections:
        assert has_text(f"report.section.{s.key}", "zh") and has_text(f"report.intro.{s.key}", "zh"), s.key
        for name in s.table_names:
            assert has_text(f"report.table.{name}", "zh"), (s.key, name)
        for name in s.figure_names:
            assert name.startswith("waterfall_") or has_text(f"report.figure.{name}", "zh"), (s.key, name)
            assert CJK.search(words.figure(name, "")), name
        for f in s.findings:
            assert has_text(f"report.test.{slug(f.test)}", "zh"), f.test
            assert CJK.search(words.scope(f.scope)), f.scope


def test_the_chinese_validation_report_reads_in_chinese_and_shows_glyphs(browser, chinese_report):
    from creditmodel.texts import text

    page, result = chinese_report
    html = page.read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in html and "Noto Sans CJK SC" in html
    for id_ in ("report.summary", "report.model_card", "report.section.discrimination", "report.test.auc_delong_95_ci",
                "report.table.by_grade", "report.figure.roc", "report.column.threshold", f"report.status.{result.status}",
                "report.section.policy", "report.test.loans_needing_referral", "report.table.referrals"):
        assert text(id_, "zh") in html, id_
    assert ">Summary<" not in html and "Discrimination by split" not in html
    shot = artifacts() / "validation_report_zh.png"
    seen = browser(page, shot)
    assert len(seen["chars"]) == 12 and seen["distinct"] == 12 and seen["like_notdef"] == 0, seen
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_the_run_summary_in_chinese(demo_run):
    from creditmodel.cli import run_summary

    result, config = demo_run["result"], demo_run["config"]
    en = run_summary(result, config)
    zh = run_summary(result, config.model_copy(update={"lang": "zh"}))
    auc = result.metrics.set_index(["model", "split"]).loc[("lightgbm", "oot"), "auc"]
    assert "out-of-time test:" in en and "跨时间样本检验：" in zh and "平均违约概率" in zh
    assert f"AUC {auc:.3f}" in en and f"AUC {auc:.3f}" in zh  # the same figures in both languages
    assert str(result.bundle_dir) in zh and "导出包" in zh and "out-of-time" not in zh


@pytest.mark.parametrize("note, zh", [
    ("46 loans, 0 defaults, PD 0.90%", "贷款 46 笔，违约 0 笔，违约概率 0.90%"),
    ("mean PD 4.48%, default rate 5.80%", "平均违约概率 4.48%，违约率 5.80%"),
    ("lowest AUC shown; not green: 2023", "数值为最低 AUC；非绿灯：2023"),
    ("development AUC 0.760", "开发期 AUC 0.760"), ("2 of 10 grades", "10 个等级中 2 个"), ("none", "无"),
    ("z -1.04", "z -1.04"),  # a note the catalogue does not know keeps its words and figures
])
def test_frequent_notes_read_in_chinese_with_their_figures_and_unchanged_in_english(note, zh):
    from creditmodel.validation.report import ReportTexts

    assert ReportTexts("en").note(note) == note and ReportTexts("zh").note(note) == zh
    assert ReportTexts("en").threshold("red p<0.05, amber p<0.1") == "red p<0.05, amber p<0.1"
    assert ReportTexts("zh").threshold("red p<0.05, amber p<0.1") == "红灯 p<0.05, 黄灯 p<0.1"
