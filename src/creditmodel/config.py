"""Typed run configuration, validated once at the edge and passed down as objects.

A run is configured by a TOML file (every field optional, defaults below) and/or CLI flags.
"""

from __future__ import annotations

import codecs
import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from creditmodel.data.schema import GUARANTEE_TYPES
from creditmodel.exceptions import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyntheticConfig(_Strict):
    """Size and seed of the built-in synthetic world (used when no data directory is given)."""

    enterprises: int = Field(10_000, ge=50, le=5_000_000)
    seed: int = Field(0, ge=0)
    start: date = date(2019, 1, 1)
    extraction_date: date = date(2025, 6, 30)
    transaction_density: float = Field(1.0, ge=0.01, le=10, description="scales account transactions per month "
                                                                      "(1.0 about 20, 0.14 about 3)")


class LabelConfig(_Strict):
    """Default definition: `dpd_threshold`+ days past due within `window_months` of the decision date."""

    window_months: int = Field(12, ge=1, le=60)
    dpd_threshold: int = Field(90, ge=1, le=720)
    first_decision_date: date | None = Field(
        None, description="loans decided before this date serve only as history, never as modelling rows")


class SplitConfig(_Strict):
    """Time-based split: train before `valid_start`, validation until `oot_start`, out-of-time after.

    method="holdout" is only for data observed at a single decision date (some public data sets),
    where no split by time exists: loans are then drawn at random into the three parts.
    """

    method: Literal["time", "holdout"] = "time"
    valid_start: date = date(2022, 7, 1)
    oot_start: date = date(2023, 4, 1)
    holdout_valid_fraction: float = Field(0.2, gt=0, lt=0.5)
    holdout_test_fraction: float = Field(0.2, gt=0, lt=0.5)

    @model_validator(mode="after")
    def _ordered(self) -> SplitConfig:
        if not self.valid_start < self.oot_start:
            raise ValueError(f"valid_start {self.valid_start} must be before oot_start {self.oot_start}")
        return self


class LightGBMConfig(_Strict):
    """Hyper-parameters of the main PD model; training is deterministic by design.

    n_estimators is the most trees; early stopping on the time-based validation split picks fewer.
    class_weight "none" is deliberate: reweighting defaults would distort the PD level, which
    calibration would then have to undo; "balanced" is there for comparison.
    """

    n_estimators: int = Field(600, ge=1, le=20_000)
    early_stopping_rounds: int | None = Field(60, ge=1)
    learning_rate: float = Field(0.02, gt=0, le=1)
    num_leaves: int = Field(7, ge=2, le=1024)
    min_child_samples: int = Field(100, ge=1)
    feature_fraction: float = Field(0.5, gt=0, le=1)
    bagging_fraction: float = Field(0.8, gt=0, le=1)
    reg_lambda: float = Field(10.0, ge=0)
    class_weight: Literal["none", "balanced"] = "none"
    monotone: bool = Field(True, description="monotone constraints from the catalogue's risk directions")


class SearchConfig(_Strict):
    """Optional Optuna search of LightGBM's hyper-parameters on the validation split (each trial tracked)."""

    enabled: bool = False
    n_trials: int = Field(20, ge=1, le=10_000)
    timeout_minutes: float | None = Field(None, gt=0)


class SegmentConfig(_Strict):
    """Compare the single model with one model per segment where a segment has enough defaults."""

    enabled: bool = True
    column: str = "industry"
    min_train_defaults: int = Field(40, ge=5)


class ScorecardConfig(_Strict):
    """WoE logistic scorecard benchmark (optbinning)."""

    max_n_bins: int = Field(5, ge=2, le=20)
    min_bin_size: float = Field(0.05, gt=0, lt=0.5)
    C: float = Field(1.0, gt=0)
    min_iv: float = Field(0.02, ge=0, description="features below this information value are dropped")
    monotonic: bool = Field(True, description="monotone event-rate trend from the catalogue's risk directions")


class MasterScaleConfig(_Strict):
    """Credit grades: grade i holds PDs up to upper_bounds[i]; the last bound must be 1.

    assigned_pd: the PD each grade stands for (default: geometric mean of its band).
    """

    grades: tuple[str, ...] = ("A1", "A2", "A3", "B1", "B2", "B3", "C1", "C2", "C3", "D")
    upper_bounds: tuple[float, ...] = (0.003, 0.006, 0.01, 0.017, 0.03, 0.05, 0.08, 0.13, 0.22, 1.0)
    assigned_pd: tuple[float, ...] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> MasterScaleConfig:
        if len(self.grades) != len(self.upper_bounds):
            raise ValueError(f"{len(self.grades)} grades but {len(self.upper_bounds)} upper_bounds")
        if len(set(self.grades)) != len(self.grades):
            raise ValueError(f"grade names must be unique, got {list(self.grades)}")
        b = self.upper_bounds
        if any(not 0 < x <= 1 for x in b) or any(x >= y for x, y in zip(b, b[1:])) or b[-1] != 1.0:
            raise ValueError(f"upper_bounds {list(b)} must rise strictly inside (0, 1] and end at 1.0")
        if self.assigned_pd is not None:
            lower = (0.0, *b[:-1])
            if len(self.assigned_pd) != len(b) or any(
                    not lo <= a <= hi for lo, a, hi in zip(lower, self.assigned_pd, b)):
                raise ValueError(f"assigned_pd {list(self.assigned_pd)} must give one PD inside each grade's band")
        return self


