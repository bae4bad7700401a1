"""A short profile of validated tables: rows, date ranges, missing rates, default rate by year."""

from __future__ import annotations

import pandas as pd

from creditmodel.data.schema import TABLES


def profile(tables: dict[str, pd.DataFrame], labels: pd.Series | None = None) -> str:
    """Plain-text profile for `creditmodel data check`; `labels` (loan_id -> 0/1/<NA>) adds default rates."""
    lines = [f"{'table':22s} {'rows':>12s}  {'from':10s}  {'to':10s}  most-missing column"]
    for name, spec in TABLES.items():
        if name not in tables:
            lines.append(f"{name:22s} {'absent':>12s}")
            continue
        df = tables[name]
        dates = pd.to_datetime(df[spec.event_date]) if spec.event_date else None
        missing = df.isna().mean().sort_values(ascending=False)
        worst = f"{missing.index[0]} {missing.iloc[0]:.0%}" if len(missing) and missing.iloc[0] > 0 else "-"
        lo = dates.min().date().isoformat() if dates is not None and len(df) else "-"
        hi = dates.max().date().isoformat() if dates is not None and len(df) else "-"
        lines.append(f"{name:22s} {len(df):>12,d}  {lo:10s}  {hi:10s}  {worst}")
    if labels is not None:
        loans = tables["loans"]
        frame = pd.DataFrame({"year": pd.to_datetime(loans["application_date"]).dt.year.to_numpy(),
                              "default": loans["loan_id"].map(labels).to_numpy()}).dropna()
        if len(frame):
            lines.append(f"\ndefault rate ({labels.name}) by application year (complete windows only):")
            by_year = frame.groupby("year")["default"].agg(["size", "mean"])
            lines += [f"  {year}  {int(r['size']):>8,d} loans  {r['mean']:6.2%}" for year, r in by_year.iterrows()]
    return "\n".join(lines)
