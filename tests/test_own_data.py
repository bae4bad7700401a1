"""A bank's own data, as it is: a foreign-shaped loan book runs with only a mapping, a dictionary and a
config file.

The loan book is written here: other industries, legal forms, products and guarantee types, USD,
terms up to 300 months, a default-date column as the label, and three attributes of the bank's own:
a credit score that carries real signal, a franchise flag that is noise, and "months on book", a
planted leak (a loan that defaults stops accruing months on book). Nothing in src/ knows this bank.
"""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from conftest import mlflow_store
from creditmodel.cli import main
from creditmodel.config import load_config
from creditmodel.features import catalogue
from creditmodel.pipeline import evaluate, modelling_frame, run_pipeline, train_models

EXTRACTION = pd.Timestamp("2025-06-30")
INDUSTRIES = ["restaurants", "construction", "retail_trade", "trucking", "software", "health_care"]
PRODUCTS = ["sba_7a", "term_loan", "line_of_credit"]
GUARANTEES = ["sba_guaranteed", "unsecured", "real_estate"]
AUTHORITY = 2_000_000

DICTIONARY = f"""
currency = "USD"

[vocabularies]
industry = {json.dumps(INDUSTRIES)}
legal_form = ["llc", "corporation", "sole_proprietorship"]
product = {json.dumps(PRODUCTS)}
guarantee_type = {json.dumps(GUARANTEES)}

[labels.industry.restaurants]
en = "Restaurants"
zh = "餐饮业"

[[policy]]
name = "approval_authority"
table = "loans"
column = "amount"
max = {AUTHORITY}
en = "Amount above the branch's approval authority: refer upwards"
zh = "金额超出本行审批权限，需上报审批"

[[policy]]
name = "term_limit"
table = "loans"
column = "term_months"
max = 360
en = "Term above 30 years"
zh = "期限超过30年"

[[attributes]]
table = "loans"
name = "credit_score"
kind = "numeric"
direction = -1
min = 300
max = 850
en = "Owner's credit score"
zh = "经营者信用评分"
reason_en = "Low credit score"
reason_zh = "信用评分偏低"

[[attributes]]
table = "enterprises"
name = "franchise"
kind = "bool"
en = "Franchise business"
zh = "加盟经营"

[[attributes]]
table = "loans"
name = "months_on_book"
kind = "numeric"
en = "Months on book"
zh = "在账月数"
"""


def _loan_book(n: int = 3000, seed: int = 11) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ent = np.arange(1, n + 1)
    enterprises = pd.DataFrame({
        "enterprise_id": ent,
        "registration_date": pd.Timestamp("1995-01-01") + pd.to_timedelta(rng.integers(0, 6500, n), unit="D"),
        "legal_form": rng.choice(["llc", "corporation", "sole_proprietorship"], n),
        "industry": rng.choice(INDUSTRIES, n),
        "county": rng.choice(["king", "pierce", "snohomish"], n),
        "registered_capital": np.where(rng.random(n) < 0.3, np.nan, np.round(np.exp(rng.normal(11, 1, n)), 2)),
        "owner_birth_year": rng.integers(1950, 1995, n),
        "franchise": rng.random(n) < 0.3,
    })
    app = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 3100, n), unit="D")
    amount = np.round(np.clip(np.exp(rng.normal(11.8, 1.1, n)), 5_000, 6_000_000), 2)
    term = rng.choice([12, 36, 60, 84, 120, 180, 240, 300], n)
    z = rng.normal(size=n)
    score = np.clip(np.round(690 + 60 * z), 300, 850)
    industry = enterprises["industry"].to_numpy()
    logit = -2.3 - 0.65 * z + 0.4 * (industry == "restaurants") + 0.1 * np.log(amount / 1e5)
    defaulted = rng.random(n) < 1 / (1 + np.exp(-logit))
    months_to_default = rng.integers(1, 37, n)
    default_date = pd.Series(app + pd.to_timedelta(months_to_default * 30.4, unit="D")).dt.normalize()
    default_date = default_date.where(defaulted & (default_date <= EXTRACTION))
    months_seen = ((EXTRACTION - app).days / 30.4).astype(int)
    on_book = np.where(default_date.notna(), months_to_default, np.minimum(term, months_seen)) + rng.normal(0, 1, n)
    loans = pd.DataFrame({
        "loan_id": np.arange(100_001, 100_001 + n), "enterprise_id": ent, "application_date": app,
        "product": rng.choice(PRODUCTS, n), "guarantee_type": rng.choice(GUARANTEES, n), "amount": amount,
        "term_months": term, "rate": np.round(rng.uniform(0.05, 0.12, n), 4), "group_id": pd.NA,
        "credit_score": score, "months_on_book": np.round(on_book, 1), "default_date": default_date,
    })
    loans["group_id"] = loans["group_id"].astype("Int64")
    repayments = pd.DataFrame({"loan_id": loans["loan_id"], "date": app + pd.Timedelta(days=31),
                               "days_past_due": 0})
    return {"enterprises": enterprises, "loans": loans, "repayments": repayments}


