"""The monitoring report: one self-contained HTML file for the unit's management, its officers and the
validation team, in English or Simplified Chinese.

It shows what a monitoring run (:func:`creditmodel.monitoring.run.monitor`) found as of its date: the
headline findings, the grade migration of the open book, the watch list per officer, the NPL ratio
per year, team and officer against the tolerance, EVA per team and officer, the backtest's traffic
lights per cohort and the stability of scores and features. Every heading and finding comes from the
message catalogue (``creditmodel/texts``); charts are inline SVG, so the file needs no script, no
image and no network access, and CJK text renders with the reader's own fonts. Figures are the
frames' own numbers (money to the cent, ratios to 0.01 percentage point), so the report reconciles
with the parquet/CSV files written beside it.
"""

from __future__ import annotations

import html
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from creditmodel import __version__
from creditmodel.data.dictionary import DataDictionary, default_dictionary
from creditmodel.texts import check_lang, text

__all__ = ["REPORT_NAME", "findings", "render_report", "summary_lines", "watch_by_officer", "write_report"]

REPORT_NAME = "monitoring_report.html"
STATUS_COLOURS = {"green": "#2e7d32", "amber": "#e69500", "red": "#c62828"}
SERIES_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
MAX_ROWS = 60


# --- formatting ----------------------------------------------------------------------------------

def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, (float, np.floating)) and math.isnan(float(v)))


def fmt(v: Any, kind: str) -> str:
    """One cell as the report prints it: money to the cent, ratios in percent to 2 decimals."""
    if _is_missing(v):
        return ""
    if kind == "money":
        return f"{float(v):,.2f}"
    if kind == "pct":
        return f"{float(v):.2%}"
    if kind == "int":
        return f"{int(v):,}"
    if kind == "num":
        return f"{float(v):.4f}"
    if kind == "date":
        return str(pd.Timestamp(v).date())
    if kind == "p":
        return f"{float(v):.3g}"
    return str(v)


class _Report:
    def __init__(self, lang: str, dictionary: DataDictionary):
        self.lang, self.d = lang, dictionary

    def t(self, key: str, **fields: Any) -> str:
        return text(f"monitor.{key}", self.lang, currency=self.d.currency, **fields)

    def col(self, name: str) -> str:
        return text(f"monitor.col.{name}", self.lang, currency=self.d.currency)

    def status(self, s: str) -> str:
        if s not in STATUS_COLOURS:
            return html.escape(str(s))
        return f'<span class="pill {s}">{html.escape(self.t("status." + s))}</span>'

    def team(self, team: Any) -> str:
        return self.d.label("industry_team", str(team), self.lang) if self.lang != "en" else str(team)

    def table(self, frame: pd.DataFrame, columns: list[tuple[str, str]], table_id: str,
              max_rows: int = MAX_ROWS) -> str:
        """An HTML table of ``columns`` (name, kind) of ``frame``; kinds as in :func:`fmt`, plus "status",
        "team", "yesno" and "text"."""
        head = "".join(f"<th>{html.escape(self.col(c))}</th>" for c, _ in columns)
        rows = []
        for rec in frame.head(max_rows).to_dict("records"):
            cells = []
            for c, kind in columns:
                v = rec.get(c)
                if kind == "status":
                    cells.append(f"<td>{self.status(str(v))}</td>")
                elif kind == "team":
                    cells.append(f"<td>{html.escape(self.team(v))}</td>")
                elif kind == "yesno":
                    cells.append(f"<td>{self.t('yes') if bool(v) else self.t('no')}</td>")
                else:
                    num = kind in ("money", "pct", "int", "num", "p")
                    cells.append(f'<td{" class=num" if num else ""}>{html.escape(fmt(v, kind))}</td>')
            rows.append("<tr>" + "".join(cells) + "</tr>")
        more = ""
        if len(frame) > max_rows:
            more = f'<p class="muted">{html.escape(self.t("more_rows", n=len(frame) - max_rows))}</p>'
        return (f'<table class="grid" id="t-{table_id}"><thead><tr>{head}</tr></thead><tbody>'
                + "".join(rows) + "</tbody></table>" + more)


# --- charts (inline SVG) -------------------------------------------------------------------------

