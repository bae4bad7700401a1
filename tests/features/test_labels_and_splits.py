from datetime import date

import pandas as pd

from creditmodel.features.labels import default_labels
from creditmodel.features.splits import holdout_split, time_split

D = pd.Timestamp


def test_default_label_window_and_incomplete_windows():
    loans = pd.DataFrame({"loan_id": [1, 2, 3, 4, 5],
                          "application_date": [D("2022-01-10")] * 4 + [D("2024-09-01")]})
    rep = pd.DataFrame({
        "loan_id": [1, 1, 2, 3, 4, 5],
        "date": [D("2022-06-10"), D("2023-01-10"), D("2023-01-11"), D("2022-03-10"), D("2022-02-10"), D("2024-12-01")],
        "days_past_due": [30, 90, 120, 89, 0, 120],
    })
    y = default_labels(loans, rep, extraction_date=D("2025-06-30"))
    # 1: 90 DPD exactly at the window end (inclusive) -> bad; 2: a day after -> good; 3: 89 -> good;
    # 5: window ends 2025-09-01 after extraction -> unlabelled even though already 120 DPD
    assert y.loc[1] == 1 and y.loc[2] == 0 and y.loc[3] == 0 and y.loc[4] == 0
    assert pd.isna(y.loc[5])
    assert y.name == "default_12m"


def test_time_split_boundaries():
    d = pd.Series(pd.to_datetime(["2022-06-30", "2022-07-01", "2023-03-31", "2023-04-01"]))
    assert time_split(d, date(2022, 7, 1), date(2023, 4, 1)).tolist() == ["train", "valid", "valid", "oot"]


def test_holdout_split_fractions_and_stability():
    ids = pd.Series(range(20_000))
    split = holdout_split(ids, 0.2, 0.25, seed=1)
    shares = split.value_counts(normalize=True)
    assert abs(shares["oot"] - 0.25) < 0.015 and abs(shares["valid"] - 0.2) < 0.015
    shuffled = ids.sample(frac=1, random_state=0)
    again = holdout_split(shuffled, 0.2, 0.25, seed=1)
    assert (again.sort_index() == split).all()
