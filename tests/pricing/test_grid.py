"""`creditmodel price grid`: the rate grid's cells are the per-loan engine's prices; CSV and heatmap; bad team."""

import numpy as np
import pandas as pd

from creditmodel.cli import main
from creditmodel.config import PricingConfig
from creditmodel.pricing import price
from creditmodel.pricing.grid import rate_grid

CFG = PricingConfig()


def test_every_cell_is_the_engine_price_of_its_reference_loan():
    grid = rate_grid(["A1", "B2", "C3"], [0.002, 0.02, 0.15], ["furniture", "livestock"], CFG)
    # the third-party guarantee's cells once per guarantor grade
    assert len(grid) == 3 * (len(CFG.lgd) - 1 + 3) * 2
    for row in grid.itertuples():
        loan = pd.DataFrame({"loan_id": [1], "guarantee_type": [row.guarantee_type], "pd": [row.pd],
                             "ead": [CFG.grid_ead], "maturity_years": [CFG.default_maturity_years],
                             "pd_guarantor": [row.pd_guarantor],
                             "group_id": pd.array([7 if row.guarantee_type == "joint_group" else None], dtype="Int64")})
        one = price(loan, CFG).iloc[0]
        for col in ("lgd", "k", "expected_loss", "capital_charge", "risk_covering_rate", "rate", "raroc", "eva"):
            assert getattr(row, col) == one[col], (row.grade, row.guarantee_type, col)
    # the preferential discount costs exactly discount x EAD a year where the floor does not bind
    free = grid["rate"] - 0.012 >= CFG.min_rate
    np.testing.assert_allclose(grid.loc[free, "eva_given_up_preferential"], 0.012 * CFG.grid_ead)
    # a guarantee lowers the rate: collateral below unsecured in every grade
    pivot = grid.pivot_table(index="grade", columns="guarantee_type", values="rate")
    assert (pivot["collateral"] < pivot["unsecured"]).all()


def test_a_guarantor_grade_prices_the_third_party_cells_by_substitution():
    """Substitution by hand: a third-party cell is priced at the lower of the borrower's and the
    guarantor's PD; with the third-party LGD equal to the unsecured one (the default, 0.45), its rate
    is the unsecured rate of the better of the two grades."""
    grades, pds = ["A1", "B2", "C3"], [0.002, 0.02, 0.15]
    grid = rate_grid(grades, pds, ["furniture"], CFG)
    assert CFG.lgd["third_party"] == CFG.lgd["unsecured"]
    unsecured = grid[grid["guarantee_type"] == "unsecured"].set_index("grade")["rate"]
    third = grid[grid["guarantee_type"] == "third_party"]
    assert sorted(map(tuple, third[["grade", "guarantor_grade"]].to_numpy())) == [(b, g) for b in grades for g in grades]
    for row in third.itertuples():
        better = grades[min(grades.index(row.grade), grades.index(row.guarantor_grade))]
        assert row.pd_priced == min(pds[grades.index(row.grade)], pds[grades.index(row.guarantor_grade)])
        assert row.rate == unsecured[better], (row.grade, row.guarantor_grade)
    # a guarantor rated A1 lowers a C3 borrower's rate; one rated below the borrower changes nothing
    cell = third.set_index(["grade", "guarantor_grade"])["rate"]
    assert cell[("C3", "A1")] < unsecured["C3"] and cell[("A1", "C3")] == unsecured["A1"]
    assert grid.loc[grid["guarantee_type"] != "third_party", "guarantor_grade"].isna().all()
    none = rate_grid(grades, pds, ["furniture"], CFG.model_copy(update={"grid_guarantor_type": None}))
    assert len(none) == 3 * len(CFG.lgd) and none["guarantor_grade"].isna().all()


def test_the_bank_names_its_joint_guarantee_group():
    """A bank whose joint-guarantee groups are guarantee type "mutual_group" (and has no "joint_group"): its
    cells carry the group, priced as the shipped joint_group cells are."""
    grades, pds = ["A1", "B2", "C3"], [0.002, 0.02, 0.15]
    lgd = {"unsecured": 0.45, "mutual_group": CFG.lgd["joint_group"]}
    mine = rate_grid(grades, pds, ["furniture"], CFG.model_copy(update={"lgd": lgd, "grid_group_type": "mutual_group",
                                                                       "grid_guarantor_type": None}))
    shipped = rate_grid(grades, pds, ["furniture"], CFG).set_index(["grade", "guarantee_type"])
    cols = ["lgd", "k", "rate", "raroc", "eva"]
    group = mine[mine["guarantee_type"] == "mutual_group"].set_index("grade")[cols]
    for grade in grades:
        assert group.loc[grade].tolist() == shipped.loc[(grade, "joint_group"), cols].tolist()
    assert (group["lgd"] < lgd["mutual_group"]).all()  # the other members' joint liability lowers the loss
    ungrouped = rate_grid(grades, pds, ["furniture"], CFG.model_copy(update={"lgd": lgd, "grid_guarantor_type": None}))
    assert (ungrouped[ungrouped["guarantee_type"] == "mutual_group"]["lgd"] == lgd["mutual_group"]).all()