def _config(tmp_path, name: str, exclude: list[str] = ()) -> str:
    path = tmp_path / f"{name}.toml"
    path.write_text(f"""
data_dir = "{(tmp_path / 'bank').as_posix()}"
dictionary = "{(tmp_path / 'dictionary.toml').as_posix()}"
output_dir = "{(tmp_path / name).as_posix()}"
extraction_date = 2025-06-30
registered_model = "usd_pd"

[label]
kind = "default_date"
column = "loans.default_date"
window_months = 24

[split]
valid_start = 2020-01-01
oot_start = 2021-07-01

[features]
exclude = {json.dumps(list(exclude))}

[lightgbm]
n_estimators = 150
learning_rate = 0.05
min_child_samples = 40

[segments]
enabled = false

[pricing.lgd]
sba_guaranteed = 0.25
unsecured = 0.45
real_estate = 0.35
""", encoding="utf-8")
    return str(path)


NAICS = {"restaurants": "722511", "construction": "236220", "retail_trade": "445110", "trucking": "484121",
         "software": "511210", "health_care": "621111"}
ENTITY = {"llc": "LLC", "corporation": "CORP", "sole_proprietorship": "INDIVIDUAL"}
PROGRAM = {"sba_7a": "7A", "term_loan": "TL", "line_of_credit": "LOC"}
SECURITY = {"sba_guaranteed": "SBA", "unsecured": "NONE", "real_estate": "RE"}


def _map(codes: dict[str, str]) -> str:
    return "{ " + ", ".join(f'{k} = ["{v}"]' for k, v in codes.items()) + " }"


MAPPING = f"""
extraction_date = 2025-06-30
dictionary = "dictionary.toml"

[tables.enterprises]
source = {{ path = "extract/borrowers.csv" }}
[tables.enterprises.columns]
enterprise_id = {{ column = "BorrowerID", id = "digits" }}
registration_date = {{ column = "Established", date = "%m/%d/%Y" }}
legal_form = {{ column = "EntityType", map = {_map(ENTITY)} }}
industry = {{ column = "NAICS", map = {_map(NAICS)} }}
county = "County"
registered_capital = {{ column = "Capital", money = true }}
owner_birth_year = "OwnerBirthYear"
franchise = {{ column = "Franchise", cast = "bool" }}

[tables.loans]
source = {{ path = "extract/loans.csv" }}
[tables.loans.columns]
loan_id = {{ column = "LoanNo", id = "digits" }}
enterprise_id = {{ column = "BorrowerID", id = "digits" }}
application_date = {{ column = "ApprovalDate", date = "%m/%d/%Y" }}
product = {{ column = "Program", map = {_map(PROGRAM)} }}
guarantee_type = {{ column = "Collateral", map = {_map(SECURITY)} }}
amount = {{ column = "GrossApproval", money = true }}
term_months = "TermInMonths"
rate = "InterestRate"
credit_score = "CreditScore"
months_on_book = "MonthsOnBook"
default_date = {{ column = "ChargeOffDate", date = "%m/%d/%Y" }}

[tables.repayments]
source = {{ path = "extract/payments.csv" }}
[tables.repayments.columns]
loan_id = {{ column = "LoanNo", id = "digits" }}
date = {{ column = "PaymentDate", date = "%m/%d/%Y" }}
days_past_due = "DaysLate"
"""