def svg_chart(x: list[str], series: list[tuple[str, list[float], str]], *, hline: tuple[float, str] | None = None,
              point_colours: dict[str, list[str]] | None = None, width: int = 760, height: int = 280,
              title: str = "") -> str:
    """A line chart of ratios (y in percent) over the categories ``x``; ``series`` = (name, values, colour);
    ``hline`` = (value, label) dashed; ``point_colours`` colours a series' markers (traffic lights)."""
    left, right, top, bottom = 56, 150, 24, 46
    w, h = width - left - right, height - top - bottom
    values = [v for _, vs, _ in series for v in vs if not _is_missing(v)] + ([hline[0]] if hline else [])
    ymax = max(values) * 1.1 if values and max(values) > 0 else 0.01
    n = max(len(x), 1)

    def px(i: int) -> float:
        return left + (w * (i + 0.5) / n)

    def py(v: float) -> float:
        return top + h - h * v / ymax

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           f'aria-label="{html.escape(title)}" class="chart">']
    for k in range(5):
        v = ymax * k / 4
        out.append(f'<line x1="{left}" x2="{left + w}" y1="{py(v):.1f}" y2="{py(v):.1f}" stroke="#e3e8ee"/>'
                   f'<text x="{left - 6}" y="{py(v) + 4:.1f}" text-anchor="end" font-size="11">{v:.1%}</text>')
    step = max(1, math.ceil(n / 16))
    for i, label in enumerate(x):
        if i % step == 0:
            out.append(f'<text x="{px(i):.1f}" y="{top + h + 16}" text-anchor="middle" font-size="11">'
                       f'{html.escape(str(label))}</text>')
    if hline is not None:
        out.append(f'<line x1="{left}" x2="{left + w}" y1="{py(hline[0]):.1f}" y2="{py(hline[0]):.1f}" '
                   f'stroke="#c62828" stroke-dasharray="6 4"/><text x="{left + w + 6}" y="{py(hline[0]) + 4:.1f}" '
                   f'font-size="11" fill="#c62828">{html.escape(hline[1])}</text>')
    for k, (name, vs, colour) in enumerate(series):
        pts = [(px(i), py(v)) for i, v in enumerate(vs) if not _is_missing(v)]
        if len(pts) > 1:
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
                       + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + '"/>')
        dots = (point_colours or {}).get(name)
        for i, v in ((i, v) for i, v in enumerate(vs) if not _is_missing(v)):
            fill = STATUS_COLOURS.get(dots[i], colour) if dots else colour
            out.append(f'<circle cx="{px(i):.1f}" cy="{py(v):.1f}" r="{4 if dots else 2.5}" fill="{fill}"/>')
        out.append(f'<rect x="{left + w + 8}" y="{top + 18 * k}" width="12" height="3" fill="{colour}"/>'
                   f'<text x="{left + w + 24}" y="{top + 18 * k + 5}" font-size="11">{html.escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


# --- the sections --------------------------------------------------------------------------------

def findings(summary: dict[str, Any], frames: dict[str, pd.DataFrame], lang: str | None = "en",
             dictionary: DataDictionary | None = None) -> list[tuple[str, str]]:
    """(status, sentence) of the headline findings of a monitoring run, in ``lang``, in the report's order."""
    r = _Report(check_lang(lang), dictionary or default_dictionary())
    s = summary
    out: list[tuple[str, str]] = []
    out.append((s.get("psi_status", "n/a"), r.t("finding.pd_drift", pd0=s["mean_pd_origination"],
                                                  pd1=s["mean_pd_now"], as_of=s["as_of"],
                                                  psi=s["psi_pd_origination_to_now"])))
    out.append(("red" if s["share_downgraded_2plus"] >= 0.10 else "amber" if s["share_downgraded_2plus"] >= 0.05
                else "green", r.t("finding.migration", down=s["share_downgraded"], down2=s["share_downgraded_2plus"],
                                  up=s["share_upgraded"])))
    teams = frames["npl_by_team"]
    officers = frames["npl_by_officer"]
    over_teams = teams[~teams["within_tolerance"]]
    out.append(("green" if s["npl_ratio"] <= s["npl_tolerance"] else "red",
                r.t("finding.npl", npl=s["npl_ratio"], tolerance=s["npl_tolerance"],
                    teams_over=len(over_teams), teams=len(teams), officers_over=s["officers_over_tolerance"],
                    officers=len(officers))))
    if len(teams):
        worst = teams.sort_values(["npl_ratio", "team"], ascending=[False, True]).iloc[0]
        out.append(("green" if worst["within_tolerance"] else "red",
                    r.t("finding.npl_worst_team", team=r.team(worst["team"]), npl=worst["npl_ratio"])))
    bt = frames["backtest"]
    counts = bt["status"].value_counts() if len(bt) else pd.Series(dtype=int)
    red = list(bt.loc[bt["status"] == "red", "quarter"]) if len(bt) else []
    out.append(("red" if red else "amber" if counts.get("amber", 0) else "green",
                r.t("finding.backtest", n=len(bt), red=int(counts.get("red", 0)), amber=int(counts.get("amber", 0)),
                    green=int(counts.get("green", 0)), auc=s.get("backtest_auc", float("nan")),
                    quarters=", ".join(red) or "-")))
    eva_off = frames["eva_by_officer"]
    out.append(("green" if s["eva_total"] >= 0 else "red",
                r.t("finding.eva", eva=s["eva_total"], negative=int((eva_off["eva"] < 0).sum()), officers=len(eva_off))))
    wl = frames["watch_list"]
    sev3 = wl.loc[wl["severity"] == 3, "loan_id"].nunique() if len(wl) else 0
    exposure = float(wl.drop_duplicates("loan_id")["balance"].sum()) if len(wl) else 0.0
    out.append(("red" if sev3 else "amber" if len(wl) else "green",
                r.t("finding.watch", n=s["watch_list_loans"], exposure=exposure, severe=int(sev3))))
    if s.get("psi_pd_recent_status", "n/a") != "n/a":
        out.append((s["psi_pd_recent_status"], r.t("finding.psi_recent", n=s["recent_applications"],
                                                   psi=s["psi_pd_recent_to_development"],
                                                   reference=s["stability_reference"],
                                                   red=len(s["features_csi_red"]))))
    if s.get("live_psi_status", "n/a") != "n/a":
        out.append((s["live_psi_status"], r.t("finding.psi_live", n=s["live_scores"], psi=s["live_psi"])))
    return out


def summary_lines(summary: dict[str, Any], out: str | Path, lang: str | None = "en",
                  dictionary: DataDictionary | None = None) -> str:
    """What `creditmodel monitor` prints when it is done: the run's headline figures in ``lang``, the teams
    as the unit names them and the EVA in the dictionary's currency."""
    r = _Report(check_lang(lang), dictionary or default_dictionary())
    s = summary
    teams = ("；" if r.lang == "zh" else ", ").join(
        r.t("cli.team", team=r.team(k), npl=v) for k, v in s["npl_ratio_by_team"].items())
    return (r.t("cli.done", loans=s["loans"], as_of=s["as_of"], out=out) + "\n"
            + r.t("cli.figures", pd0=s["mean_pd_origination"], pd1=s["mean_pd_now"], down2=s["share_downgraded_2plus"],
                  npl=s["npl_ratio"], tolerance=s["npl_tolerance"], teams=teams, over=s["officers_over_tolerance"],
                  eva=s["eva_total"], watch=s["watch_list_loans"]))


def watch_by_officer(watch: pd.DataFrame) -> pd.DataFrame:
    """Per officer: loans on the watch list, their exposure, loans at severity 3 and the most frequent trigger."""
    cols = ["officer_id", "team", "loans", "exposure", "severe", "top_trigger"]
    if watch.empty:
        return pd.DataFrame(columns=cols)
    per_loan = watch.sort_values("severity", ascending=False, kind="mergesort").drop_duplicates("loan_id")
    g = per_loan.groupby(["officer_id", "team"], sort=True)
    out = pd.DataFrame({"loans": g.size(), "exposure": g["balance"].sum(),
                        "severe": g["severity"].apply(lambda x: int((x == 3).sum()))})
    top = watch.groupby(["officer_id", "team"])["trigger"].agg(lambda x: x.value_counts().sort_index()
                                                               .sort_values(ascending=False, kind="mergesort").index[0])
    out["top_trigger"] = top
    out = out.reset_index().sort_values(["severe", "exposure"], ascending=False, kind="mergesort")
    return out[cols].reset_index(drop=True)


def _reasons_in(frame: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The reason columns in ``lang``: a run's Chinese texts (``reason_<k>_zh``) in place of its English ones."""
    if lang == "en":
        return frame
    out = frame.copy()
    for k in (1, 2, 3):
        if f"reason_{k}_{lang}" in out:
            out[f"reason_{k}"] = out[f"reason_{k}_{lang}"]
    return out


def _migration_html(migration: pd.DataFrame, r: _Report) -> str:
    m = migration.set_index("grade_origination")
    grades = list(m.columns)
    head = f'<th>{html.escape(r.col("grade_origination"))} \\ {html.escape(r.col("grade_now"))}</th>' + "".join(
        f"<th>{html.escape(str(g))}</th>" for g in grades) + f"<th>{html.escape(r.col('loans'))}</th>"
    rows = []
    for i, g0 in enumerate(m.index):
        total = int(m.loc[g0].sum())
        cells = []
        for j, g1 in enumerate(grades):
            n = int(m.loc[g0, g1])
            share = n / total if total else 0.0
            hue = "46,125,50" if j < i else "198,40,40" if j > i else "31,59,87"  # up / down / same
            style = f' style="background: rgba({hue},{0.08 + 0.6 * share:.2f})"' if n else ""
            cells.append(f"<td class=num{style}>{n}</td>")
        rows.append(f"<tr><th>{html.escape(str(g0))}</th>{''.join(cells)}<td class=num>{total:,}</td></tr>")
    return f'<table class="grid matrix" id="t-migration"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


TEMPLATE = """<!DOCTYPE html>
<html lang="{html_lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, "Noto Sans CJK SC", "Microsoft YaHei",
  sans-serif; margin: 0; color: #1d2733; }}
header {{ background: #1f3b57; color: white; padding: 18px 28px; }}
header h1 {{ margin: 0 0 4px 0; font-size: 22px; }} header p {{ margin: 2px 0; opacity: .85; font-size: 13px; }}
main {{ padding: 8px 28px 40px 28px; max-width: 1400px; }}
h2 {{ border-bottom: 2px solid #1f3b57; padding-bottom: 4px; margin-top: 34px; }}
h3 {{ margin-top: 22px; font-size: 15px; }}
table.grid {{ border-collapse: collapse; font-size: 12.5px; margin: 8px 0; }}
table.grid th {{ background: #eef2f6; text-align: left; padding: 4px 8px; border-bottom: 1px solid #c9d3dd; }}
table.grid td {{ padding: 3px 8px; border-bottom: 1px solid #e6ebf0; vertical-align: top; }}
table.grid td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
table.matrix td {{ min-width: 34px; }}
.pill {{ display: inline-block; padding: 1px 8px; border-radius: 9px; color: white; font-size: 11.5px; font-weight: 600; }}
.green {{ background: #2e7d32; }} .amber {{ background: #e69500; }} .red {{ background: #c62828; }}
ul.findings li {{ margin: 5px 0; }}
.muted {{ color: #66788a; font-size: 12px; }} .cols {{ display: flex; gap: 30px; flex-wrap: wrap; }}
nav a {{ margin-right: 14px; font-size: 13px; }}
svg.chart {{ border: 1px solid #e1e6eb; background: white; }}
</style></head>
<body>
<header><h1>{title}</h1><p>{subtitle}</p><p>{generated}</p></header>
<main>
<nav>{nav}</nav>
{sections}
</main></body></html>
"""


def render_report(result: Any, lang: str | None = "en", dictionary: DataDictionary | None = None,
                  bundle_label: str | None = None) -> str:
    """The report of a :class:`~creditmodel.monitoring.run.MonitoringResult` as one HTML string."""
    lang = check_lang(lang)
    r = _Report(lang, dictionary or default_dictionary())
    s, f = result.summary, result.frames
    e = html.escape
    sections: list[tuple[str, str, str]] = []  # (id, heading, body)

    items = "".join(f"<li>{r.status(st)} {e(sentence)}</li>" for st, sentence in findings(s, f, lang, r.d))
    headline = pd.DataFrame([{"measure": r.t(f"headline.{k}"), "value": fmt(s.get(k), kind)} for k, kind in [
        ("loans", "int"), ("mean_pd_origination", "pct"), ("mean_pd_now", "pct"),
        ("psi_pd_origination_to_now", "num"), ("share_downgraded_2plus", "pct"), ("npl_ratio", "pct"),
        ("npl_tolerance", "pct"), ("officers_over_tolerance", "int"), ("eva_total", "money"),
        ("backtest_auc", "num"), ("watch_list_loans", "int")]])
    sections.append(("summary", r.t("h.summary"), f'<ul class="findings">{items}</ul>'
                     + r.table(headline, [("measure", "text"), ("value", "text")], "headline")))

    rated = f["rerating"]
    body = f"<p>{e(r.t('intro.migration'))}</p>" + _migration_html(f["migration"], r)
    movers = rated[rated["notches"] >= 2].sort_values(["notches", "balance"], ascending=False, kind="mergesort")
    movers = _reasons_in(movers, lang)
    body += f"<h3>{e(r.t('h.downgrades'))}</h3>" + r.table(movers, [
        ("loan_id", "text"), ("officer_id", "text"), ("team", "team"), ("balance", "money"),
        ("grade_origination", "text"), ("grade_now", "text"), ("notches", "int"), ("reason_1", "text"),
        ("reason_2", "text")], "downgrades", max_rows=30)
    sections.append(("migration", r.t("h.migration"), body))

    wl = f["watch_list"]
    per_officer = watch_by_officer(wl)
    if len(wl):  # the trigger as the officer reads it
        said = dict(zip(wl["trigger"], wl[f"reason_{lang}"]))
        per_officer["top_trigger"] = per_officer["top_trigger"].map(said)
    body = f"<p>{e(r.t('intro.watch'))}</p>" + r.table(per_officer, [
        ("officer_id", "text"), ("team", "team"), ("loans", "int"), ("exposure", "money"), ("severe", "int"),
        ("top_trigger", "text")], "watch-officers", max_rows=200)
    if len(wl):
        by_trigger = (wl.groupby(["trigger", "severity", f"reason_{lang}"], sort=False).size().rename("loans")
                      .reset_index().sort_values(["severity", "loans"], ascending=False, kind="mergesort")
                      .rename(columns={f"reason_{lang}": "reason"}))
        body += f"<h3>{e(r.t('h.triggers'))}</h3>" + r.table(by_trigger, [
            ("trigger", "text"), ("severity", "int"), ("reason", "text"), ("loans", "int")], "watch-triggers")
    sections.append(("watch", r.t("h.watch"), body))

    tol = s["npl_tolerance"]
    tol_label = r.t("tolerance", tolerance=tol)
    npl_cols = [("loans", "int"), ("balance", "money"), ("npl_balance", "money"), ("npl_ratio", "pct"),
                ("within_tolerance", "yesno")]
    years = f["npl_by_year"]
    by_year_team = f.get("npl_by_year_team")
    body = f"<p>{e(r.t('intro.npl', tolerance=tol))}</p>"
    if by_year_team is not None and len(by_year_team):
        pivot = by_year_team.pivot(index="year", columns="team", values="npl_ratio").sort_index()
        series = [(r.t("book"), list(years.set_index("year").loc[pivot.index, "npl_ratio"]), "#1d2733")]
        series += [(r.team(t), list(pivot[t]), SERIES_COLOURS[k % len(SERIES_COLOURS)])
                   for k, t in enumerate(pivot.columns)]
        body += svg_chart([_year_label(y, s["as_of"]) for y in pivot.index], series, hline=(tol, tol_label),
                          title=r.t("h.npl_year"))
    body += f"<h3>{e(r.t('h.npl_year'))}</h3>" + r.table(years, [("date", "date"), *npl_cols], "npl-year")
    if by_year_team is not None:
        body += f"<h3>{e(r.t('h.npl_year_team'))}</h3>" + r.table(
            by_year_team, [("date", "date"), ("team", "team"), *npl_cols], "npl-year-team", max_rows=200)
    body += f"<h3>{e(r.t('h.npl_team', as_of=s['as_of']))}</h3>" + r.table(
        f["npl_by_team"], [("team", "team"), *npl_cols], "npl-team")
    officers = f["npl_by_officer"].sort_values(["within_tolerance", "npl_ratio"], ascending=[True, False],
                                               kind="mergesort")
    body += f"<h3>{e(r.t('h.npl_officer', as_of=s['as_of']))}</h3>" + r.table(
        officers, [("officer_id", "text"), ("team", "team"), *npl_cols], "npl-officer", max_rows=500)
    sections.append(("npl", r.t("h.npl"), body))

    eva_cols = [("loans", "int"), ("balance", "money"), ("eva", "money")]
    body = (f"<p>{e(r.t('intro.eva'))}</p><h3>{e(r.t('h.eva_team'))}</h3>"
            + r.table(f["eva_by_team"], [("team", "team"), *eva_cols], "eva-team")
            + f"<h3>{e(r.t('h.eva_officer'))}</h3>"
            + r.table(f["eva_by_officer"].sort_values("eva", kind="mergesort"),
                      [("officer_id", "text"), ("team", "team"), *eva_cols], "eva-officer", max_rows=500))
    sections.append(("eva", r.t("h.eva"), body))

    bt = f["backtest"]
    body = f"<p>{e(r.t('intro.backtest'))}</p>"
    if len(bt):
        body += svg_chart(list(bt["quarter"]), [(r.col("mean_pd"), list(bt["mean_pd"]), "#1f77b4"),
                                               (r.col("default_rate"), list(bt["default_rate"]), "#1d2733")],
                          point_colours={r.col("default_rate"): list(bt["status"])}, title=r.t("h.backtest"))
    body += r.table(bt, [("quarter", "text"), ("loans", "int"), ("defaults", "int"), ("mean_pd", "pct"),
                         ("default_rate", "pct"), ("auc", "num"), ("jeffreys_p", "p"), ("binomial_p", "p"),
                         ("status", "status")], "backtest", max_rows=200)
    sections.append(("backtest", r.t("h.backtest"), body))

    psi_rows = [{"measure": r.t("psi.origination_to_now"), "value": s["psi_pd_origination_to_now"],
                 "status": s["psi_status"]}]
    if s.get("psi_pd_recent_status", "n/a") != "n/a":
        psi_rows.append({"measure": r.t("psi.recent_pd", reference=s["stability_reference"], n=s["recent_applications"]),
                         "value": s["psi_pd_recent_to_development"], "status": s["psi_pd_recent_status"]})
        psi_rows.append({"measure": r.t("psi.recent_grade"), "value": s["psi_grade_recent_to_development"],
                         "status": _psi_status(s["psi_grade_recent_to_development"])})
    if s.get("live_psi_status", "n/a") != "n/a":
        psi_rows.append({"measure": r.t("psi.live", n=s["live_scores"]), "value": s["live_psi"],
                         "status": s["live_psi_status"]})
    body = (f"<p>{e(r.t('intro.psi'))}</p>"
            + r.table(pd.DataFrame(psi_rows), [("measure", "text"), ("value", "num"), ("status", "status")], "psi")
            + f"<h3>{e(r.t('h.csi'))}</h3>"
            + r.table(f["csi"], [("feature", "text"), ("psi", "num"), ("status", "status")], "csi", max_rows=25))
    sections.append(("stability", r.t("h.psi"), body))

    nav = "".join(f'<a href="#{k}">{e(h)}</a>' for k, h, _ in sections)
    html_sections = "".join(f'<section id="{k}"><h2>{e(h)}</h2>{b}</section>' for k, h, b in sections)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return TEMPLATE.format(
        html_lang="zh-CN" if lang == "zh" else "en", title=e(r.t("title", as_of=s["as_of"])),
        subtitle=e(r.t("subtitle", model=bundle_label or s.get("bundle", ""), model_id=s.get("model_id", ""),
                       loans=s["loans"])),
        generated=e(r.t("generated", time=generated, version=__version__)), nav=nav, sections=html_sections)


def _year_label(year: int, as_of: str) -> str:
    return as_of if str(year) == as_of[:4] else str(year)


def _psi_status(value: float, amber: float = 0.10, red: float = 0.25) -> str:
    return "n/a" if _is_missing(value) else "red" if value >= red else "amber" if value >= amber else "green"


def write_report(result: Any, path: str | Path, lang: str | None = "en", dictionary: DataDictionary | None = None,
                 bundle_label: str | None = None) -> Path:
    """Write :func:`render_report` to ``path`` (UTF-8)."""
    path = Path(path)
    path.write_text(render_report(result, lang, dictionary, bundle_label), encoding="utf-8")
    return path
