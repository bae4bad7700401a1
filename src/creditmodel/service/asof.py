"""Rating a list of borrowers as of a date from the bank's store: `creditmodel score --store --as-of`.

The features come from ``creditmodel.features.asof`` (the bundle's catalogue SQL, one query for all
borrowers, nothing dated on or after the date); the scoring is ``score_frame``'s, as for
`creditmodel score --input`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from creditmodel.exceptions import StoreError
from creditmodel.features.asof import AsOfFeatures
from creditmodel.service.batch import score_frame


def score_as_of(bundle: Any, features: AsOfFeatures, as_of: date, listed: pd.DataFrame | None = None, *,
                reasons: bool = False, lang: str = "en") -> pd.DataFrame:
    """enterprise_id, as_of, the loan whose terms were scored (null: given), new_to_bank, pd, grade (and the
    top-3 reason codes, written in `lang`) of every borrower, as of `as_of`."""
    import duckdb

    try:
        who = features.borrowers(as_of, None if listed is None else features.check_listed(listed))
        frame = features.compute_many(who, as_of)
    except duckdb.OutOfMemoryException:
        raise StoreError.of("error.service.asof_memory", store=str(features.store), as_of=as_of,
                            limit=features.memory_limit) from None
    scored = score_frame(bundle, frame[list(bundle.schema.names)], reasons=reasons, lang=lang)
    out = pd.DataFrame({"enterprise_id": who["enterprise_id"].to_numpy(dtype=np.int64),
                        "as_of": pd.Timestamp(as_of), "loan_id": pd.array(who["loan_id"], dtype="Int64"),
                        "new_to_bank": ~features.known_many(who["enterprise_id"].to_numpy())})
    return pd.concat([out, scored.reset_index(drop=True)], axis=1)
