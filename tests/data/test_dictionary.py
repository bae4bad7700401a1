"""The data dictionary: shipped defaults, a bank's own vocabularies, attributes and policy rules."""

from __future__ import annotations

import tomllib

import numpy as np
import pandas as pd
import pytest
from test_contracts import make_tables

from creditmodel.cli import main
from creditmodel.config import build_config
from creditmodel.data import schema
from creditmodel.data.contracts import ignored_columns, validate_tables
from creditmodel.data.dictionary import (
    Attribute,
    PolicyRule,
    default_dictionary,
    dictionary_toml,
    load_dictionary,
    parse_dictionary,
    write_default_dictionary,
)
from creditmodel.data.policy import policy_flags, referral_summary
from creditmodel.exceptions import ConfigError, DataContractError
from creditmodel.features.catalogue import CATALOGUE, catalogue
from creditmodel.features.matrix import FeatureSchema

# The vocabularies as they were Python constants in schema.py before they became data: the shipped
# default must reproduce them exactly (order included: it fixes the synthetic world's draws).
OLD_CONSTANTS = {
    "legal_form": ("sole_trader", "farmer_household", "limited_company"),
    "industry": ("bamboo_products", "furniture", "agri_processing", "commerce_trade", "livestock", "forestry",
                 "horticulture", "medicinal_herbs", "vegetables", "grain_oil"),
    "registration_event_kind": ("legal_rep_change", "abnormal_listing", "abnormal_removal", "penalty"),
    "direction": ("in", "out"),
    "channel": ("pos", "transfer", "cash", "direct_link"),
    "product": ("micro", "working_capital", "joint_guarantee_group", "growth", "preferential"),
    "guarantee_type": ("unsecured", "third_party", "collateral", "joint_group"),
}
# the old valid domains that stay (loans.amount <= 5e6 and term <= 120 became policy rules)
OLD_BOUNDS = {
    "enterprises.registered_capital": (0, 1e10), "enterprises.owner_birth_year": (1900, 2015),
    "registration_events.amount": (0, 1e9), "court_cases.amount": (0, 1e10), "transactions.amount": (0, 1e9),
    "financial_statements.revenue": (0, 1e10), "financial_statements.net_profit": (-1e10, 1e10),
    "loans.rate": (0, 0.36), "repayments.days_past_due": (0, 3650), "loans.loan_id": (0, None),
}

FOREIGN = """
currency = "USD"

[vocabularies]
industry = ["retail", "construction", "transport", "hospitality"]
product = ["term_loan", "line_of_credit", "sba_7a"]
guarantee_type = ["none", "personal", "real_estate"]
legal_form = ["llc", "corporation", "sole_proprietor"]

[labels.industry.retail]
en = "Retail"
zh = "零售"

[[policy]]
name = "approval_authority"
table = "loans"
column = "amount"
max = 2000000
en = "Above the branch's authority"
zh = "超出分行审批权限"

[[policy]]
name = "long_term"
table = "loans"
column = "term_months"
max = 240

[[attributes]]
table = "loans"
name = "purpose"
kind = "categorical"
categories = ["equipment", "working_capital", "real_estate"]
en = "Loan purpose"
zh = "贷款用途"

[[attributes]]
table = "enterprises"
name = "employees"
kind = "numeric"
direction = -1
min = 0
en = "Employees"
zh = "员工人数"
reason_en = "Few employees"
reason_zh = "员工人数少"

[[attributes]]
table = "loans"
name = "new_business"
kind = "bool"
direction = 1
"""


@pytest.fixture
def foreign(tmp_path):
    path = tmp_path / "bank.toml"
    path.write_text(FOREIGN, encoding="utf-8")
    return load_dictionary(path)


def foreign_tables() -> dict[str, pd.DataFrame]:
    """The tiny valid world of test_contracts in another bank's vocabulary, with its own columns."""
    t = make_tables()
    t["enterprises"]["legal_form"] = ["llc", "corporation", "sole_proprietor"]
    t["enterprises"]["industry"] = ["retail", "construction", "transport"]
    t["enterprises"]["employees"] = [3, None, 12]
    t["loans"]["product"] = ["term_loan", "line_of_credit", "sba_7a", "term_loan"]
    t["loans"]["guarantee_type"] = ["none", "real_estate", "personal", "none"]
    t["loans"]["term_months"] = [12, 300, 12, 24]  # 25 years: normal elsewhere
    t["loans"]["purpose"] = ["equipment", "working_capital", None, "real_estate"]
    t["loans"]["new_business"] = ["yes", "no", "no", None]
    t["loans"]["branch_code"] = ["A1", "B2", "A1", "C3"]  # not declared: ignored, and listed
    return t


