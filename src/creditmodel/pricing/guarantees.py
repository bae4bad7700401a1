"""Loss and capital from the loan's security: collateral with haircuts, a third-party guarantor, a joint group.

Collateral (items of a type and a value, in CNY):

    cover        = Σ (1 − haircut[type]) · value          haircut in [0, 1]: the discount for forced sale
    uncovered    = max(0, EAD − cover) / EAD               the share of the exposure the collateral leaves bare
    LGD          = unsecured_lgd · max(collateral_lgd_floor, uncovered)

so the unsecured LGD applies to the uncovered part and a fully covered loan still carries the floor's
share of it (recovery costs, time to sell, value at sale below the appraisal). EAD = 0 gives the floor.

Third-party guarantee, guarantor PD PD_g (an enterprise of the same portfolio, with its own grade):

* "substitution" (Basel II §301-303, CRE32): the loan is priced and capitalised at min(PD, PD_g);
* "double_default" (Basel II §284(i)-(iii); CRR Art. 153(3)): the capital is
      K_DD = K_0 · (0.15 + 160 · PD_g)
  with K_0 the corporate IRB capital of the obligor's PD and the loan's LGD (asset correlation of the
  obligor's PD with the SME adjustment, maturity adjustment with b of min(PD, PD_g)); the expected
  loss is still priced at min(PD, PD_g) (the conservative reading of "both must default").

Joint-guarantee group (loans with a group id): the other members' joint liability recovers a share
`joint_recovery` of the loss, LGD · (1 − joint_recovery), while the members' shared industry and
village make their defaults move together: the asset correlation rises by `group_correlation_addon`
(capped at 0.99), which raises K. Both effects are reported per loan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri  # norm.cdf and norm.ppf, without scipy.stats' argument handling

from creditmodel.exceptions import RequestError
from creditmodel.pricing.capital import CONFIDENCE, PD_FLOOR, corporate_correlation, maturity_adjustment

MAX_CORRELATION = 0.99


def check_haircuts(haircuts: Mapping[str, float]) -> None:
    """Every haircut a number in [0, 1]; otherwise one line naming the collateral type."""
    for kind, h in haircuts.items():
        if not isinstance(h, (int, float)) or isinstance(h, bool) or not (0.0 <= float(h) <= 1.0):
            raise ValueError(f"collateral haircut {kind!r} = {h!r}: expected a fraction in [0, 1]")


def collateral_cover(items: pd.DataFrame, haircuts: Mapping[str, float]) -> pd.Series:
    """Σ (1 − haircut) · value per loan_id of collateral items (columns loan_id, collateral_type, value).

    A negative or non-numeric value, or a type without a haircut, raises RequestError naming it."""
    for col in ("loan_id", "collateral_type", "value"):
        if col not in items.columns:
            raise RequestError.of("error.pricing.collateral_column", column=col)
    value = pd.to_numeric(items["value"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(value) | (value < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise RequestError.of("error.pricing.collateral_value", value=items["value"].iloc[i],
                              loan=items["loan_id"].iloc[i])
    kinds = items["collateral_type"].astype(object)
    unknown = ~kinds.isin(list(haircuts)).to_numpy()
    if unknown.any():
        i = int(np.argmax(unknown))
        raise RequestError.of("error.pricing.collateral_haircut", value=kinds.iloc[i], loan=items["loan_id"].iloc[i],
                              known=sorted(haircuts))
    recognised = (1.0 - kinds.map(dict(haircuts)).to_numpy(dtype=np.float64)) * value
    return pd.Series(recognised, index=items.index).groupby(items["loan_id"].to_numpy()).sum().rename("collateral_cover")


def collateral_lgd(ead, cover, unsecured_lgd: float, floor: float) -> np.ndarray:
    """unsecured_lgd · max(floor, max(0, EAD − cover) / EAD); EAD = 0 gives unsecured_lgd · floor."""
    ead = np.asarray(ead, dtype=np.float64)
    cover = np.asarray(cover, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        uncovered = np.where(ead > 0, np.maximum(ead - cover, 0.0) / np.where(ead > 0, ead, 1.0), 0.0)
    return unsecured_lgd * np.maximum(floor, uncovered)


def group_lgd(lgd, joint_recovery: float) -> np.ndarray:
    """The group loan's LGD: the other members repay `joint_recovery` of the loss."""
    return np.asarray(lgd, dtype=np.float64) * (1.0 - joint_recovery)


