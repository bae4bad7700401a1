"""A bank's own transaction channels: the catalogue gives the share of receipts through each channel of its
data dictionary (the shipped declaration for a channel it knows), so a bank whose channels are named
otherwise gets their shares instead of four shares that are always zero."""

from __future__ import annotations

import tomllib

import numpy as np
import pandas as pd
import pytest

from creditmodel.data.dictionary import default_dictionary, parse_dictionary
from creditmodel.exceptions import ConfigError
from creditmodel.features.build import build_features
from creditmodel.features.catalogue import CATALOGUE, catalogue

RENAMED = {"pos": "card", "transfer": "ach-transfer", "direct_link": "wire"}  # cash stays cash


def _dictionary(channels: list[str], labels: str = ""):
    raw = tomllib.loads(f"[vocabularies]\nchannel = {channels!r}\n".replace("'", '"') + labels)
    return parse_dictionary(raw, source="bank.toml", defaults=default_dictionary())


def _shares(features) -> list[str]:
    return [f.name for f in features if f.name.endswith(("_share_3m", "_share_12m")) and "payer" not in f.name]


def test_the_shipped_channels_keep_the_catalogue():
    assert catalogue(default_dictionary()) == CATALOGUE
    assert catalogue(_dictionary(["direct_link", "cash", "pos", "transfer"])) == CATALOGUE  # order does not matter


def test_the_bank_channels_have_their_shares_in_the_catalogue_place():
    d = _dictionary(["card", "cash", "ach-transfer", "wire"], '[labels.channel.card]\nen = "card payments"\nzh = "银行卡"\n')
    feats = catalogue(d)
    names = [f.name for f in feats]
    assert _shares(feats) == ["txn_card_share_3m", "txn_cash_share_3m", "txn_ach_transfer_share_3m", "txn_wire_share_3m",
                              "txn_card_share_12m", "txn_cash_share_12m", "txn_ach_transfer_share_12m",
                              "txn_wire_share_12m", "txn_cash_out_share_12m"]
    shipped = [f.name for f in CATALOGUE]
    at = shipped.index("txn_pos_share_3m")
    assert names[:at] == shipped[:at] and names[at + 9:] == shipped[at + 9:]  # the rest in place
    by = {f.name: f for f in feats}
    assert by["txn_cash_share_3m"] == {f.name: f for f in CATALOGUE}["txn_cash_share_3m"]  # known: as declared
    card = by["txn_card_share_12m"]
    assert card.label == "Share of receipts through card payments, last 12 months" and card.direction == 0
    assert card.label_zh == "近12个月银行卡入账占比" and card.reason_zh
    assert "s.channel = 'card'" in card.sql and by["txn_wire_share_3m"].label_zh == "近3个月wire入账占比"


def test_the_shares_equal_the_shipped_ones_on_the_same_receipts_renamed(small_world):
    """The world's channels renamed to the bank's: each new share is the shipped share of the old channel."""
    tables = small_world.tables
    loans = tables["loans"].sort_values("loan_id").head(300)
    renamed = {**tables, "transactions": tables["transactions"].assign(
        channel=tables["transactions"]["channel"].replace(RENAMED))}
    d = _dictionary(["card", "cash", "ach-transfer", "wire"])
    mine = build_features(renamed, loans, features=[f for f in catalogue(d) if f.name in _shares(catalogue(d))])
    ref = build_features(tables, loans, features=[f for f in CATALOGUE if f.name in _shares(CATALOGUE)])
    for old, new in {**RENAMED, "cash": "cash"}.items():
        for w in ("3m", "12m"):
            a, b = mine[f"txn_{new.replace('-', '_')}_share_{w}"].to_numpy(), ref[f"txn_{old}_share_{w}"].to_numpy()
            np.testing.assert_array_equal(a, b)
            assert np.nanmax(a) > 0
    np.testing.assert_array_equal(mine["txn_cash_out_share_12m"], ref["txn_cash_out_share_12m"])


def test_without_cash_there_is_no_cash_share():
    feats = catalogue(_dictionary(["card", "wire"]))
    assert _shares(feats) == ["txn_card_share_3m", "txn_wire_share_3m", "txn_card_share_12m", "txn_wire_share_12m"]
    assert len(feats) == len(CATALOGUE) - 5


@pytest.mark.parametrize("channels, message", [
    (["e-wallet", "e_wallet"], "give the feature name 'txn_e_wallet_share_3m', which another channel"),
    (["top payer", "cash"], "give the feature name 'txn_top_payer_share_12m', which another channel or catalogue"),
    (["--", "cash"], "'--' gives no feature name"),
])
def test_channels_that_give_no_name_or_one_name_twice_are_one_line(channels, message):
    with pytest.raises(ConfigError, match=rf"^bank.toml: vocabularies.channel: .*{message}") as info:
        catalogue(_dictionary(channels))
    assert "\n" not in str(info.value)


def test_a_bank_catalogue_scores_online_as_offline(small_world, tmp_path):
    """The bank's catalogue (own channels, own large-transaction amount), carried as a bundle carries it,
    gives at decision time from a store the features the offline build gives, to 1e-12."""
    from creditmodel.features.build import available_features
    from creditmodel.features.online import OnlineFeatures, build_store, catalogue_document, catalogue_from_document
    from creditmodel.features.spark import frame_mismatches

    tables = {**small_world.tables, "transactions": small_world.tables["transactions"].assign(
        channel=small_world.tables["transactions"]["channel"].replace(RENAMED))}
    raw = tomllib.loads('currency = "USD"\nlarge_transaction = 20000\n[vocabularies]\n'
                        'channel = ["card", "cash", "ach-transfer", "wire"]\n')
    d = parse_dictionary(raw, source="bank.toml", defaults=default_dictionary())
    kept, _ = available_features(tables, catalogue(d))
    assert {"txn_card_share_3m", "txn_wire_share_12m", "txn_large_inflow_count_12m"} <= {f.name for f in kept}
    build_store(tables, tmp_path / "store.duckdb")
    online = OnlineFeatures(catalogue_from_document(catalogue_document(kept)), tmp_path / "store.duckdb")
    loans = tables["loans"].sample(25, random_state=3)
    got = pd.concat([online.features(
        r.enterprise_id, r.application_date, amount=r.amount, term_months=r.term_months, product=r.product,
        guarantee_type=r.guarantee_type, group_id=None if pd.isna(r.group_id) else int(r.group_id)
    ).assign(loan_id=r.loan_id) for r in loans.itertuples()], ignore_index=True)
    offline = build_features(tables, loans, features=kept).set_index("loan_id").loc[got["loan_id"]].reset_index()
    got = got.astype({"loan_id": offline["loan_id"].dtype, "enterprise_id": offline["enterprise_id"].dtype})
    assert frame_mismatches(offline[got.columns], got, rtol=1e-12) == {}
    assert got["txn_card_share_12m"].gt(0).any() and got["txn_large_inflow_count_12m"].gt(0).any()
