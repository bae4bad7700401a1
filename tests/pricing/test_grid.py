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
    assert len(grid) == 3 * len(CFG.lgd) * 2
    for row in grid.itertuples():
        loan = pd.DataFrame({"loan_id": [1], "guarantee_type": [row.guarantee_type], "pd": [row.pd],
                             "ead": [CFG.grid_ead], "maturity_years": [CFG.default_maturity_years],
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
