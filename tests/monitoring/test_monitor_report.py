"""The monitoring report: written by `creditmodel monitor`, its figures are the files' own numbers,
English or Chinese, and it opens cleanly in a real headless Chromium."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pandas as pd
import pytest

from creditmodel.monitoring.report import REPORT_NAME, render_report
from creditmodel.monitoring.run import MonitoringResult

CJK = re.compile(r"[\u4e00-\u9fff]")


class _Tables(HTMLParser):
    """Every <table id=...> of a page as rows of cell texts (header row first)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._id: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._id = dict(attrs).get("id")
            self.tables[self._id] = []
        elif tag == "tr" and self._id:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._id].append(self._row)
            self._row = None
        elif tag == "table":
            self._id = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def tables_of(html: str) -> dict[str, pd.DataFrame]:
    p = _Tables()
    p.feed(html)
    return {k: pd.DataFrame(rows[1:], columns=rows[0]) for k, rows in p.tables.items() if rows}


def cents(x: float) -> str:
    return f"{x:,.2f}"


def pct(x: float) -> str:
    return f"{x:.2%}"


@pytest.fixture(scope="module")
def report(monitored):
    path = monitored / REPORT_NAME
    assert path.is_file()
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def result(monitored):
    """The run as read back from the files `monitor` wrote beside the report."""
    s = json.loads((monitored / "summary.json").read_text())
    frames = {p.stem: pd.read_parquet(p) for p in monitored.glob("*.parquet")}
    return MonitoringResult(pd.Timestamp(s["as_of"]), frames, s)


def test_the_report_is_one_self_contained_file(report):
    assert report.startswith("<!DOCTYPE html>") and '<html lang="en">' in report
    assert "<script" not in report and "http://" not in report.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in report and "<img" not in report and "<link" not in report
    for section in ("summary", "migration", "watch", "npl", "eva", "backtest", "stability"):
        assert f'<section id="{section}">' in report
    assert report.count("<svg") == 2  # NPL per year and team; backtest over the cohorts


def test_the_report_shows_the_numbers_of_the_files(report, monitored):
    t = tables_of(report)
    s = json.loads((monitored / "summary.json").read_text())
    # NPL per team and per officer, to the cent and to 0.01 percentage point
    team = pd.read_parquet(monitored / "npl_by_team.parquet").set_index("team")
    shown = t["t-npl-team"].set_index("Industry team")
    assert list(shown.index) == list(team.index)
    for k, row in team.iterrows():
        assert shown.loc[k, "NPL ratio"] == pct(row["npl_ratio"])
        assert shown.loc[k, "Outstanding balance (CNY)"] == cents(row["balance"])
        assert shown.loc[k, "Non-performing balance (CNY)"] == cents(row["npl_balance"])
        assert shown.loc[k, "Within tolerance"] == ("yes" if row["within_tolerance"] else "no")
    officer = pd.read_parquet(monitored / "npl_by_officer.parquet").astype({"officer_id": str}).set_index("officer_id")
    shown = t["t-npl-officer"].set_index("Officer")
    assert set(shown.index) == set(officer.index)
    for k, row in officer.iterrows():
        assert shown.loc[k, "NPL ratio"] == pct(row["npl_ratio"])
    # EVA per team and officer to the cent; the per-team figures sum to the headline
    eva = pd.read_parquet(monitored / "eva_by_officer.parquet").astype({"officer_id": str}).set_index("officer_id")
    shown = t["t-eva-officer"].set_index("Officer")
    for k, row in eva.iterrows():
        assert shown.loc[k, "EVA (CNY per year)"] == cents(row["eva"])
    shown_team = t["t-eva-team"]["EVA (CNY per year)"].str.replace(",", "").map(lambda v: round(float(v) * 100))
    assert cents(shown_team.sum() / 100) == cents(s["eva_total"])
    # the migration matrix cell by cell
    m = pd.read_parquet(monitored / "migration.parquet").set_index("grade_origination")
    shown = t["t-migration"].set_index(t["t-migration"].columns[0])
    for g0 in m.index:
        for g1 in m.columns:
            assert int(shown.loc[g0, g1]) == int(m.loc[g0, g1])
    # the backtest's traffic lights and rates per cohort
    bt = pd.read_parquet(monitored / "backtest.parquet")
    shown = t["t-backtest"]
    assert list(shown["Quarter of origination"]) == list(bt["quarter"])
    assert list(shown["Status"]) == list(bt["status"])
    assert list(shown["Default rate"]) == [pct(x) for x in bt["default_rate"]]
    assert list(shown["Defaults"]) == [f"{int(x):,}" for x in bt["defaults"]]
    # the watch list per officer: loans and exposure from the CSV the officers get
    wl = pd.read_csv(monitored / "watch_list.csv").astype({"officer_id": str})
    per_loan = wl.drop_duplicates("loan_id")
    shown = t["t-watch-officers"].set_index("Officer")
    for k, g in per_loan.groupby("officer_id"):
        assert int(shown.loc[k, "Loans"]) == len(g)
        assert shown.loc[k, "Exposure (CNY)"] == cents(g["balance"].sum())
    # PSI: the open book's drift and the recent applications against development
    psi = t["t-psi"]
    assert psi["Value"].iloc[0] == f"{s['psi_pd_origination_to_now']:.4f}"
    assert f"{s['psi_pd_recent_to_development']:.4f}" in list(psi["Value"])
    csi = pd.read_parquet(monitored / "csi.parquet")
    assert list(t["t-csi"]["Feature"]) == list(csi["feature"].head(25))
    head = t["t-headline"].set_index("Measure")["Value"]
    assert head["Open loans"] == f"{s['loans']:,}" and head["NPL ratio"] == pct(s["npl_ratio"])