def double_default_capital(pd_o, pd_g, lgd, maturity, sales_eur_m=None, *, pd_floor: float = PD_FLOOR,
                           confidence: float = CONFIDENCE) -> np.ndarray:
    """K_DD = K_0 · (0.15 + 160 · PD_g), K_0 = LGD · [N((G(PD_o) + √ρ · G(q)) / √(1 − ρ)) − PD_o] · MA.

    ρ is the corporate asset correlation of PD_o (with the SME adjustment when sales are known), MA the
    maturity adjustment with b of min(PD_o, PD_g); both PDs floored at `pd_floor`."""
    po = np.clip(np.asarray(pd_o, dtype=np.float64), pd_floor, 1.0)
    pg = np.clip(np.asarray(pd_g, dtype=np.float64), pd_floor, 1.0)
    rho = corporate_correlation(po, sales_eur_m)
    with np.errstate(divide="ignore", invalid="ignore"):
        conditional = ndtr((ndtri(po) + np.sqrt(rho) * ndtri(confidence)) / np.sqrt(1 - rho))
        ma = maturity_adjustment(np.minimum(np.minimum(po, pg), 1 - 1e-12), maturity)
    conditional = np.where(po >= 1.0, 1.0, conditional)
    k0 = np.maximum(np.asarray(lgd, dtype=np.float64) * (conditional - po), 0.0) * np.where(po >= 1.0, 1.0, ma)
    return k0 * (0.15 + 160.0 * pg)


def check_guarantees(guarantees: pd.DataFrame, borrowers: pd.DataFrame, known: Callable[[Any], bool]) -> None:
    """Refuse guarantees that protect nobody, with one line naming them: a guarantor `known` does not know,
    a loan that is not in `borrowers` (loan_id, enterprise_id: who owes each guaranteed loan), a borrower
    guaranteeing its own loan, or a circle of guarantees (A guarantees B, which guarantees A, directly or
    through others)."""
    for col in ("loan_id", "guarantor_id"):
        if col not in guarantees.columns:
            raise RequestError.of("error.pricing.guarantees_column", column=col)
    owner = dict(zip(borrowers["loan_id"].tolist(), borrowers["enterprise_id"].tolist()))
    edges: dict[object, set[object]] = {}
    for loan, g in zip(guarantees["loan_id"].tolist(), guarantees["guarantor_id"].tolist()):
        if loan not in owner:
            raise RequestError.of("error.pricing.guarantees_loan", loan=loan)
        if not known(g):
            raise RequestError.of("error.pricing.guarantor_unknown", g=g, loan=loan)
        if g == owner[loan]:
            raise RequestError.of("error.pricing.guarantor_self", g=g, loan=loan)
        edges.setdefault(owner[loan], set()).add(g)
    cycle = _find_cycle(edges)
    if cycle:
        raise RequestError.of("error.pricing.guarantees_circle", circle=" -> ".join(repr(e) for e in cycle))


def guarantor_pds(guarantees: pd.DataFrame, borrowers: pd.DataFrame, pd_of: Mapping[object, float]) -> pd.Series:
    """The guarantor's PD per loan_id (the lowest if several guarantee one loan).

    `guarantees`: loan_id, guarantor_id (an enterprise id); `borrowers`: loan_id, enterprise_id (who owes
    each guaranteed loan); `pd_of`: PD by enterprise id. A guarantor without a PD and the other refusals of
    :func:`check_guarantees` raise RequestError naming them."""
    check_guarantees(guarantees, borrowers, lambda g: g in pd_of and bool(np.isfinite(pd_of[g])))
    pds = guarantees["guarantor_id"].map(dict(pd_of)).astype(np.float64)
    return pd.Series(pds.to_numpy(), index=guarantees["loan_id"].to_numpy()).groupby(level=0).min().rename("pd_guarantor")


def _find_cycle(edges: Mapping[object, set[object]]) -> list[object] | None:
    """One cycle of the directed graph borrower -> guarantor, as a closed path, or None (iterative DFS)."""
    state: dict[object, int] = {}  # 1 on the stack, 2 done
    for root in edges:
        if state.get(root):
            continue
        path, stack = [root], [iter(sorted(edges.get(root, ()), key=repr))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(edges.get(nxt, ()), key=repr)))
    return None


def raise_correlation(r, addon) -> np.ndarray:
    """The group's asset correlation: R + addon, capped at 0.99."""
    return np.minimum(np.asarray(r, dtype=np.float64) + addon, MAX_CORRELATION)
