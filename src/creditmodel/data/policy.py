"""Policy flags: the business rules of the data dictionary applied to applications.

A rule such as the unit's approval authority (CNY 5 million in the seed bank) or the longest term
of its products is not a data error: a loan above it is real and must be decided higher up. Each
rule of the dictionary's ``[[policy]]`` names a numeric column of the loans (or enterprises)
table and a [min, max]; a loan outside it is flagged ``needs_referral`` with the rule's name.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from creditmodel.data.dictionary import DataDictionary, PolicyRule, default_dictionary
from creditmodel.exceptions import DataContractError

__all__ = ["applicable_rules", "approval_authority", "policy_flags", "referral_items", "referral_summary", "rule_text"]

# names the loans table's columns go by in a feature matrix or a pricing request
_ALIASES = {"amount": ("amount", "loan_amount")}


def _column(loans: pd.DataFrame, rule: PolicyRule, enterprises: pd.DataFrame | None) -> pd.Series | None:
    if rule.table == "loans":
        name = next((c for c in _ALIASES.get(rule.column, (rule.column,)) if c in loans.columns), None)
        return None if name is None else loans[name]
    if rule.table == "enterprises":
        if rule.column in loans.columns:  # already joined onto the application
            return loans[rule.column]
        if enterprises is None or "enterprise_id" not in loans.columns or rule.column not in enterprises.columns:
            return None
        values = enterprises.drop_duplicates("enterprise_id").set_index("enterprise_id")[rule.column]
        return loans["enterprise_id"].map(values)
    return None


def policy_flags(loans: pd.DataFrame, dictionary: DataDictionary | None = None, *,
                 enterprises: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per loan: ``loan_id``, ``needs_referral`` (bool) and ``referral_rules`` (the names of
    the rules it breaks, comma-separated; "" if none).

    ``loans`` holds the loans table's columns (``loan_amount`` is accepted for ``amount``); a rule on
    the enterprises table reads ``enterprises`` (or the column joined onto ``loans``). A rule whose
    column is absent raises DataContractError naming it; a null value breaks no rule.
    """
    d = default_dictionary() if dictionary is None else dictionary
    if "loan_id" not in loans.columns:
        raise DataContractError.of("error.policy.no_loan_id")
    n = len(loans)
    broken = np.zeros((n, len(d.policies)), dtype=bool)
    for j, rule in enumerate(d.policies):
        column = _column(loans, rule, enterprises)
        if column is None:
            raise DataContractError.of("error.policy.column_missing", rule=rule.name,
                                       column=f"{rule.table}.{rule.column}", source=d.source_phrase())
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            if rule.min_value is not None:
                broken[:, j] |= values < rule.min_value
            if rule.max_value is not None:
                broken[:, j] |= values > rule.max_value
    names = np.array([r.name for r in d.policies], dtype=object)
    rules = [",".join(names[row]) for row in broken] if len(d.policies) else [""] * n
    return pd.DataFrame({"loan_id": loans["loan_id"].to_numpy(),
                         "needs_referral": broken.any(axis=1) if len(d.policies) else np.zeros(n, dtype=bool),
                         "referral_rules": pd.Series(rules, dtype=object).to_numpy()})


def referral_summary(flags: pd.DataFrame) -> dict[str, int]:
    """Loans needing referral in all, and per rule: {"all": n, rule name: n, ...}."""
    out = {"all": int(flags["needs_referral"].sum())}
    for rules in flags.loc[flags["needs_referral"], "referral_rules"]:
        for name in str(rules).split(","):
            out[name] = out.get(name, 0) + 1
    return out


def rule_text(dictionary: DataDictionary, name: str, language: str = "en") -> str:
    """What a loan officer reads for a rule (its label in ``language``; the name when it has none)."""
    rule = next((r for r in dictionary.policies if r.name == name), None)
    if rule is None:
        return name
    return (rule.zh if language == "zh" else rule.en) or name


def referral_items(rules: str, dictionary: DataDictionary, language: str = "en") -> list[dict[str, str]]:
    """The broken rules of one loan (``referral_rules``, comma-separated) as an officer reads them: per rule
    its name, the text in ``language`` and the texts in English and Chinese."""
    return [{"rule": r, "text": rule_text(dictionary, r, language), "en": rule_text(dictionary, r, "en"),
             "zh": rule_text(dictionary, r, "zh")} for r in str(rules).split(",") if r]


def applicable_rules(dictionary: DataDictionary, columns: set[str]) -> DataDictionary:
    """The dictionary with only the policy rules whose column is among ``columns`` (a loans column under its
    own name or an alias): for a caller that knows the loan's terms but not every table, e.g. a pricing
    request that carries the amount and term but no registry data."""
    keep = tuple(r for r in dictionary.policies
                 if any(c in columns for c in _ALIASES.get(r.column, (r.column,))))
    return replace(dictionary, policies=keep)


def approval_authority(dictionary: DataDictionary) -> float | None:
    """The unit's approval authority: the lowest upper limit of the policy rules on the loan amount (CNY),
    None when the dictionary has no such rule."""
    limits = [r.max_value for r in dictionary.policies
              if r.table == "loans" and r.column == "amount" and r.max_value is not None]
    return min(limits) if limits else None