def _extract(book: dict[str, pd.DataFrame], folder) -> None:
    """The loan book as the bank's system exports it: its own column names, codes, money strings and
    US dates. Only the mapping file turns it into the canonical tables."""
    folder.mkdir()
    us = "%m/%d/%Y"
    e, lo, r = book["enterprises"], book["loans"], book["repayments"]
    pd.DataFrame({
        "BorrowerID": [f"B-{i:06d}" for i in e["enterprise_id"]],
        "Established": e["registration_date"].dt.strftime(us),
        "EntityType": e["legal_form"].map(ENTITY), "NAICS": e["industry"].map(NAICS), "County": e["county"],
        "Capital": [("" if np.isnan(v) else f"${v:,.2f}") for v in e["registered_capital"]],
        "OwnerBirthYear": e["owner_birth_year"], "Franchise": e["franchise"].map({True: "true", False: "false"}),
    }).to_csv(folder / "borrowers.csv", index=False)
    pd.DataFrame({
        "LoanNo": [f"L{i}" for i in lo["loan_id"]], "BorrowerID": [f"B-{i:06d}" for i in lo["enterprise_id"]],
        "ApprovalDate": lo["application_date"].dt.strftime(us), "Program": lo["product"].map(PROGRAM),
        "Collateral": lo["guarantee_type"].map(SECURITY), "GrossApproval": [f"${v:,.2f}" for v in lo["amount"]],
        "TermInMonths": lo["term_months"], "InterestRate": lo["rate"], "CreditScore": lo["credit_score"],
        "MonthsOnBook": lo["months_on_book"], "ChargeOffDate": lo["default_date"].dt.strftime(us).fillna(""),
    }).to_csv(folder / "loans.csv", index=False)
    pd.DataFrame({"LoanNo": [f"L{i}" for i in r["loan_id"]], "PaymentDate": r["date"].dt.strftime(us),
                  "DaysLate": r["days_past_due"]}).to_csv(folder / "payments.csv", index=False)


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    root = tmp_path_factory.mktemp("own_data")
    _extract(_loan_book(), root / "extract")
    (root / "dictionary.toml").write_text(DICTIONARY, encoding="utf-8")
    (root / "mapping.toml").write_text(MAPPING, encoding="utf-8")
    assert main(["data", "map", "--mapping", str(root / "mapping.toml"), "--out", str(root / "bank")]) == 0
    yield root
    catalogue.BY_NAME.clear()  # leave the shipped catalogue behind for other tests
    catalogue.BY_NAME.update({f.name: f for f in catalogue.CATALOGUE})