class CalibrationConfig(_Strict):
    """How raw scores become PDs: shape on the validation split, then optionally the portfolio level.

    level "long_run_average": the mean PD is set to the average of yearly default rates over the
    development years plus `margin_of_conservatism` (in PD points), as the EBA guidelines ask.
    """

    method: Literal["platt", "isotonic"] = "platt"
    level: Literal["sample", "long_run_average"] = "long_run_average"
    margin_of_conservatism: float = Field(0.0, ge=0, le=0.1)
    pd_floor: float = Field(0.0005, ge=0, lt=0.01)


class PricingConfig(_Strict):
    """Risk-covering price of a loan, each part a rate on the exposure (EAD) per year:

        risk-covering rate = funding + operating cost + PD x LGD + capital charge + margin
        capital charge     = K x hurdle_rate, or K x (hurdle_rate - risk_free_rate) if capital_credited
        offered rate       = the risk-covering rate clamped to [min_rate, max_rate]

    K is the Basel IRB capital per unit of EAD (creditmodel.pricing.capital). LGD is set by the
    guarantee type; the defaults are the Basel II foundation-IRB supervisory values (CRE32 /
    Basel II para 287 and 295), because the bank has no loss history of its own to estimate LGDs:
      unsecured   0.45  senior unsecured claim;
      third_party 0.45  the foundation approach recognises a guarantee by substituting the
                        guarantor's PD, not by lowering LGD; no guarantor PD is modelled here, so the
                        loan keeps the senior unsecured LGD;
      collateral  0.35  real-estate collateral, on the covered part (assumed fully covered, i.e.
                        collateral worth at least 140% of the exposure);
      joint_group 0.45  mutual guarantees among small local borrowers are neither eligible credit
                        protection nor independent of the borrower (wrong-way risk): unsecured.
    """

    funding_cost: float = Field(0.022, ge=0, le=0.2, description="funds-transfer price of the money lent")
    operating_cost: float = Field(0.012, ge=0, le=0.2, description="cost of originating and servicing a loan")
    margin: float = Field(0.008, ge=0, le=0.2, description="profit over the hurdle return on capital")
    hurdle_rate: float = Field(0.10, ge=0, le=1, description="return required on economic capital "
                                                            "(the older name cost_of_capital is accepted too)")
    risk_free_rate: float = Field(0.015, ge=0, le=0.2, description="what capital earns when invested risk-free")
    capital_credited: bool = Field(False, description="credit the capital's risk-free return: the charge is then "
                                                      "K x (hurdle - risk-free) and RAROC counts that return")
    lgd: dict[str, float] = Field(
        default_factory=lambda: {"unsecured": 0.45, "third_party": 0.45, "collateral": 0.35, "joint_group": 0.45},
        description="LGD by guarantee type; defaults are the Basel foundation-IRB values (see the class doc)")
    min_rate: float = Field(0.03, ge=0, le=0.36, description="floor of the offered rate (bank policy)")
    max_rate: float = Field(0.24, gt=0, le=0.36, description="legal/usury ceiling of the offered rate")
    pd_basis: Literal["loan", "grade"] = Field("loan", description="price on each loan's PD or its grade's PD")
    capital_approach: Literal["auto", "retail", "corporate"] = Field(
        "auto", description="IRB curve for K: 'auto' = other retail for an EAD up to retail_threshold_eur, "
                            "else corporate (with the SME adjustment when annual sales are known)")
    retail_threshold_eur: float = Field(1_000_000, gt=0, description="Basel retail limit on one borrower's exposure")
    eur_cny: float = Field(8.0, gt=0, description="CNY per EUR, to compare CNY amounts and sales with EUR limits")
    default_maturity_years: float = Field(1.0, gt=0, le=50, description="maturity when a loan gives none "
                                                                       "(most loans are 1-year working capital)")
    pd_floor: float = Field(0.0003, ge=0, lt=0.01, description="PD floor of the capital formula (Basel II 0.03%)")
    scaling_factor: float = Field(1.06, gt=0, le=2, description="Basel II scaling of IRB risk-weighted assets")

    @property
    def retail_threshold_cny(self) -> float:
        """The retail limit in CNY, the currency of the loan data: retail_threshold_eur x eur_cny."""
        return self.retail_threshold_eur * self.eur_cny

    @property
    def capital_cost_rate(self) -> float:
        """Cost per unit of capital in the price: hurdle, less the risk-free rate if capital is credited."""
        return self.hurdle_rate - (self.risk_free_rate if self.capital_credited else 0.0)

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, values: Any) -> Any:
        if isinstance(values, dict) and "cost_of_capital" in values and "hurdle_rate" not in values:
            values = {("hurdle_rate" if k == "cost_of_capital" else k): v for k, v in values.items()}
        return values

    @model_validator(mode="after")
    def _lgd_complete(self) -> PricingConfig:
        missing = sorted(set(GUARANTEE_TYPES) - set(self.lgd))
        unknown = sorted(set(self.lgd) - set(GUARANTEE_TYPES))
        if missing or unknown:
            raise ValueError(f"lgd needs exactly the guarantee types {list(GUARANTEE_TYPES)}; "
                             f"missing {missing}, unknown {unknown}")
        bad = {k: v for k, v in self.lgd.items() if not 0 <= v <= 1}
        if bad:
            raise ValueError(f"lgd values must lie in [0, 1], got {bad}")
        if not self.min_rate < self.max_rate:
            raise ValueError(f"min_rate {self.min_rate} must be below max_rate {self.max_rate}")
        return self