def test_the_report_in_chinese_has_the_same_numbers(result, report):
    zh = render_report(result, "zh")
    assert '<html lang="zh-CN">' in zh and "贷后监测报告" in zh and "不良贷款率" in zh
    t_zh, t_en = tables_of(zh), tables_of(report)
    assert set(t_zh) == set(t_en)
    for name in ("t-npl-team", "t-eva-team", "t-backtest", "t-migration"):
        numeric = [c for c in t_en[name].columns if t_en[name][c].str.match(r"^-?[\d,.]+%?$").all()]
        assert numeric, name
        for c in numeric:  # the same numbers in the same places; only the words change
            i = list(t_en[name].columns).index(c)
            assert list(t_zh[name].iloc[:, i]) == list(t_en[name][c]), (name, c)
    headings = re.findall(r"<h2>(.*?)</h2>", zh)
    assert len(headings) == 7 and all(CJK.search(h) for h in headings)
    for en_word in ("Summary", "Backtest of", "Economic value added", ">green<", ">red<"):
        assert en_word not in zh
    assert "竹制品团队" in zh or "家具团队" in zh  # teams as the unit names them
    # the largest downgrades' reasons are the run's Chinese texts
    rated = result.frames["rerating"]
    movers = rated[rated["notches"] >= 2].sort_values(["notches", "balance"], ascending=False, kind="mergesort")
    shown = t_zh["t-downgrades"]
    assert len(shown) == min(30, len(movers)) > 0
    assert list(shown.iloc[:, 7]) == list(movers["reason_1_zh"].head(len(shown)))
    assert all(CJK.search(t) for t in shown.iloc[:, 7])


def test_a_bank_in_dollars_reads_its_amounts_in_dollars(result):
    from dataclasses import replace

    from creditmodel.data.dictionary import default_dictionary

    dollars = replace(default_dictionary(), currency="USD")
    for lang, said in (("en", "Exposure (USD)"), ("zh", "风险暴露（USD）")):
        page = render_report(result, lang, dollars)
        heads = {h for t in tables_of(page).values() for h in t.columns}
        assert said in heads and not {h for h in heads if "CNY" in h or "元" in h}
        assert page.count("USD") >= 5
    assert "风险暴露（元）" in render_report(result, "zh")


def test_the_command_prints_its_figures_in_either_language(result):
    from dataclasses import replace

    from creditmodel.data.dictionary import default_dictionary
    from creditmodel.monitoring.report import summary_lines

    s, d = result.summary, default_dictionary()
    en, zh = summary_lines(s, "out", "en"), summary_lines(s, "out", "zh")
    assert en.startswith(f"monitored {s['loans']} open loans as of {s['as_of']} -> out\n")
    assert f"NPL {s['npl_ratio']:.2%}" in en and f"EVA CNY {s['eva_total']:,.0f} a year" in en
    assert zh.startswith(f"已监测截至 {s['as_of']} 的在贷贷款 {s['loans']} 笔 -> out\n")
    assert f"不良贷款率 {s['npl_ratio']:.2%}" in zh and f"经济增加值每年 {s['eva_total']:,.0f} 元" in zh
    for team, npl in s["npl_ratio_by_team"].items():
        assert f"{team} {npl:.2%}" in en and f"{d.label('industry_team', team, 'zh')}：{npl:.2%}" in zh
    assert f"每年 {s['eva_total']:,.0f} USD" in summary_lines(s, "out", "zh", replace(d, currency="USD"))


def test_the_report_opens_cleanly_in_headless_chromium(monitored, tmp_path):
    pytest.importorskip("playwright")
    from creditmodel.validation.browser import find_chromium, open_in_browser

    if find_chromium() is None:
        pytest.skip("Chromium is not installed (.ci/run installs it)")
    shot = tmp_path / "summary.png"
    seen = open_in_browser(monitored / REPORT_NAME, screenshot=shot)
    assert seen["console_errors"] == [] and seen["page_errors"] == [] and seen["outside_requests"] == []
    assert seen["title"].startswith("Monitoring report as of 2023-09-30")
    assert seen["summary_rows"] == 12  # the headline table: its header and eleven measures
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_unknown_language_is_one_line(demo_run, world_dir, tmp_path, capsys):
    from creditmodel.cli import main

    out = tmp_path / "mon"
    with pytest.raises(SystemExit) as err:
        main(["monitor", "--bundle", str(demo_run["result"].bundle_dir), "--data", str(world_dir),
              "--as-of", "2023-06-30", "--out", str(out), "--lang", "fr"])
    assert err.value.code == 2 and "invalid choice: 'fr'" in capsys.readouterr().err
    assert not out.exists()