@pytest.mark.slow  # maps and runs a whole loan book
def test_foreign_loan_book_runs_from_its_files(bank):
    config = load_config(_config(bank, "full"))
    uri = mlflow_store(bank / "mlflow.db")
    lines = []
    result = run_pipeline(config, tracking_uri=uri, progress=lines.append)
    features = list(result.models.lightgbm.schema_.names)
    # the bank's attributes are features, with their texts; the label column never is
    assert {"credit_score", "franchise", "months_on_book"} <= set(features)
    assert "default_date" not in features
    schema = json.loads((result.bundle_dir / "feature_schema.json").read_text())
    entry = {f["name"]: f for f in schema["features"]}["credit_score"]
    assert entry["reason"] == "Low credit score" and entry["reason_zh"] == "信用评分偏低"
    assert entry["direction"] == -1
    # the foreign vocabulary is the schema's
    assert set(result.models.lightgbm.schema_.categories["industry"]) == set(INDUSTRIES)
    # with the bank's labels of its values, which a reason code on the industry reads in Chinese; a value the
    # bank gave no label reads as itself, never as the shipped dictionary's label of the same code
    labels = {f["name"]: f for f in schema["features"]}["industry"]["labels"]
    assert labels == {"restaurants": {"en": "Restaurants", "zh": "餐饮业"}}
    from creditmodel.export.bundle import load_bundle
    from creditmodel.service.scoring import FastScorer

    scorer = FastScorer(load_bundle(result.bundle_dir, allow_unsigned=True), self_check=False)
    j, cats = scorer.names.index("industry"), list(result.models.lightgbm.schema_.categories["industry"])
    said = scorer._texts(j, np.array([cats.index("restaurants"), cats.index("retail_trade")], dtype=float), "zh")
    assert said[0].endswith("：餐饮业") and said[1].endswith("：retail trade")
    # and its amounts read in the bank's currency, not in CNY
    j = scorer.names.index("loan_amount")
    assert scorer._texts(j, np.array([12_000.0]), "en")[0].endswith(": USD 12,000")
    assert scorer._texts(j, np.array([12_000.0]), "zh")[0].endswith("：12,000（USD）")
    # as does the catalogue the bundle carries: its texts speak of dollars
    carried = {f.name: f for f in scorer.bundle.catalogue}
    assert carried["loan_amount"].description == "Amount of the loan applied for, USD."
    assert not [f.name for f in carried.values() if "CNY" in f.label + f.description or "元" in f.label_zh]
    # the planted leak is flagged, in the output, the gate, MLflow and first in the report
    guard = pd.read_csv(result.report_dir / "leakage_guard.csv")
    flagged = set(guard.loc[guard["flagged"], "feature"])
    assert "months_on_book" in flagged and not {"credit_score", "franchise"} & flagged
    assert any("months_on_book: AUC alone" in line for line in lines)
    run = json.loads((result.output_dir / "run.json").read_text())
    assert any("months_on_book" in f for f in run["preliminary_findings"])
    assert run["validation_status"] in ("amber", "red")
    tags = mlflow.MlflowClient(uri).get_run(result.tracked.run_id).data.tags
    assert "months_on_book" in tags["guard_flagged"]
    html = (result.output_dir / "validation_report.html").read_text(encoding="utf-8")
    assert html.index("Leakage and dominance guard") < html.index("Discrimination by split")
    assert "违约日期（loans.default_date）落在决策日后24个月内" in html
    # loans above the approval authority are flagged for referral, never rejected as bad data
    book = _loan_book()["loans"]
    above = int((book["amount"] > AUTHORITY).sum())
    assert above > 0 and run["loans_needing_referral"]["approval_authority"] == above
    priced = pd.read_csv(result.priced_path).merge(book[["loan_id", "amount"]], on="loan_id")
    assert priced["needs_referral"].astype(bool).tolist() == (priced["amount"] > AUTHORITY).tolist()
    assert priced["needs_referral"].any()
    # the validation report counts them by the bank's rules too, not the shipped dictionary's
    assert "金额超出本行审批权限，需上报审批" in html and "金额超出本单位审批权限" not in html
    card = json.loads((result.bundle_dir / "model_card.json").read_text())
    assert card["target"].startswith("default = the bank's default date (loans.default_date) falls within 24")


def test_the_informative_attribute_raises_out_of_time_auc(bank):
    """With the leak left out (as the guard asks), the credit score measurably adds to out-of-time AUC."""
    with_score = load_config(_config(bank, "score", exclude=["months_on_book"]))
    without = load_config(_config(bank, "no_score", exclude=["months_on_book", "credit_score"]))
    from creditmodel.pipeline import load_inputs

    tables, extraction, truth = load_inputs(with_score, None)
    frame = modelling_frame(tables, extraction, with_score)
    aucs = {}
    for name, config in (("with", with_score), ("without", without)):
        models = train_models(frame, config)
        assert ("credit_score" in models.lightgbm.schema_.names) == (name == "with")
        assert "months_on_book" not in models.lightgbm.schema_.names
        table = evaluate(frame, models, truth).set_index(["model", "split"])
        aucs[name] = table.loc[("lightgbm", "oot"), "auc"]
    assert aucs["with"] > aucs["without"] + 0.05, aucs


def test_data_check_profiles_the_configured_label(bank, capsys):
    from creditmodel.cli import main

    assert main(["data", "check", str(bank / "bank"), "--config", _config(bank, "check")]) == 0
    out = capsys.readouterr().out
    assert "default rate (default = the bank's default date (loans.default_date) falls within 24 months" in out
    assert "ignored columns" not in out  # the label column is the label, not an ignored column
    book = _loan_book()["loans"]
    year = book[book["application_date"].dt.year == 2016]
    ends = year["application_date"] + pd.DateOffset(months=24)
    rate = (year["default_date"].notna() & (year["default_date"] <= ends)).mean()
    assert f"2016  {len(year):>8,d} loans  {rate:6.2%}" in out