class ValidationConfig(_Strict):
    """Thresholds of the validation report's traffic lights (green / amber / red).

    p-value tests are red below p_red and amber below p_amber; PSI/CSI amber from psi_amber and red
    from psi_red (the industry convention 0.10 / 0.25); AUC thresholds and the concentration limits
    are judgement defaults to be set per portfolio.
    """

    p_red: float = Field(0.05, gt=0, lt=1)
    p_amber: float = Field(0.10, gt=0, lt=1)
    auc_red: float = Field(0.60, ge=0.5, le=1)
    auc_amber: float = Field(0.70, ge=0.5, le=1)
    psi_amber: float = Field(0.10, gt=0)
    psi_red: float = Field(0.25, gt=0)
    hi_amber: float = Field(0.20, gt=0, le=1, description="Herfindahl index of the grade distribution")
    hi_red: float = Field(0.30, gt=0, le=1)
    benchmark_margin: float = Field(0.02, ge=0, le=0.5, description="amber when the scorecard beats LightGBM's AUC by more")
    min_segment_defaults: int = Field(20, ge=1, description="segments with fewer defaults are shown, not judged")
    min_period_loans: int = Field(200, ge=1, description="quarters with fewer loans are left out of the PSI table")
    top_features: int = Field(20, ge=1, le=500, description="features counted as 'top' by mean |SHAP|")
    shap_plot_rows: int = Field(5000, ge=100, description="loans sampled for the beeswarm")
    waterfalls_per_group: int = Field(2, ge=1, le=10, description="loans per group (highest PD, missed defaults, random)")

    @model_validator(mode="after")
    def _ordered(self) -> ValidationConfig:
        if not (self.p_red <= self.p_amber and self.auc_red <= self.auc_amber and self.psi_amber <= self.psi_red
                and self.hi_amber <= self.hi_red):
            raise ValueError("each red threshold must be at least as strict as its amber threshold")
        return self


class RunConfig(_Strict):
    """Everything one pipeline run needs."""

    data_dir: Path | None = Field(None, description="canonical tables; None = generate the synthetic world")
    data_encoding: str = Field("utf-8", description="encoding of CSV tables, e.g. gbk")
    data_delimiter: str = Field(",", min_length=1, max_length=1)
    output_dir: Path = Path("data/demo")
    extraction_date: date | None = Field(None, description="None = the synthetic world's, or the last repayment date")
    min_oot_auc: float = Field(0.6, ge=0.5, le=1, description="below this out-of-time AUC the run notes a "
                               "preliminary finding (the verdict is the validation report's)")
    seed: int = Field(0, ge=0, description="seed of model training")
    experiment: str = Field("creditmodel", description="MLflow experiment; a config file without one gets its own")
    registered_model: str = "sme_pd"
    model_alias: str = "challenger"
    calibration: CalibrationConfig = CalibrationConfig()
    synthetic: SyntheticConfig = SyntheticConfig()
    label: LabelConfig = LabelConfig()
    split: SplitConfig = SplitConfig()
    lightgbm: LightGBMConfig = LightGBMConfig()
    search: SearchConfig = SearchConfig()
    segments: SegmentConfig = SegmentConfig()
    scorecard: ScorecardConfig = ScorecardConfig()
    master_scale: MasterScaleConfig = MasterScaleConfig()
    pricing: PricingConfig = PricingConfig()
    validation: ValidationConfig = ValidationConfig()

    @field_validator("data_encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r} (e.g. utf-8, gbk, gb18030)") from None
        return value


def _error_line(exc: ValidationError, source: str) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    value = err.get("input")
    shown = "" if isinstance(value, dict) else f" value {value!r}:"
    return f"{source}: field {where}:{shown} {err['msg']}{more}"


def build_config(values: dict[str, Any] | None = None, *, source: str = "config") -> RunConfig:
    """Validate a nested dict into a RunConfig, raising ConfigError with one readable line."""
    try:
        return RunConfig.model_validate(values or {})
    except ValidationError as exc:
        raise ConfigError(_error_line(exc, source)) from None


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read a TOML config (optional) and apply dotted-key overrides such as {"synthetic.seed": 3}."""
    values: dict[str, Any] = {}
    source = "config"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    if path is not None and "experiment" not in values:
        values["experiment"] = f"creditmodel-{path.stem}"  # one experiment per configuration file
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node = values
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return build_config(values, source=source)