# ---------------------------------------------------------------------------- the shipped default


def test_default_reproduces_the_old_constants():
    d = default_dictionary()
    assert {k: v for k, v in d.vocabularies.items() if k in OLD_CONSTANTS} == OLD_CONSTANTS
    assert d.vocabulary("collateral_type") == ("land_use_right", "building", "equipment", "deposit_pledge",
                                               "forest_right")
    assert all(d.label("collateral_type", v, "zh") != v for v in d.vocabulary("collateral_type"))
    assert d.currency == "CNY"
    for key, bound in OLD_BOUNDS.items():
        assert d.bounds[key] == bound, key
    t = schema.TABLES
    assert t["loans"].column("guarantee_type").categories == OLD_CONSTANTS["guarantee_type"]
    assert t["enterprises"].column("industry").categories == OLD_CONSTANTS["industry"]
    assert t["transactions"].column("channel").categories == OLD_CONSTANTS["channel"]
    assert (t["loans"].column("amount").min_value, t["loans"].column("amount").max_value) == (1, 1e12)
    assert (t["loans"].column("term_months").min_value, t["loans"].column("term_months").max_value) == (1, 600)
    rules = {r.name: (r.table, r.column, r.min_value, r.max_value) for r in d.policies}
    assert rules == {"approval_authority": ("loans", "amount", None, 5e6),
                     "term_limit": ("loans", "term_months", None, 120)}
    assert d.attributes == ()


def test_every_default_value_and_rule_reads_in_english_and_chinese():
    d = default_dictionary()
    for name, values in d.vocabularies.items():
        for value in values:
            texts = d.labels[name][value]
            assert texts["en"].strip() and texts["zh"].strip(), (name, value)
            assert any("\u4e00" <= ch <= "\u9fff" for ch in texts["zh"]), (name, value)
    assert d.label("guarantee_type", "collateral", "zh") == "抵押"
    assert d.label("industry", "bamboo_products") == "Bamboo products"
    for r in d.policies:
        assert r.en and any("\u4e00" <= ch <= "\u9fff" for ch in r.zh)


def test_the_catalogue_takes_its_categories_from_the_dictionary(foreign):
    by_name = {f.name: f for f in CATALOGUE}
    assert by_name["industry"].categories == OLD_CONSTANTS["industry"]
    assert by_name["guarantee_type"].categories == OLD_CONSTANTS["guarantee_type"]
    own = {f.name: f for f in catalogue(foreign)}
    assert own["industry"].categories == ("retail", "construction", "transport", "hospitality")
    assert own["legal_form"].categories == ("llc", "corporation", "sole_proprietor")
    assert own["product"].categories == ("term_loan", "line_of_credit", "sba_7a")
    schema_ = FeatureSchema.for_columns(["industry", "loan_amount"], catalogue(foreign))
    frame = pd.DataFrame({"industry": ["transport", "retail"], "loan_amount": [1.0, 2.0]})
    np.testing.assert_array_equal(schema_.encode(frame)[:, 0], [2.0, 0.0])  # code = position in the vocabulary


# ---------------------------------------------------------------------------- writing and reading


