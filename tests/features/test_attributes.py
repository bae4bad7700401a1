"""The bank's own attributes as features: values as declared, texts from the dictionary, clear refusals."""

import numpy as np
import pytest

from creditmodel.config import build_config
from creditmodel.data.dictionary import default_dictionary, parse_dictionary
from creditmodel.exceptions import ConfigError, DataContractError
from creditmodel.features import catalogue as cat
from creditmodel.features.build import build_features, compile_query
from creditmodel.features.catalogue import attribute_features, register, run_features
from creditmodel.features.matrix import FeatureSchema
from creditmodel.pipeline import select_features

ATTRS = {"attributes": [
    {"table": "loans", "name": "purpose", "kind": "categorical", "categories": ["car", "business"],
     "en": "Loan purpose", "zh": "贷款用途", "reason_en": "The purpose carries higher risk", "reason_zh": "贷款用途风险较高"},
    {"table": "loans", "name": "bureau_score", "kind": "numeric", "direction": -1, "en": "Bureau score",
     "zh": "征信评分", "reason_en": "Low bureau score", "reason_zh": "征信评分偏低"},
    {"table": "enterprises", "name": "exporter", "kind": "bool", "en": "Exporter", "zh": "出口企业"},
]}


@pytest.fixture
def own(small_world):
    d = parse_dictionary(ATTRS, defaults=default_dictionary())
    feats = attribute_features(d.attributes)
    yield d, feats
    cat.BY_NAME.clear()
    cat.BY_NAME.update({f.name: f for f in cat.CATALOGUE})


def _tables(world):
    t = {k: v.copy() for k, v in world.tables.items()}
    n = len(t["loans"])
    t["loans"]["purpose"] = np.where(np.arange(n) % 3 == 0, "car", np.where(np.arange(n) % 3 == 1, "business", None))
    t["loans"]["bureau_score"] = np.arange(n, dtype=float) + 300
    t["enterprises"]["exporter"] = t["enterprises"]["enterprise_id"] % 2 == 0
    return t


def test_attributes_are_built_as_declared(own, small_world):
    d, feats = own
    assert [(f.name, f.source) for f in feats] == [("purpose", "loan_attributes"), ("bureau_score", "loan_attributes"),
                                                   ("exporter", "enterprise_attributes")]
    tables = _tables(small_world)
    frame = build_features(tables, features=run_features(d)).set_index("loan_id")
    loans = tables["loans"].set_index("loan_id")
    ents = tables["enterprises"].set_index("enterprise_id")
    assert frame["bureau_score"].to_dict() == loans["bureau_score"].to_dict()
    expected_purpose = {k: (v if isinstance(v, str) else None) for k, v in loans["purpose"].items()}
    assert frame["purpose"].to_dict() == expected_purpose
    expected = loans["enterprise_id"].map(ents["exporter"].astype(int)).astype(float)
    assert frame["exporter"].to_dict() == expected.to_dict()
    # the catalogue's own features are unchanged by the attributes
    plain = build_features(tables).set_index("loan_id")
    assert plain["loan_amount"].equals(frame["loan_amount"])


def test_texts_directions_and_categories_reach_the_schema(own):
    d, feats = own
    register(feats)
    schema = FeatureSchema.for_columns(["purpose", "bureau_score", "exporter"], run_features(d))
    assert schema.categories == {"purpose": ("car", "business")}
    entries = {e["name"]: e for e in schema.to_dict()["features"]}
    assert entries["bureau_score"]["direction"] == -1 and entries["bureau_score"]["reason_zh"] == "征信评分偏低"
    assert entries["exporter"]["label_zh"] == "出口企业" and entries["exporter"]["direction"] == 0
    # a bundle read elsewhere (no registration) keeps the reason texts
    again = FeatureSchema.from_dict(schema.to_dict())
    cat.BY_NAME.pop("bureau_score")
    assert again.reason("bureau_score") == "Low bureau score"
    assert again.texts["bureau_score"]["reason_zh"] == "征信评分偏低"


def test_a_declared_attribute_absent_from_the_table_is_one_line(own, small_world):
    d, _ = own
    tables = _tables(small_world)
    tables["enterprises"] = tables["enterprises"].drop(columns="exporter")
    with pytest.raises(DataContractError, match=r"attribute enterprises.exporter is declared in the data dictionary "
                                                r"but the enterprises table has no such column"):
        build_features(tables, features=run_features(d))


def test_attribute_named_like_a_catalogue_feature_is_refused():
    d = parse_dictionary({"attributes": [{"table": "loans", "name": "loan_amount", "kind": "numeric"}]},
                         defaults=default_dictionary())
    with pytest.raises(ConfigError, match="'loan_amount' has the name of a catalogue feature"):
        register(attribute_features(d.attributes))


def test_spark_refuses_attributes_in_one_line(own):
    from creditmodel.features.spark import SparkTranslationError, spark_feature_frame

    _, feats = own
    with pytest.raises(SparkTranslationError, match=r"the bank's own attributes \(purpose, bureau_score, exporter\) "
                                                     r"are built on DuckDB only"):
        spark_feature_frame(None, {}, features=feats)


def test_exclude_and_include_sources(own):
    d, feats = own
    register(feats)
    cols = ["loan_amount", "industry", "purpose", "bureau_score", "exporter", "txn_inflow_12m"]
    assert select_features(cols, build_config({"features": {"exclude": ["bureau_score"]}})) == [
        "loan_amount", "industry", "purpose", "exporter", "txn_inflow_12m"]
    assert select_features(cols, build_config({"features": {"include_sources": ["attributes"]}})) == [
        "purpose", "bureau_score", "exporter"]
    assert select_features(cols, build_config({"features": {"include_sources": ["application",
                                                                                 "enterprise_attributes"]}})) == [
        "loan_amount", "exporter"]
    with pytest.raises(ConfigError, match="features.exclude: 'bureau_scor' is not a feature"):
        select_features(cols, build_config({"features": {"exclude": ["bureau_scor"]}}))
    with pytest.raises(ConfigError, match="features.include_sources: 'bureau' is not a feature source"):
        select_features(cols, build_config({"features": {"include_sources": ["bureau"]}}))
    with pytest.raises(ConfigError, match="leave no feature"):
        select_features(["loan_amount"], build_config({"features": {"exclude": ["loan_amount"]}}))
    assert "a.bureau_score" in compile_query(feats)
