"""The published rate grid: credit grade x guarantee type x industry team, every cell priced by `price`.

A cell is one reference loan: the grade's assigned PD (the master scale's), the guarantee type's LGD
(a cell of config.grid_group_type, the bank's joint-guarantee group, carries a group, so joint liability
and correlated default apply),
the exposure config.grid_ead and the default maturity. The cell's figures are `price`'s output for
that loan, so a loan with the same terms gets exactly the cell's rate. The industry team enters
through the PD's grade only (the model prices the industry); the column makes the grid the template
a team publishes. Preferential products (config.preferential_discount) are offered below the rate:
eva_<product> is the EVA at the discounted rate (not below the floor) and eva_given_up_<product>
what the discount costs a year.

Guarantors: the cells of config.grid_guarantor_type (a third-party guarantee) are priced once per
guarantor grade, the guarantor's PD being that grade's (``guarantor_grade``, empty in other cells), so
that the grid shows what a guarantee by a better-rated enterprise is worth, by
config.guarantee_treatment (substitution: the lower of the two PDs; or double default).

Approval authority: every cell carries ``approval_authority`` (the unit's limit on the loan amount, from
the data dictionary's policy rules; empty when it has none) and ``needs_referral`` / ``referral_rules``
for its reference loan. With ``amounts`` the grid gains an exposure dimension (one set of cells per
amount) and the cells above the authority are priced like any other and flagged for referral.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from creditmodel.config import PricingConfig
from creditmodel.data.dictionary import DataDictionary, default_dictionary
from creditmodel.data.policy import applicable_rules, approval_authority, policy_flags
from creditmodel.exceptions import RequestError
from creditmodel.pricing.engine import COMPONENTS, price
from creditmodel.pricing.raroc import eva

GRID_COLUMNS = ("grade", "guarantee_type", "guarantor_grade", "industry_team", "pd", "lgd", "ead", "k", *COMPONENTS,
                "risk_covering_rate", "rate", "floored", "capped", "raroc", "eva")


def grid_applications(grades: Sequence[str], grade_pds: Sequence[float], teams: Sequence[str],
                      config: PricingConfig, *, amounts: Sequence[float] | None = None) -> pd.DataFrame:
    """The reference loans of the grid, one per cell (input rows of `price`); `amounts`: the exposures
    of an amount dimension (default: config.grid_ead alone). The cells of config.grid_group_type carry a
    group."""
    types = list(config.lgd)
    eads = np.asarray([config.grid_ead] if amounts is None else list(amounts), dtype=np.float64)
    a, g, t, i = np.meshgrid(np.arange(eads.size), np.arange(len(grades)), np.arange(len(types)),
                             np.arange(len(teams)), indexing="ij")
    a, g, t, i = a.ravel(), g.ravel(), t.ravel(), i.ravel()
    gt = np.asarray(types, dtype=object)[t]
    apps = pd.DataFrame({
        "grade": np.asarray(grades, dtype=object)[g],
        "guarantee_type": gt,
        "guarantor_grade": np.full(g.size, None, dtype=object),
        "industry_team": np.asarray(teams, dtype=object)[i],
        "pd": np.asarray(grade_pds, dtype=np.float64)[g],
        "pd_guarantor": np.full(g.size, np.nan),
        "ead": eads[a],
        "maturity_years": np.full(g.size, config.default_maturity_years),
        "group_id": pd.arrays.IntegerArray(np.ones(g.size, dtype=np.int64), gt != config.grid_group_type),  # or none
    })
    guaranteed = apps["guarantee_type"].to_numpy() == config.grid_guarantor_type
    if guaranteed.any():  # one cell per guarantor grade, in the grades' order, in place of the one cell
        rows = apps[guaranteed]
        per = [rows.assign(guarantor_grade=grade, pd_guarantor=float(p_)) for grade, p_ in zip(grades, grade_pds)]
        apps = pd.concat([apps[~guaranteed], *per]).sort_index(kind="stable")
    return apps.reset_index(drop=True).assign(loan_id=lambda f: np.arange(1, len(f) + 1))


def rate_grid(grades: Sequence[str], grade_pds: Sequence[float], teams: Sequence[str], config: PricingConfig,
              *, only_teams: Sequence[str] | None = None, amounts: Sequence[float] | None = None,
              dictionary: DataDictionary | None = None) -> pd.DataFrame:
    """The grid as a frame: GRID_COLUMNS, then per preferential product its EVA and the EVA given up, then
    approval_authority, needs_referral and referral_rules (the policy rules of `dictionary`, default the
    shipped one, on the reference loan's amount and term).

    `only_teams` restricts the grid to some teams; one that is not among `teams` raises RequestError.
    `amounts`: an exposure dimension (CNY, each > 0); default one exposure, config.grid_ead."""
    if only_teams:
        unknown = [x for x in only_teams if x not in teams]
        if unknown:
            raise RequestError.of("error.pricing.grid_team", team=unknown[0], teams=list(teams))
        teams = list(only_teams)
    if amounts is not None:
        bad = [a for a in amounts if not (np.isfinite(a) and a > 0)]
        if bad:
            raise RequestError.of("error.pricing.grid_amount", value=bad[0])
        if not len(amounts):
            raise RequestError.of("error.pricing.grid_no_amounts")
    apps = grid_applications(grades, grade_pds, teams, config, amounts=amounts)
    priced = price(apps, config)
    out = priced.drop(columns=["loan_id"])
    out.insert(2, "industry_team", apps["industry_team"].to_numpy())
    out.insert(2, "guarantor_grade", apps["guarantor_grade"].to_numpy())
    cols = [c for c in GRID_COLUMNS if c in out.columns]
    extra = ("pd_guarantor", "pd_priced", "guarantee_treatment", "group_lgd_effect", "group_capital_effect")
    out = out[cols + [c for c in extra if c in out.columns]].copy()
    for product, discount in config.preferential_discount.items():
        offered = np.maximum(priced["rate"].to_numpy() - discount, config.min_rate)
        e = eva(offered, config.funding_cost, config.operating_cost, priced["expected_loss"].to_numpy(),
                priced["k"].to_numpy(), priced["ead"].to_numpy(), config)
        out[f"rate_{product}"] = offered
        out[f"eva_{product}"] = e
        out[f"eva_given_up_{product}"] = priced["eva"].to_numpy() - e
    d = default_dictionary() if dictionary is None else dictionary
    authority = approval_authority(d)
    flags = policy_flags(apps.assign(amount=apps["ead"], term_months=apps["maturity_years"] * 12),
                         applicable_rules(d, {"amount", "term_months"}))
    out["approval_authority"] = np.nan if authority is None else authority
    out["needs_referral"] = flags["needs_referral"].to_numpy()
    out["referral_rules"] = flags["referral_rules"].to_numpy()
    return out


def grid_html(grid: pd.DataFrame, *, labels: dict[str, dict[str, str]] | None = None, title_en: str = "Rate grid",
              title_zh: str = "定价模板：利率表", team_labels: dict[str, dict[str, str]] | None = None,
              currency: str = "CNY") -> str:
    """The grid as a self-contained heatmap page, headings in Chinese and English: one table per guarantee
    type, grades down, industry teams across, each cell the offered rate coloured from low to high,
    with its components, RAROC and EVA in the cell's tooltip. `labels`: the dictionary's guarantee-type
    labels ({value: {"en": ..., "zh": ...}}); `team_labels`: the industry teams' labels, alike; `currency`:
    the data dictionary's, which the amounts are in."""
    from html import escape

    from creditmodel.texts import FONT_STACK, column_heading, grade_name, text

    labels = labels or {}
    teams_said = team_labels or {}

    def team_name(team: str) -> str:
        lab = teams_said.get(team, {})
        return " · ".join(dict.fromkeys(x for x in (lab.get("zh"), lab.get("en")) if x)) or str(team)

    lo, hi = float(grid["rate"].min()), float(grid["rate"].max())

    def colour(r: float) -> str:
        x = 0.0 if hi <= lo else (r - lo) / (hi - lo)
        return f"rgb({int(255 * min(1, 2 * x))},{int(255 * min(1, 2 * (1 - x)))},120)"

    parts = [f"<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>{escape(title_zh)} · "
             f"{escape(title_en)}</title><style>body{{font-family:{FONT_STACK}}}"
             f"td,th{{padding:4px 8px;text-align:right;border:1px solid #ccc}}"
             f"table{{border-collapse:collapse;margin-bottom:1.5em}}td.refer{{outline:2px solid #c62828}}"
             f"</style></head><body>",
             f"<h1>{escape(title_zh)} · {escape(title_en)}</h1>",
             f"<p>执行利率 {lo:.2%} – {hi:.2%} · offered rate {lo:.2%} – {hi:.2%}</p>"]
    authority = grid["approval_authority"].iloc[0] if "approval_authority" in grid.columns else np.nan
    if not pd.isna(authority):
        n_ref = int(grid["needs_referral"].sum())
        parts.append("<p class='authority'>" + " · ".join(
            escape(text("grid.authority", lang, authority=float(authority), n=n_ref, currency=currency))
            for lang in ("zh", "en"))
            + "</p>")
    teams = list(dict.fromkeys(grid["industry_team"]))
    several = grid["ead"].nunique() > 1
    keys = grid.assign(guarantor_grade=grid["guarantor_grade"].fillna("")) if "guarantor_grade" in grid else \
        grid.assign(guarantor_grade="")
    for (gt, ead, guarantor), part in keys.groupby(["guarantee_type", "ead", "guarantor_grade"], sort=False):
        lab = labels.get(gt, {})
        amount = (" · " + " · ".join(escape(text("grid.amount", lang, ead=float(ead), currency=currency))
                                  for lang in ("zh", "en"))
                  if several else "")
        if guarantor:
            amount += " · " + " · ".join(escape(text("grid.guarantor", lang, grade=grade_name(guarantor, lang)))
                                         for lang in ("zh", "en"))
        parts.append(f"<h2>{escape(lab.get('zh', gt))} · {escape(lab.get('en', gt))}{amount}</h2><table><tr>"
                     f"<th>{column_heading('grade', 'zh')} · {column_heading('grade', 'en')}</th>"
                     + "".join(f"<th>{escape(team_name(t))}</th>" for t in teams) + "</tr>")
        for grade, rows in part.groupby("grade", sort=False):
            parts.append(f"<tr><th>{escape(grade_name(grade, 'zh'))} · {escape(grade_name(grade, 'en'))}</th>")
            by_team = rows.set_index("industry_team")
            for t in teams:
                r = by_team.loc[t]
                tip = "; ".join(f"{column_heading(c, 'zh')} {column_heading(c, 'en')} {r[c]:.4%}"
                                for c in COMPONENTS) + f"; RAROC {r['raroc']:.1%}; EVA {r['eva']:,.0f}"
                refer = bool(r["needs_referral"]) if "needs_referral" in r.index else False
                if refer:
                    tip += "; " + " · ".join(text("grid.refer", lang) for lang in ("zh", "en"))
                mark = " class='refer'" if refer else ""
                parts.append(f"<td{mark} style='background:{colour(float(r['rate']))}' title='{escape(tip)}'>"
                             f"{r['rate']:.2%}{' ⚑' if refer else ''}</td>")
            parts.append("</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)
