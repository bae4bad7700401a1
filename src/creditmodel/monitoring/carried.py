"""Ratings at origination carried from one monitoring date to the next.

A loan's PD at origination reads nothing dated after its decision date, so it is the same number at
every later monitoring date; so is the development sample that the stability compares against (its
side of the CSI: the bins of each feature and its counts in them). A monitoring run writes them
beside its outputs, and the next run of the same bundle on the same bank's data (``monitor
--previous DIR``) starts from them: it builds the loans applied for since and the open book as of
its date, not the whole history again. The results are the same as a run without them (tested).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from creditmodel.exceptions import DataContractError
from creditmodel.texts import Phrase

__all__ = ["CARRIED_FILE", "ORIGINATION_FILE", "Carried", "carried_frames", "read_carried"]

CARRIED_FILE = "carried.json"  # whose ratings these are (model, feature catalogue, date), the development sample
ORIGINATION_FILE = "origination.parquet"  # loan_id, application_date, pd: every loan rated at origination


@dataclass
class Carried:
    """Ratings at origination read from an earlier monitoring run's outputs."""

    as_of: str
    pds: pd.Series  # PD at origination by loan_id
    development: dict[str, Any] | None  # the development sample: window, loans and its side of the CSI


def _identity(bundle: Any) -> dict[str, Any]:
    from creditmodel.export.contents import model_id

    manifest = bundle.manifest if isinstance(bundle.manifest, dict) else {}
    files = manifest.get("files", {})
    catalogue = (files.get("feature_catalogue.json") or {}).get("sha256")
    return {"model_id": model_id(bundle), "feature_catalogue_sha256": catalogue, "features": list(bundle.schema.names)}


def carried_frames(bundle: Any, as_of: pd.Timestamp, loans: pd.DataFrame, pds: pd.Series,
                   development: dict[str, Any] | None) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """What a run carries to the next: the PDs at origination of ``loans`` (rows of the loans table, all
    rated), the ``development`` sample (window, loans, CSI reference) and whose they are."""
    ids = loans["loan_id"].to_numpy()
    origination = pd.DataFrame({"loan_id": ids, "application_date": loans["application_date"].to_numpy(),
                                "pd": pds.loc[ids].to_numpy(np.float64)})
    return ({ORIGINATION_FILE: origination},
            {"as_of": str(pd.Timestamp(as_of).date()), **_identity(bundle), "loans": int(len(ids)),
             "development": development})


def read_carried(path: str | Path, bundle: Any, loans: pd.DataFrame) -> Carried:
    """The ratings an earlier ``monitor`` run at ``path`` carried, checked to be of ``bundle`` (model and
    feature catalogue) and of the data of ``loans``: every carried loan has the same application date
    here. One-line DataContractError otherwise."""
    root = Path(path)
    meta_path = root / CARRIED_FILE
    if not meta_path.is_file():
        raise DataContractError.of("error.carried.no_file", root=root, file=CARRIED_FILE)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        origination = pd.read_parquet(root / ORIGINATION_FILE)
    except (OSError, ValueError) as exc:  # pyarrow's errors are ValueErrors (ArrowInvalid) or OSErrors
        raise DataContractError.of("error.carried.unreadable", root=root,
                                   detail=str(exc).splitlines()[0][:160]) from None
    mine = _identity(bundle)
    for key, label in (("model_id", "model"), ("feature_catalogue_sha256", "feature_catalogue")):
        if meta.get(key) != mine[key]:
            raise DataContractError.of("error.carried.other_rater", root=root, what=Phrase(f"error.carried.what.{label}"),
                                       theirs=meta.get(key), mine=mine[key])
    development = meta.get("development")
    if meta.get("features") != mine["features"] or list(origination.columns) != ["loan_id", "application_date", "pd"] \
            or (development is not None and list(development.get("csi", {})) != mine["features"]):
        raise DataContractError.of("error.carried.other_features", root=root)
    here = loans.set_index("loan_id")["application_date"]
    unknown = ~origination["loan_id"].isin(here.index)
    if unknown.any():
        raise DataContractError.of("error.carried.unknown_loan", root=root,
                                   loan=origination.loc[unknown, "loan_id"].iloc[0])
    dates = pd.to_datetime(origination["application_date"]).to_numpy("datetime64[ns]")
    moved = dates != here.loc[origination["loan_id"].to_numpy()].to_numpy("datetime64[ns]")
    if moved.any():
        i = int(np.flatnonzero(moved)[0])
        loan = origination["loan_id"].iloc[i]
        raise DataContractError.of("error.carried.moved", root=root, loan=loan, there=pd.Timestamp(dates[i]).date(),
                                   here=pd.Timestamp(here.loc[loan]).date())
    pds = pd.Series(origination["pd"].to_numpy(np.float64), index=origination["loan_id"].to_numpy())
    return Carried(str(meta.get("as_of")), pds, development)