def test_the_heatmap_names_the_amounts_in_the_dictionary_currency():
    from creditmodel.pricing.grid import grid_html

    grid = rate_grid(["A1", "C3"], [0.002, 0.15], ["furniture"], CFG, amounts=[500_000, 9_000_000])
    assert "exposure USD 500,000" in grid_html(grid, currency="USD")
    assert "贷款金额 500,000 USD" in grid_html(grid, currency="USD")
    assert "approval authority of the unit: USD 5,000,000" in grid_html(grid, currency="USD")
    shipped = grid_html(grid)
    assert "贷款金额 500,000 元" in shipped and "approval authority of the unit: CNY 5,000,000" in shipped


def test_price_grid_writes_csv_and_heatmap(demo_run, tmp_path, capsys):
    out = tmp_path / "grid.csv"
    assert main(["price", "grid", "--bundle", str(demo_run["result"].bundle_dir), "--out", str(out)]) == 0
    grid = pd.read_csv(out)
    page = (tmp_path / "grid.html").read_text(encoding="utf-8")
    assert "信用" in page and "Joint-guarantee group" in page and "联保" in page
    assert grid["rate"].between(CFG.min_rate, CFG.max_rate).all()
    said = capsys.readouterr().out
    assert f"{grid['rate'].min():.2%}" in said
    assert main(["price", "grid", "--bundle", str(demo_run["result"].bundle_dir), "--out",
                 str(tmp_path / "zh.csv"), "--lang", "zh"]) == 0
    assert "执行利率" in pd.read_csv(tmp_path / "zh.csv").columns


def test_price_grid_with_an_unknown_team_writes_nothing(demo_run, tmp_path, capsys):
    out = tmp_path / "grid.csv"
    assert main(["price", "grid", "--bundle", str(demo_run["result"].bundle_dir), "--out", str(out),
                 "--teams", "furniture,spaceflight"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "industry team 'spaceflight' is unknown" in err[0]
    assert not out.exists() and not (tmp_path / "grid.html").exists()


def test_amount_dimension_flags_the_cells_above_the_approval_authority():
    import pytest

    from creditmodel.exceptions import RequestError

    amounts = [1_000_000.0, 5_000_000.0, 6_000_000.0]
    grid = rate_grid(["A1", "C3"], [0.002, 0.15], ["furniture"], CFG, amounts=amounts)
    assert len(grid) == 3 * 2 * (len(CFG.lgd) - 1 + 2)   # third-party cells once per guarantor grade
    assert (grid["approval_authority"] == 5_000_000).all()  # the shipped dictionary's approval_authority rule
    assert grid.groupby("ead")["needs_referral"].all().to_dict() == {1e6: False, 5e6: False, 6e6: True}
    assert not grid.loc[grid["ead"] <= 5e6, "needs_referral"].any()
    assert (grid.loc[grid["needs_referral"], "referral_rules"] == "approval_authority").all()
    for row in grid[grid["guarantee_type"] == "unsecured"].itertuples():  # priced like any loan of that size
        loan = pd.DataFrame({"loan_id": [1], "guarantee_type": ["unsecured"], "pd": [row.pd], "ead": [row.ead],
                             "maturity_years": [CFG.default_maturity_years],
                             "group_id": pd.array([None], dtype="Int64")})
        one = price(loan, CFG).iloc[0]
        assert (row.rate, row.k, row.eva) == (one["rate"], one["k"], one["eva"])
    plain = rate_grid(["A1"], [0.002], ["furniture"], CFG)  # no amount dimension: the authority as a column
    assert (plain["approval_authority"] == 5e6).all() and not plain["needs_referral"].any()
    for bad in ([0.0], [-1.0], [float("nan")], []):
        with pytest.raises(RequestError, match="price grid: amount"):
            rate_grid(["A1"], [0.002], ["furniture"], CFG, amounts=bad)


def test_the_heatmap_marks_the_cells_to_refer():
    from creditmodel.pricing.grid import grid_html

    grid = rate_grid(["A1", "C3"], [0.002, 0.15], ["furniture"], CFG, amounts=[1e6, 6e6])
    page = grid_html(grid)
    assert page.count("class='refer'") == int(grid["needs_referral"].sum()) == 2 * (len(CFG.lgd) - 1 + 2)
    assert "保证人评级 A1" in page and "guarantor rated A1" in page
    assert "审批权限：5,000,000 元" in page and "approval authority of the unit: CNY 5,000,000" in page
    assert "贷款金额 6,000,000 元" in page


def test_price_grid_with_a_bad_amount_writes_nothing(demo_run, tmp_path, capsys):
    out = tmp_path / "grid.csv"
    assert main(["price", "grid", "--bundle", str(demo_run["result"].bundle_dir), "--out", str(out),
                 "--amounts", "500000,lots"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--amounts 500000,lots: 'lots' is not an amount" in err[0]
    assert not out.exists() and not (tmp_path / "grid.html").exists()
    assert main(["price", "grid", "--bundle", str(demo_run["result"].bundle_dir), "--out", str(out),
                 "--amounts", "500000,6000000"]) == 0
    grid = pd.read_csv(out)
    assert grid.groupby("ead")["needs_referral"].all().to_dict() == {5e5: False, 6e6: True}
