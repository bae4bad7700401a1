"""The validation report counts the out-of-time loans outside the bank's own policy rules (the run config's data
dictionary), not the shipped ones."""

from __future__ import annotations

from creditmodel.config import ValidationConfig
from creditmodel.data.dictionary import load_dictionary
from creditmodel.validation.suite import policy

BANK = """
[[policy]]
name = "county_authority"
table = "loans"
column = "amount"
max = 1000000
en = "Above the county branch's authority (CNY 1 million)"
zh = "超出县支行审批权限（100万元）"
"""


def test_the_policy_section_counts_the_bank_rules(demo_run, tmp_path):
    from creditmodel.validation.report import load_evidence

    uri, run_id = demo_run["tracking_uri"], demo_run["result"].tracked.run_id
    ev = load_evidence(f"runs:/{run_id}/model", uri, tmp_path / "ev")
    oot = ev.features[ev.features["split"] == "oot"]
    amount = oot["amount" if "amount" in oot.columns else "loan_amount"]
    shipped = policy(ev, ValidationConfig()).tables[0][1].set_index("rule")
    assert list(shipped.index) == ["approval_authority", "term_limit"]
    assert shipped.loc["approval_authority", "loans"] == int((amount > 5_000_000).sum())
    path = tmp_path / "dictionary.toml"
    path.write_text(BANK, encoding="utf-8")
    ev.dictionary = load_dictionary(path)
    section = policy(ev, ValidationConfig())
    bank = section.tables[0][1].set_index("rule")
    expected = int((amount > 1_000_000).sum())
    assert list(bank.index) == ["county_authority"] and 0 < expected < len(oot)
    assert bank.loc["county_authority", "loans"] == expected
    assert bank.loc["county_authority", "text_zh"] == "超出县支行审批权限（100万元）"
    assert section.findings[0].value == expected and "rules: county_authority" in section.findings[0].note
