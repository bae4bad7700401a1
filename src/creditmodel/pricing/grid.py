"""The published rate grid: credit grade x guarantee type x industry team, every cell priced by `price`.

A cell is one reference loan: the grade's assigned PD (the master scale's), the guarantee type's LGD
(a joint-guarantee group cell carries a group, so joint liability and correlated default apply),
the exposure config.grid_ead and the default maturity. The cell's figures are `price`'s output for
that loan, so a loan with the same terms gets exactly the cell's rate. The industry team enters
through the PD's grade only (the model prices the industry); the column makes the grid the template
a team publishes. Preferential products (config.preferential_discount) are offered below the rate:
eva_<product> is the EVA at the discounted rate (not below the floor) and eva_given_up_<product>
what the discount costs a year.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from creditmodel.config import PricingConfig
from creditmodel.exceptions import RequestError
from creditmodel.pricing.engine import COMPONENTS, price
from creditmodel.pricing.raroc import eva

GRID_COLUMNS = ("grade", "guarantee_type", "industry_team", "pd", "lgd", "ead", "k", *COMPONENTS, "risk_covering_rate",
                "rate", "floored", "capped", "raroc", "eva")


def grid_applications(grades: Sequence[str], grade_pds: Sequence[float], teams: Sequence[str],
                      config: PricingConfig, *, group_type: str = "joint_group") -> pd.DataFrame:
    """The reference loans of the grid, one per cell (input rows of `price`)."""
    types = list(config.lgd)
    g, t, i = (axis.ravel() for axis in np.meshgrid(np.arange(len(grades)), np.arange(len(types)),
                                                    np.arange(len(teams)), indexing="ij"))
    gt = np.asarray(types, dtype=object)[t]
    return pd.DataFrame({
        "loan_id": np.arange(1, g.size + 1),
        "grade": np.asarray(grades, dtype=object)[g],
        "guarantee_type": gt,
        "industry_team": np.asarray(teams, dtype=object)[i],
        "pd": np.asarray(grade_pds, dtype=np.float64)[g],
        "ead": np.full(g.size, config.grid_ead),
        "maturity_years": np.full(g.size, config.default_maturity_years),
        "group_id": pd.arrays.IntegerArray(np.ones(g.size, dtype=np.int64), gt != group_type),  # a group or none
    })


def rate_grid(grades: Sequence[str], grade_pds: Sequence[float], teams: Sequence[str], config: PricingConfig,
              *, only_teams: Sequence[str] | None = None) -> pd.DataFrame:
    """The grid as a frame: GRID_COLUMNS, then per preferential product its EVA and the EVA given up.

    `only_teams` restricts the grid to some teams; one that is not among `teams` raises RequestError."""
    if only_teams:
        unknown = [x for x in only_teams if x not in teams]
        if unknown:
            raise RequestError(f"price grid: industry team {unknown[0]!r} is unknown; expected one of {list(teams)}")
        teams = list(only_teams)
    apps = grid_applications(grades, grade_pds, teams, config)
    priced = price(apps, config)
    out = priced.drop(columns=["loan_id"])
    out.insert(2, "industry_team", apps["industry_team"].to_numpy())
    cols = [c for c in GRID_COLUMNS if c in out.columns]
    out = out[cols + [c for c in ("group_lgd_effect", "group_capital_effect") if c in out.columns]].copy()
    for product, discount in config.preferential_discount.items():
        offered = np.maximum(priced["rate"].to_numpy() - discount, config.min_rate)
        e = eva(offered, config.funding_cost, config.operating_cost, priced["expected_loss"].to_numpy(),
                priced["k"].to_numpy(), priced["ead"].to_numpy(), config)
        out[f"rate_{product}"] = offered
        out[f"eva_{product}"] = e
        out[f"eva_given_up_{product}"] = priced["eva"].to_numpy() - e
    return out


def grid_html(grid: pd.DataFrame, *, labels: dict[str, dict[str, str]] | None = None, title_en: str = "Rate grid",
              title_zh: str = "定价模板：利率表") -> str:
    """The grid as a self-contained heatmap page, headings in Chinese and English: one table per guarantee
    type, grades down, industry teams across, each cell the offered rate coloured from low to high,
    with its components, RAROC and EVA in the cell's tooltip. `labels`: the dictionary's guarantee-type
    labels ({value: {"en": ..., "zh": ...}})."""
    from html import escape

    from creditmodel.texts import column_heading, grade_name

    labels = labels or {}
    lo, hi = float(grid["rate"].min()), float(grid["rate"].max())

    def colour(r: float) -> str:
        x = 0.0 if hi <= lo else (r - lo) / (hi - lo)
        return f"rgb({int(255 * min(1, 2 * x))},{int(255 * min(1, 2 * (1 - x)))},120)"

    parts = [f"<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>{escape(title_zh)} · "
             f"{escape(title_en)}</title><style>body{{font-family:'Noto Sans CJK SC','Microsoft YaHei',"
             f"'PingFang SC',sans-serif}}td,th{{padding:4px 8px;text-align:right;border:1px solid #ccc}}"
             f"table{{border-collapse:collapse;margin-bottom:1.5em}}</style></head><body>",
             f"<h1>{escape(title_zh)} · {escape(title_en)}</h1>",
             f"<p>执行利率 {lo:.2%} – {hi:.2%} · offered rate {lo:.2%} – {hi:.2%}</p>"]
    teams = list(dict.fromkeys(grid["industry_team"]))
    for gt, part in grid.groupby("guarantee_type", sort=False):
        lab = labels.get(gt, {})
        parts.append(f"<h2>{escape(lab.get('zh', gt))} · {escape(lab.get('en', gt))}</h2><table><tr>"
                     f"<th>{column_heading('grade', 'zh')} · {column_heading('grade', 'en')}</th>"
                     + "".join(f"<th>{escape(str(t))}</th>" for t in teams) + "</tr>")
        for grade, rows in part.groupby("grade", sort=False):
            parts.append(f"<tr><th>{escape(grade_name(grade, 'zh'))} · {escape(grade_name(grade, 'en'))}</th>")
            by_team = rows.set_index("industry_team")
            for t in teams:
                r = by_team.loc[t]
                tip = "; ".join(f"{column_heading(c, 'zh')} {column_heading(c, 'en')} {r[c]:.4%}"
                                for c in COMPONENTS) + f"; RAROC {r['raroc']:.1%}; EVA {r['eva']:,.0f}"
                parts.append(f"<td style='background:{colour(float(r['rate']))}' title='{escape(tip)}'>"
                             f"{r['rate']:.2%}</td>")
            parts.append("</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)