def test_data_dictionary_out_round_trips_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "bank.toml"
    assert main(["data", "dictionary", "--out", str(out)]) == 0
    assert "wrote the default data dictionary" in capsys.readouterr().out
    assert load_dictionary(out) == default_dictionary()
    assert "approval authority" in out.read_text(encoding="utf-8")  # the comments ship too
    before = out.read_bytes()
    assert main(["data", "dictionary", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists; refusing to overwrite" in err[0]
    assert out.read_bytes() == before
    with pytest.raises(ConfigError, match="expected a .toml file name"):
        write_default_dictionary(tmp_path / "bank.txt")
    with pytest.raises(ConfigError, match="does not exist"):
        write_default_dictionary(tmp_path / "no" / "such" / "dir.toml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.toml"]


def test_a_bank_dictionary_round_trips_through_toml(foreign):
    text = dictionary_toml(foreign)
    again = parse_dictionary(tomllib.loads(text), defaults=default_dictionary())
    assert again == foreign
    assert parse_dictionary(tomllib.loads(dictionary_toml(default_dictionary()))) == default_dictionary()


def test_a_bank_dictionary_replaces_what_it_gives_and_keeps_the_rest(foreign):
    assert foreign.currency == "USD"
    assert foreign.vocabulary("industry") == ("retail", "construction", "transport", "hospitality")
    assert foreign.vocabulary("channel") == OLD_CONSTANTS["channel"]  # not given: the default's
    assert foreign.labels["industry"] == {"retail": {"en": "Retail", "zh": "零售"}}
    assert foreign.label("industry", "transport") == "transport"  # no label: the value itself
    assert foreign.bounds == default_dictionary().bounds
    assert [r.name for r in foreign.policies] == ["approval_authority", "long_term"]
    assert foreign.attribute("loans", "purpose") == Attribute(
        "loans", "purpose", "categorical", ("equipment", "working_capital", "real_estate"), 0, None, None,
        "Loan purpose", "贷款用途")
    assert foreign.attribute("enterprises", "employees").min_value == 0
    assert foreign.attribute("loans", "nothing") is None


@pytest.mark.parametrize("toml, match", [
    ('colour = "red"\n', "unknown key 'colour'"),
    ('[vocabularies]\nindustry = ["a", "a"]\n', "vocabularies.industry: value 'a' is listed twice"),
    ('[vocabularies]\nindustry = []\n', "vocabularies.industry: expected a non-empty list"),
    ('[vocabularies]\nsector = ["a"]\n', "vocabularies: unknown key 'sector'"),
    ('[vocabularies]\ndirection = ["credit", "debit"]\n',
     r"vocabularies.direction: \['credit', 'debit'\]: expected exactly \['in', 'out'\], the values the feature "
     r"catalogue"),
    ('[vocabularies]\nregistration_event_kind = ["legal_rep_change", "abnormal_listing", "fine"]\n',
     r"vocabularies.registration_event_kind: 'abnormal_removal' is missing: the feature catalogue and the triggers "
     r"read \['legal_rep_change', 'abnormal_listing', 'abnormal_removal', 'penalty'\] \(other values may be added\)"),
    ('[labels.industry.gold]\nen = "Gold"\n', "'gold' is not a value of vocabulary industry"),
    ('[bounds]\n"loans.colour" = { min = 0 }\n', "not a numeric column of the canonical tables"),
    ('[bounds]\n"loans.amount" = { min = 5, max = 1 }\n', "min 5 is above max 1"),
    ('[bounds]\n"loans.amount" = { min = "zero" }\n', "expected a number, got 'zero'"),
    ('[[policy]]\nname = "x"\ntable = "loans"\ncolumn = "amount"\n', "policy x: needs a min or a max"),
    ('[[policy]]\nname = "x"\ntable = "loans"\ncolumn = "product"\nmax = 1\n',
     "loans.product is not a numeric column"),
    ('[[attributes]]\ntable = "loans"\nname = "p"\nkind = "text"\n', "kind: 'text': expected one of"),
    ('[[attributes]]\ntable = "repayments"\nname = "p"\nkind = "bool"\n', "table: 'repayments': expected"),
    ('[[attributes]]\ntable = "loans"\nname = "amount"\nkind = "numeric"\n', "is a canonical column already"),
    ('[[attributes]]\ntable = "loans"\nname = "p"\nkind = "categorical"\n', "needs a non-empty list"),
    ('[[attributes]]\ntable = "loans"\nname = "p"\nkind = "numeric"\ndirection = 2\n', "expected -1, 0 or 1"),
    ('currency = 5\n', "expected a currency code"),
    ("this is not toml [", "not valid TOML"),
])
def test_a_bad_dictionary_is_one_line_naming_the_key(tmp_path, toml, match):
    path = tmp_path / "bad.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError, match=match) as err:
        load_dictionary(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_a_missing_or_directory_dictionary_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_dictionary(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="is not a file"):
        load_dictionary(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        build_config({"dictionary": str(tmp_path / "nope.toml")})


# ---------------------------------------------------------------------------- contracts


def test_a_bank_dictionary_validates_its_own_vocabulary(foreign):
    tables = foreign_tables()
    assert ignored_columns(tables, foreign) == ["loans.branch_code"]
    out = validate_tables(tables, dictionary=foreign, extraction_date="2024-06-30")
    loans = out["loans"]
    assert list(loans.columns) == [*schema.TABLES["loans"].column_names, "purpose", "new_business"]
    assert loans["purpose"].tolist()[:2] == ["equipment", "working_capital"] and pd.isna(loans["purpose"][2])
    assert loans["new_business"].tolist()[:3] == [True, False, False] and pd.isna(loans["new_business"][3])
    assert out["enterprises"]["employees"].tolist()[0] == 3.0
    assert loans["term_months"].tolist() == [12, 300, 12, 24]

    with pytest.raises(DataContractError) as err:  # the same tables against the seed bank's dictionary
        validate_tables(tables)
    lines = err.value.failures
    assert lines[0] == ("enterprises.legal_form: values 'llc', 'corporation', 'sole_proprietor' not in allowed "
                        "categories (sole_trader, farmer_household, limited_company); to allow them, add them to "
                        "vocabularies.legal_form of the data dictionary; 3 rows, e.g. enterprise_id 1, 2, 3")
    assert any(line.startswith("loans.guarantee_type: values 'none', 'real_estate', 'personal'") for line in lines)
    assert len(lines) == 4  # legal form, industry, product, guarantee type: all at once


def test_an_unknown_category_names_the_value_and_the_allowed_list(foreign):
    tables = foreign_tables()
    tables["enterprises"]["industry"] = ["retail", "mining", "retail"]
    tables["loans"]["purpose"] = ["equipment", "yacht", None, "yacht"]
    with pytest.raises(DataContractError) as err:
        validate_tables(tables, dictionary=foreign)
    assert err.value.failures == (
        "enterprises.industry: value 'mining' not in allowed categories (retail, construction, transport, "
        "hospitality); to allow it, add it to vocabularies.industry of the data dictionary; 1 row, "
        "e.g. enterprise_id 2",
        "loans.purpose: value 'yacht' not in allowed categories (equipment, working_capital, real_estate); to "
        "allow it, add it to the categories of attribute loans.purpose of the data dictionary; 2 rows, "
        "e.g. loan_id 11, 13",
    )


def test_attribute_values_are_checked_like_any_column(foreign):
    tables = foreign_tables()
    tables["enterprises"]["employees"] = [3, -2, "many"]
    tables["loans"]["new_business"] = ["yes", "perhaps", "no", None]
    with pytest.raises(DataContractError) as err:
        validate_tables(tables, dictionary=foreign)
    assert err.value.failures == (
        "enterprises.employees: value 'many' cannot be read as a number; 1 row, e.g. enterprise_id 3",
        "enterprises.employees: value -2 below minimum 0; 1 row, e.g. enterprise_id 2",
        "loans.new_business: value 'perhaps' cannot be read as a boolean (true/false); 1 row, e.g. loan_id 11",
    )
    tables = foreign_tables()
    del tables["loans"]["purpose"]
    with pytest.raises(DataContractError, match="loans.purpose: required column missing"):
        validate_tables(tables, dictionary=foreign)


def test_amount_above_the_authority_is_a_flag_not_a_data_error():
    tables = make_tables()
    tables["loans"]["amount"] = [50_000.0, 8e6, 100_000.0, 300_000.0]
    tables["loans"]["term_months"] = [12, 36, 180, 24]
    out = validate_tables(tables, extraction_date="2024-06-30")  # passes the contracts
    flags = policy_flags(out["loans"], default_dictionary())
    assert flags["loan_id"].tolist() == [10, 11, 12, 13]
    assert flags["needs_referral"].tolist() == [False, True, True, False]
    assert flags["referral_rules"].tolist() == ["", "approval_authority", "term_limit", ""]
    assert referral_summary(flags) == {"all": 2, "approval_authority": 1, "term_limit": 1}
    tables["loans"]["amount"] = [50_000.0, -8e6, 0.0, 300_000.0]  # impossible: a data error
    with pytest.raises(DataContractError) as err:
        validate_tables(tables)
    assert err.value.failures == ("loans.amount: values -8000000, 0 below minimum 1; 2 rows, e.g. loan_id 11, 12",)


def test_policy_flags_against_an_independent_reference(foreign):
    rng = np.random.default_rng(5)
    loans = pd.DataFrame({"loan_id": np.arange(500), "amount": rng.uniform(1e5, 4e6, 500),
                          "term_months": rng.integers(6, 360, 500)})
    loans.loc[7, "amount"] = np.nan  # unknown: breaks no rule
    flags = policy_flags(loans, foreign)
    amount, term = loans["amount"].to_numpy(), loans["term_months"].to_numpy()
    expected = [",".join(name for name, hit in (("approval_authority", a > 2e6), ("long_term", t > 240)) if hit)
                for a, t in zip(amount, term)]
    assert flags["referral_rules"].tolist() == expected
    np.testing.assert_array_equal(flags["needs_referral"], [e != "" for e in expected])
    both = flags["referral_rules"] == "approval_authority,long_term"
    assert both.sum() == ((amount > 2e6) & (term > 240)).sum() > 0
    # a feature matrix names the amount loan_amount; a rule on a missing column is one clear line
    renamed = policy_flags(loans.rename(columns={"amount": "loan_amount"}), foreign)
    pd.testing.assert_frame_equal(renamed, flags)
    with pytest.raises(DataContractError, match="policy long_term: column loans.term_months is missing"):
        policy_flags(loans.drop(columns="term_months"), foreign)


def test_a_policy_on_an_enterprise_attribute(tmp_path):
    path = tmp_path / "d.toml"
    path.write_text('[[attributes]]\ntable = "enterprises"\nname = "employees"\nkind = "numeric"\n\n'
                    '[[policy]]\nname = "micro_only"\ntable = "enterprises"\ncolumn = "employees"\nmax = 10\n',
                    encoding="utf-8")
    d = load_dictionary(path)
    loans = pd.DataFrame({"loan_id": [1, 2, 3], "enterprise_id": [7, 8, 9]})
    firms = pd.DataFrame({"enterprise_id": [9, 8, 7], "employees": [50.0, 10.0, 11.0]})
    flags = policy_flags(loans, d, enterprises=firms)
    assert flags["referral_rules"].tolist() == ["micro_only", "", "micro_only"]
    assert PolicyRule("micro_only", "enterprises", "employees", None, 10.0) == d.policies[0]


# ---------------------------------------------------------------------------- the run configuration


def test_lgds_are_checked_against_the_dictionary_in_use(tmp_path):
    path = tmp_path / "bank.toml"
    path.write_text(FOREIGN, encoding="utf-8")
    with pytest.raises(ConfigError) as err:  # the default LGDs name the seed bank's guarantee types
        build_config({"dictionary": str(path)})
    assert str(err.value) == (
        f"config: pricing.lgd needs exactly the guarantee types of data dictionary {path} ['none', 'personal', "
        f"'real_estate']; missing ['none', 'personal', 'real_estate'], unknown ['collateral', 'joint_group', "
        f"'third_party', 'unsecured']; set [pricing.lgd] in the run configuration")
    config = build_config({"dictionary": str(path),
                           "pricing": {"lgd": {"none": 0.45, "personal": 0.45, "real_estate": 0.3}}})
    assert config.data_dictionary().currency == "USD"
    assert build_config({}).data_dictionary() is default_dictionary()


# ---------------------------------------------------------------------------- industry teams


def test_industry_teams_map_every_default_industry_to_a_declared_team():
    d = default_dictionary()
    assert set(d.industry_teams) == set(d.vocabulary("industry"))
    assert set(d.industry_teams.values()) <= set(d.vocabulary("industry_team"))
    assert d.team_of("furniture") == "furniture" and d.team_of("grain_oil") == "agri_processing"
    for team in d.vocabulary("industry_team"):
        assert d.label("industry_team", team, "zh") != team  # every team reads in Chinese too
    assert parse_dictionary(tomllib.loads(dictionary_toml(d))) == d  # written and read back equal


def test_a_bank_adds_registration_event_kinds_of_its_own(tmp_path):
    path = tmp_path / "d.toml"
    kinds = ["legal_rep_change", "abnormal_listing", "abnormal_removal", "penalty", "address_change"]
    path.write_text(f"[vocabularies]\nregistration_event_kind = {kinds!r}\n".replace("'", '"'), encoding="utf-8")
    assert load_dictionary(path).vocabulary("registration_event_kind") == tuple(kinds)


def test_a_bank_renames_its_teams_and_the_mapping_is_checked():
    d = default_dictionary()
    own = parse_dictionary({"vocabularies": {"industry_team": ["north", "south"]},
                            "industry_teams": {"furniture": "north", "vegetables": "south"}},
                           source="bank.toml", defaults=d)
    assert own.industry_teams == {"furniture": "north", "vegetables": "south"}
    assert own.team_of("bamboo_products") is None
    # teams renamed but no mapping given: the default mapping names teams that no longer exist
    assert parse_dictionary({"vocabularies": {"industry_team": ["north"]}}, defaults=d).industry_teams == {}
    with pytest.raises(ConfigError, match=r"industry_teams.furniture: 'east' is not a value of vocabulary"):
        parse_dictionary({"industry_teams": {"furniture": "east"}}, source="bank.toml", defaults=d)
    with pytest.raises(ConfigError, match=r"industry_teams: unknown key 'steel'"):
        parse_dictionary({"industry_teams": {"steel": "bamboo"}}, source="bank.toml", defaults=d)
