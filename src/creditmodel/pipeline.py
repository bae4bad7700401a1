"""The main job, end to end: tables -> as-of features -> labels and time split -> scorecard and
LightGBM -> calibration and master scale -> metrics, plots, SHAP -> export bundle -> pricing -> MLflow.

Everything is written into a staging directory that replaces `output_dir` only when the whole run
succeeded, so a failed run leaves no half-written output behind; `output_dir` is refused at the start
(before any work) when it is not safe to replace (see `creditmodel.outputs`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from creditmodel.config import RunConfig
from creditmodel.data.contracts import ignored_columns, validate_tables
from creditmodel.data.fingerprint import fingerprints, table_fingerprint
from creditmodel.data.io import declared_extraction_date, read_tables, resolve_extraction_date
from creditmodel.data.policy import policy_flags, referral_summary
from creditmodel.data.synthetic import generate_world, write_world
from creditmodel.exceptions import BundleError, ConfigError, DataContractError
from creditmodel.export.bundle import load_bundle, write_bundle
from creditmodel.export.model_card import build_model_card
from creditmodel.export.signing import HOW_TO_SIGN_PHRASE, load_private_key
from creditmodel.features.build import SOURCES, available_features, build_features, feature_columns
from creditmodel.features.catalogue import BY_NAME, Feature, register, run_features
from creditmodel.features.labels import describe_label, label_columns, make_labels
from creditmodel.features.matrix import FeatureSchema
from creditmodel.features.splits import SPLITS, holdout_split, time_split
from creditmodel.models.calibration import PDCalibrator, long_run_average
from creditmodel.models.gbm import LightGBMPD
from creditmodel.models.master_scale import MasterScale
from creditmodel.models.pd_model import PDModel
from creditmodel.models.refit import refit_on_development
from creditmodel.models.scorecard import ScorecardPD
from creditmodel.models.search import SEARCHED, search_lightgbm
from creditmodel.models.segments import compare_segment_models
from creditmodel.outputs import Inputs, Output, tracking_inputs
from creditmodel.pricing.engine import price_with_bundle
from creditmodel.signals import raise_if_terminated, terminate_as_exception
from creditmodel.texts import Phrase, listed, text
from creditmodel.tracking.mlflow_tracking import (
    DEFAULT_STORE,
    RunDataset,
    TrackedRun,
    artifact_uri,
    default_tracking_uri,
    log_pipeline_run,
    pipeline_run,
    run_description,
    run_name,
)
from creditmodel.validation import explain, metrics, plots
from creditmodel.validation.leakage import GuardThresholds, Screen, guard_table, screen_columns, summary_lines
from creditmodel.validation.report import build_report, registry_tags
from creditmodel.validation.suite import Figures

log = logging.getLogger(__name__)
MODELS = ("scorecard", "lightgbm")
PARITY_TOLERANCE = 1e-9


@dataclass
class TrainedModels:
    """The fitted models of one run, in memory: one PDModel per model name ("scorecard", "lightgbm" and,
    with train.refit_on_validation, "lightgbm_without_refit"), and the run's master scale."""

    pd_models: dict[str, PDModel]
    master_scale: MasterScale
    search_trials: pd.DataFrame | None = None
    guard: pd.DataFrame | None = None  # the leakage and dominance guard's table

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(self.pd_models)

    @property
    def scorecard(self) -> ScorecardPD:
        return self.pd_models["scorecard"].estimator_

    @property
    def lightgbm(self) -> LightGBMPD:
        return self.pd_models["lightgbm"].estimator_

    @property
    def calibrators(self) -> dict[str, PDCalibrator]:
        return {name: self.pd_models[name].calibrator_ for name in MODELS}

    @property
    def without_refit(self) -> tuple[LightGBMPD, PDCalibrator] | None:
        """LightGBM fitted on train alone and its calibrator, kept beside a refitted main model."""
        m = self.pd_models.get("lightgbm_without_refit")
        return (m.estimator_, m.calibrator_) if m is not None else None

    def pd(self, model: str, X: pd.DataFrame) -> np.ndarray:
        return self.pd_models[model].predict_pd(X)


@dataclass
class RunResult:
    """Where everything landed, and the headline numbers."""

    output_dir: Path
    metrics: pd.DataFrame  # one row per (model, split)
    tracked: TrackedRun
    models: TrainedModels | None = None
    missing_sources: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    cpu_timings: dict[str, float] = field(default_factory=dict)  # CPU seconds per stage, drawing workers included

    @property
    def bundle_dir(self) -> Path:
        return self.output_dir / "bundle"

    @property
    def report_dir(self) -> Path:
        return self.output_dir / "report"

    @property
    def priced_path(self) -> Path:
        return self.output_dir / "priced_oot.csv"

    @property
    def features_path(self) -> Path:
        return self.output_dir / "features.parquet"


def config_sha256(config: RunConfig) -> str:
    """Content hash of a configuration, so runs of the same configuration can be found together."""
    return hashlib.sha256(json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def load_inputs(config: RunConfig, world_dir: Path | None, progress: Callable[[str], None] | None = None,
                notes: dict | None = None) -> tuple[dict[str, pd.DataFrame], pd.Timestamp, pd.DataFrame | None]:
    """The canonical tables, the extraction date, and the ground truth when the data is synthetic.

    The extraction date is the configured one, else the one the data declares (never the last date
    found in the data); rows dated after it fail the contracts. Extra columns that the data
    dictionary does not declare are reported through ``progress`` ("ignored columns: ...") and listed
    in ``notes["ignored_columns"]``.
    """
    if config.data_dir is not None:
        dictionary = config.data_dictionary()
        raw = read_tables(config.data_dir, encoding=config.data_encoding, delimiter=config.data_delimiter)
        extraction = resolve_extraction_date(config.extraction_date, config.data_dir)
        declared = declared_extraction_date(config.data_dir) if config.extraction_date else None
        if declared is not None and declared != extraction and progress is not None:
            progress(text("progress.run.extraction_date", config.lang, date=extraction.date(),
                          declared=declared.date()))
        ignored = [c for c in ignored_columns(raw, dictionary)
                   if c not in {f"loans.{n}" for n in label_columns(config.label.kind, config.label.column)}]
        if ignored and progress is not None:
            progress(text("progress.run.ignored", config.lang, columns=", ".join(ignored)))
        tables = carry_label_columns(raw, validate_tables(raw, dictionary=dictionary, extraction_date=extraction),
                                     config)
        if notes is not None:
            notes["ignored_columns"] = ignored
        truth_path = Path(config.data_dir) / "_truth" / "loan_truth.parquet"
        truth = pd.read_parquet(truth_path) if truth_path.is_file() else None
        return tables, extraction, truth
    s = config.synthetic
    world = generate_world(s.enterprises, s.seed, start=str(s.start), extraction_date=str(s.extraction_date),
                           transaction_density=s.transaction_density)
    if world_dir is not None:
        write_world(world, world_dir)
    return world.tables, pd.Timestamp(world.extraction_date), world.truth


def carry_label_columns(raw: dict[str, pd.DataFrame], tables: dict[str, pd.DataFrame], config: RunConfig
                        ) -> dict[str, pd.DataFrame]:
    """The validated tables with the loans column holding the bank's default flag or date (the label, not a
    feature and not a declared attribute) carried over from the raw loans table; a missing one is one line."""
    wanted = [c for c in label_columns(config.label.kind, config.label.column) if c not in tables["loans"].columns]
    if not wanted:
        return tables
    loans = raw.get("loans")
    absent = [c for c in wanted if loans is None or c not in loans.columns]
    if absent or loans is None:
        raise DataContractError.of("error.pipeline.label_column_missing", column=absent[0], kind=config.label.kind)
    extra = loans[["loan_id", *wanted]].copy()
    extra["loan_id"] = extra["loan_id"].astype(tables["loans"]["loan_id"].dtype)
    return {**tables, "loans": tables["loans"].merge(extra, on="loan_id", how="left", validate="one_to_one")}


def modelling_frame(tables: dict[str, pd.DataFrame], extraction: pd.Timestamp, config: RunConfig,
                    progress: Callable[[str], None] | None = None, *, extra: Sequence[Feature] = ()
                    ) -> pd.DataFrame:
    """Features of every loan with its label and split; unlabelled loans (open window) are dropped.

    `extra`: features of the analyst's own (declared like the catalogue's), registered by name and
    built with the run's features, e.g. to try one in a notebook before adding it to the catalogue."""
    register(extra)
    feats = build_features(tables, features=(*own_features(config), *extra), progress=progress, lang=config.lang)
    lab = config.label
    labels = make_labels(tables, extraction, kind=lab.kind, window_months=lab.window_months,
                         dpd_threshold=lab.dpd_threshold, column=lab.column)
    feats["default"] = feats["loan_id"].map(labels).astype("Int64")
    sp = config.split
    feats["split"] = (time_split(feats["decision_date"], sp.valid_start, sp.oot_start) if sp.method == "time" else
                      holdout_split(feats["loan_id"], sp.holdout_valid_fraction, sp.holdout_test_fraction, config.seed))
    keep = feats["default"].notna()
    if config.label.first_decision_date is not None:
        keep &= feats["decision_date"] >= pd.Timestamp(config.label.first_decision_date)
    frame = feats[keep].reset_index(drop=True)
    frame["default"] = frame["default"].astype(int)
    for split in SPLITS:
        part = frame.loc[frame["split"] == split, "default"]
        if part.sum() < 5 or (part == 0).sum() < 5:
            labels = (Phrase("error.pipeline.labels_flag") if lab.kind == "flag" else Phrase(
                "error.pipeline.labels_until", {"date": (extraction - pd.DateOffset(months=lab.window_months)).date()}))
            raise DataContractError.of("error.pipeline.split_too_few", split=split, n=len(part),
                                       defaults=int(part.sum()), valid_start=config.split.valid_start,
                                       oot_start=config.split.oot_start, labels=labels)
    return frame


def own_features(config: RunConfig) -> tuple[Feature, ...]:
    """The run's features: the catalogue with the data dictionary's vocabularies and the bank's own
    attributes declared there, registered by name (schema, labels, reason texts, directions)."""
    feats = run_features(config.data_dictionary())
    register(feats)
    return feats


def risk_directions(columns: list[str]) -> dict[str, int]:
    """The catalogue's expected risk direction of each column (+1 riskier when higher, -1, or 0)."""
    return {c: int(getattr(BY_NAME[c], "direction", 0)) for c in columns if c in BY_NAME}


def lightgbm_params(config: RunConfig, directions: dict[str, int]) -> dict:
    """LightGBMPD keyword arguments from the configuration."""
    lg = config.lightgbm
    return dict(n_estimators=lg.n_estimators, early_stopping_rounds=lg.early_stopping_rounds,
                learning_rate=lg.learning_rate, num_leaves=lg.num_leaves, min_child_samples=lg.min_child_samples,
                feature_fraction=lg.feature_fraction, bagging_fraction=lg.bagging_fraction,
                reg_lambda=lg.reg_lambda, random_state=config.seed, class_weight=lg.class_weight,
                monotone_constraints=directions if lg.monotone else None)


def select_features(columns: list[str], config: RunConfig) -> list[str]:
    """The feature columns the configuration lets into the models (`features.exclude`, `include_sources`;
    "attributes" stands for both the loan and the enterprise attributes); never a label column."""
    fc = config.features
    unknown = [c for c in fc.exclude if c not in BY_NAME and c not in columns]
    if unknown:
        raise ConfigError.of("error.pipeline.exclude_unknown", name=unknown[0])
    sources = set(SOURCES) | {"attributes"}
    bad = [s for s in fc.include_sources if s not in sources]
    if bad:
        raise ConfigError.of("error.pipeline.source_unknown", name=bad[0], sources=sorted(sources))
    outcome = set(label_columns(config.label.kind, config.label.column))
    keep = [c for c in columns if c not in set(fc.exclude) and c not in outcome]
    if fc.include_sources:
        wanted = set(fc.include_sources)
        keep = [c for c in keep if feature_source(c) in wanted
                or ("attributes" in wanted and feature_source(c).endswith("_attributes"))]
    if not keep:
        raise ConfigError.of("error.pipeline.no_feature_left", n=len(columns))
    return keep


def feature_source(name: str) -> str:
    """The catalogue source of a feature column ("" when it is not in the catalogue)."""
    f = BY_NAME.get(name)
    return f.source if f is not None else ""


def feature_schema(columns: list[str], config: RunConfig) -> FeatureSchema:
    """The feature schema of `columns`: categories from the run's data dictionary (vocabularies and attributes)
    and its labels of their values."""
    dictionary = config.data_dictionary()
    return FeatureSchema.for_columns(columns, run_features(dictionary), labels=dictionary.labels)


def check_user_splits(user_splits: dict[str, list[float]], columns: list[str], schema: FeatureSchema) -> None:
    """The scorecard's analyst-fixed bins name numeric features of this run; else one ConfigError line."""
    for name in user_splits:
        if name not in columns:
            raise ConfigError.of("error.pipeline.user_splits_unknown", name=name)
        if name in schema.categorical:
            raise ConfigError.of("error.pipeline.user_splits_categorical", name=name)


def train_models(frame: pd.DataFrame, config: RunConfig) -> TrainedModels:
    """Fit both models on train (LightGBM stopping early on validation), calibrate them on validation,
    set the PD level to the long-run average default rate, and record the master scale on development data.

    Before training, constant and duplicate features are dropped (config `guard`); after it, every
    feature's power and importance share is measured by the leakage guard. With
    `train.refit_on_validation`, LightGBM is then refitted on train + validation (see models.refit) and
    becomes the main model; the model fitted on train alone is kept for comparison."""
    cols = select_features([c for c in feature_columns(frame) if c not in ("default", "split")], config)
    split = frame["split"].to_numpy()
    in_train, in_valid = split == "train", split == "valid"
    in_dev = in_train | in_valid
    g = config.guard
    screen = screen_columns(frame.loc[in_dev, cols], cols)  # a temporary copy of the development features
    screen = Screen([c for c in cols if not ((g.drop_constant and c in screen.constant)
                                             or (g.drop_duplicates and c in screen.duplicates))],
                    screen.constant if g.drop_constant else [], screen.duplicates if g.drop_duplicates else {})
    cols = screen.kept
    directions = risk_directions(cols)
    sc = config.scorecard
    params = lightgbm_params(config, directions)
    schema = feature_schema(cols, config)
    check_user_splits(sc.user_splits, cols, schema)
    scorecard = ScorecardPD(max_n_bins=sc.max_n_bins, min_bin_size=sc.min_bin_size, C=sc.C, min_iv=sc.min_iv,
                            monotonic_trends={c: {1: "ascending", -1: "descending"}[d]
                                              for c, d in directions.items() if d and sc.monotonic},
                            user_splits=dict(sc.user_splits) or None)
    trials = None
    # only the feature columns of each split are copied, once; keys, segments and texts stay in `frame`
    train, valid = frame.loc[in_train, [*cols, "default"]], frame.loc[in_valid, [*cols, "default"]]
    if config.search.enabled:
        params, trials = search_lightgbm(train, valid, cols, params, n_trials=config.search.n_trials,
                                         timeout_minutes=config.search.timeout_minutes, seed=config.seed,
                                         feature_schema=schema, calibration=config.calibration.method)
    cal = config.calibration
    target = None
    if cal.level == "long_run_average":
        target = (long_run_average(frame.loc[in_dev, "decision_date"], frame.loc[in_dev, "default"])
                  + cal.margin_of_conservatism)
    ms = config.master_scale
    scale = MasterScale(ms.grades, ms.upper_bounds, pd_floor=cal.pd_floor, assigned_pd=ms.assigned_pd)
    y_train, valid_set = train["default"].to_numpy(), (valid[cols], valid["default"].to_numpy())
    pd_models = {
        "scorecard": PDModel(scorecard, cal.method, level=target, pd_floor=cal.pd_floor).fit(
            train[cols], y_train, calibration_set=valid_set),
        "lightgbm": PDModel(LightGBMPD(**params, feature_schema=schema), cal.method, level=target,
                            master_scale=scale, pd_floor=cal.pd_floor).fit(train[cols], y_train, eval_set=valid_set),
    }
    if config.train.refit_on_validation:
        dev = frame.loc[in_dev, [*cols, "default", "decision_date", "loan_id"]]
        plain = pd_models["lightgbm"]
        refit = refit_on_development(LightGBMPD(**params, feature_schema=schema), dev[cols],
                                     dev["default"].to_numpy(), dev["decision_date"], dev["loan_id"],
                                     n_trees=plain.estimator_.best_iteration_, folds=config.train.refit_folds,
                                     method=cal.method, pd_floor=cal.pd_floor, target_mean_pd=target)
        pd_models["lightgbm"] = PDModel.from_fitted(refit.model, refit.calibrator, scale)
        pd_models["lightgbm_without_refit"] = plain
        del dev
    fitted_scale = fit_master_scale_by_parts(pd_models["lightgbm"], train[cols], valid[cols], in_train[in_dev],
                                             frame.loc[in_dev, "default"].to_numpy())
    models = TrainedModels(pd_models, fitted_scale, trials)
    if g.enabled:
        models.guard = leakage_guard(frame, models, screen, config)
    return models


def fit_master_scale_by_parts(model: PDModel, train: pd.DataFrame, valid: pd.DataFrame, is_train: np.ndarray,
                              y: np.ndarray) -> MasterScale:
    """The master scale of `model` recorded on the development rows (train and valid, interleaved as
    `is_train` says), scored part by part: the same PDs in the same order as scoring the development
    rows at once, without a copy of them."""
    dev_pd = np.empty(len(is_train), dtype=np.float64)
    dev_pd[is_train], dev_pd[~is_train] = model.predict_pd(train), model.predict_pd(valid)
    fitted = model.fit_master_scale_on_pds(dev_pd, y).master_scale_
    assert fitted is not None  # fit_master_scale_on_pds has just fitted it
    return fitted


def leakage_guard(frame: pd.DataFrame, models: TrainedModels, screen: Screen, config: RunConfig) -> pd.DataFrame:
    """The guard table of a trained run (see creditmodel.validation.leakage)."""
    g = config.guard
    cols = list(models.lightgbm.schema_.names)
    split = frame["split"].to_numpy()
    train, oot = frame.loc[split == "train", [*cols, "default"]], frame.loc[split == "oot", [*cols, "default"]]
    valid = frame.loc[split == "valid", cols]
    sample = valid if len(valid) <= g.shap_rows else valid.sample(g.shap_rows, random_state=config.seed)
    return guard_table(train, train["default"].to_numpy(), oot, oot["default"].to_numpy(), screen,
                       GuardThresholds(g.iv_max, g.auc_max, g.gain_share_max, g.shap_share_max, g.bins),
                       categorical=models.lightgbm.schema_.categorical, directions=risk_directions(cols),
                       booster=models.lightgbm.booster_, encoded=models.lightgbm.schema_.encode(sample[cols]))


def truth_by_grade(frame: pd.DataFrame, models: TrainedModels, truth: pd.DataFrame, split: str = "oot"
                   ) -> pd.DataFrame:
    """Estimated against true PD per grade: mean absolute error, and whether the grade's mean estimated
    PD lies in the 95% interval of the default rate that the true PDs imply (normal approximation)."""
    part = frame[frame["split"] == split]
    cols = list(models.lightgbm.schema_.names)
    est = models.pd("lightgbm", part[cols])
    true_pd = part["loan_id"].map(truth.set_index("loan_id")["true_pd"]).to_numpy()
    t = pd.DataFrame({"grade": models.master_scale.grade(est), "est": est, "true": true_pd,
                      "default": part["default"].to_numpy()})
    t["abs_err"] = (t["est"] - t["true"]).abs()
    t["var"] = t["true"] * (1 - t["true"])
    g = t.groupby("grade", sort=False).agg(loans=("est", "size"), mean_pd=("est", "mean"),
                                           mean_true_pd=("true", "mean"), default_rate=("default", "mean"),
                                           mae=("abs_err", "mean"), var=("var", "sum"))
    half = 1.96 * np.sqrt(g["var"]) / g["loans"]
    g["truth_lo"], g["truth_hi"] = g["mean_true_pd"] - half, g["mean_true_pd"] + half
    g["within_truth_95"] = (g["mean_pd"] >= g["truth_lo"]) & (g["mean_pd"] <= g["truth_hi"])
    order = {name: i for i, name in enumerate(models.master_scale.grades)}
    g = g.drop(columns="var").reset_index().sort_values("grade", key=lambda c: c.map(order)).reset_index(drop=True)
    overall = pd.DataFrame([{"grade": "all", "loans": len(t), "mean_pd": t["est"].mean(),
                             "mean_true_pd": t["true"].mean(), "default_rate": t["default"].mean(),
                             "mae": t["abs_err"].mean()}])
    return pd.concat([g, overall], ignore_index=True)


def evaluate(frame: pd.DataFrame, models: TrainedModels, truth: pd.DataFrame | None) -> pd.DataFrame:
    """AUC, Gini, KS, Brier per model and split; with ground truth, also the oracle (true PD) row."""
    cols = list(models.lightgbm.schema_.names)
    rows = []
    for split in SPLITS:
        part = frame[frame["split"] == split]
        y = part["default"].to_numpy()
        for model in models.model_names:
            rows.append({"model": model, "split": split, **metrics.performance(y, models.pd(model, part[cols]))})
        if truth is not None:
            true_pd = part["loan_id"].map(truth.set_index("loan_id")["true_pd"]).to_numpy()
            rows.append({"model": "oracle_true_pd", "split": split, **metrics.performance(y, true_pd)})
    return pd.DataFrame(rows)


def scored_frame(frame: pd.DataFrame, models: TrainedModels) -> pd.DataFrame:
    """Each loan's key, split, outcome, segments and both models' PDs and grades, as at training time."""
    cols = list(models.lightgbm.schema_.names)
    keep = [c for c in ("loan_id", "decision_date", "split", "default", "industry", "product", "guarantee_type",
                        "loan_amount") if c in frame.columns]
    out = frame[keep].copy()
    for model in MODELS:
        out[f"pd_{model}"] = models.pd(model, frame[cols])
        out[f"grade_{model}"] = models.master_scale.grade(out[f"pd_{model}"].to_numpy())
    out["score_points"] = models.scorecard.points(frame[cols])
    return out


def preliminary_findings(table: pd.DataFrame, models: TrainedModels, min_oot_auc: float,
                         lang: str = "en") -> list[str]:
    """Early warnings on the main model, for information: the out-of-time AUC below the minimum, grades
    whose observed default rates do not rise on development data, a benchmark that beats it. They are
    no verdict: the validation report gives the only one (a model has exactly one status). In `lang`: the
    records (model card, run tags) keep the English, the run's progress says them in its language."""
    m = table.set_index(["model", "split"])["auc"]
    findings = []
    if not m[("lightgbm", "oot")] >= min_oot_auc:
        findings.append(text("progress.finding.auc", lang, auc=m[("lightgbm", "oot")], minimum=min_oot_auc))
    if not models.master_scale.monotone_:
        findings.append(text("progress.finding.monotone", lang))
    if m[("scorecard", "oot")] > m[("lightgbm", "oot")] + 0.02:
        findings.append(text("progress.finding.benchmark", lang, scorecard=m[("scorecard", "oot")],
                             lightgbm=m[("lightgbm", "oot")]))
    if models.guard is not None and models.guard["flagged"].any():
        findings.append(text("progress.finding.guard", lang,
                             features=listed(list(models.guard.loc[models.guard["flagged"], "feature"]))))
    return findings


def write_report(frame: pd.DataFrame, models: TrainedModels, table: pd.DataFrame, report: Path,
                 truth: pd.DataFrame | None = None, figure_workers: int = 1) -> pd.DataFrame | None:
    """Plots, SHAP importance, reason codes, scorecard and master-scale tables, metrics, truth comparison.
    The plots are drawn last, by `figure_workers` processes (see validation.suite.Figures). Returns the
    truth comparison by grade (None without the synthetic world's truth), which the run logs as metrics."""
    report.mkdir(parents=True, exist_ok=True)
    cols = list(models.lightgbm.schema_.names)
    figures = Figures(figure_workers)
    for split in SPLITS:
        part = frame[frame["split"] == split]
        y = part["default"].to_numpy()
        scores = {m: models.pd(m, part[cols]) for m in MODELS}
        curves = {f"{m} (AUC {metrics.auc(part['default'], scores[m]):.3f})": (y, scores[m]) for m in MODELS}
        figures.draw(plots.plot_roc, curves, path=report / f"roc_{split}.png", title=f"ROC, {split} split")
        figures.draw(plots.plot_calibration, {k.split(" ")[0]: v for k, v in curves.items()},
                     path=report / f"calibration_{split}.png", title=f"Calibration, {split} split")
        figures.draw(plots.plot_score_distribution, y, scores["lightgbm"],
                     path=report / f"score_distribution_{split}.png", title=f"LightGBM PD, {split} split")
    valid = frame[frame["split"] == "valid"]
    expl = explain.explain(models.lightgbm, valid[cols], valid["loan_id"])
    importance = explain.global_importance(expl)
    importance.to_csv(report / "shap_importance.csv")
    figures.draw(explain.plot_importance, importance, path=report / "shap_importance.png")
    gain = models.lightgbm.booster_.feature_importance(importance_type="gain")
    pd.Series(gain, index=cols, name="gain").sort_values(ascending=False).to_csv(report / "lightgbm_gain_importance.csv")
    reasons = explain.reason_codes(expl, n=3)
    reasons.insert(1, "pd", models.pd("lightgbm", valid[cols]))
    reasons.insert(2, "grade", models.master_scale.grade(reasons["pd"].to_numpy()))
    reasons.to_csv(report / "reason_codes_valid.csv", index=False)
    models.scorecard.table().to_csv(report / "scorecard_table.csv", index=False)
    explain.scorecard_iv(models.scorecard).rename_axis("feature").reset_index().to_csv(report / "scorecard_iv.csv",
                                                                                      index=False)
    models.master_scale.table_.to_csv(report / "master_scale_development.csv", index=False)
    table.to_csv(report / "metrics.csv", index=False)
    by_grade = None if truth is None else truth_by_grade(frame, models, truth)
    if by_grade is not None:
        by_grade.to_csv(report / "truth_by_grade_oot.csv", index=False)
    figures.render()
    return by_grade


SPLIT_CONTEXTS = {"train": "training", "valid": "validation", "oot": "oot"}  # MLflow dataset contexts


def run_identity(config: RunConfig, tables: dict[str, pd.DataFrame], frame: pd.DataFrame, extraction: pd.Timestamp,
                 fps: dict[str, dict]) -> tuple[str, str]:
    """The MLflow run's name and description: models, data, enterprises and out-of-time period; the
    fingerprints, the label definition and the splits with their loans and defaults."""
    data = Path(config.data_dir).name if config.data_dir is not None else "synthetic"
    ent = tables.get("enterprises")
    n_ent = len(ent) if ent is not None else int(frame["enterprise_id"].nunique())
    sp = config.split
    counts = frame.groupby("split")["default"].agg(["size", "sum"]).reindex(SPLITS).fillna(0).astype(int)
    n = {s: f"{r['size']} loans, {r['sum']} defaults" for s, r in counts.iterrows()}
    zh = {s: f"{r['size']}笔，违约{r['sum']}笔" for s, r in counts.iterrows()}
    if sp.method == "time":
        holdout = f"oot {sp.oot_start:%Y-%m}"
        splits = {"en": f"train decided before {sp.valid_start} ({n['train']}); validation until {sp.oot_start} "
                        f"({n['valid']}); out-of-time from {sp.oot_start} ({n['oot']})",
                  "zh": f"训练集：{sp.valid_start}前决策（{zh['train']}）；验证集：至{sp.oot_start}（{zh['valid']}）；"
                        f"跨时间测试集：{sp.oot_start}起（{zh['oot']}）"}
    else:
        holdout = f"holdout {sp.holdout_test_fraction:.0%}"
        splits = {"en": f"random holdout (seed {config.seed}): train ({n['train']}); validation "
                        f"{sp.holdout_valid_fraction:.0%} ({n['valid']}); test {sp.holdout_test_fraction:.0%} "
                        f"({n['oot']})",
                  "zh": f"随机划分（种子{config.seed}）：训练集（{zh['train']}）；验证集{sp.holdout_valid_fraction:.0%}"
                        f"（{zh['valid']}）；测试集{sp.holdout_test_fraction:.0%}（{zh['oot']}）"}
    lab = config.label
    label = describe_label(lab.kind, window_months=lab.window_months, dpd_threshold=lab.dpd_threshold,
                           column=lab.column)
    return (run_name(MODELS, data, n_ent, holdout, config_sha256(config)[:7]),
            run_description(data=data, extraction_date=str(extraction.date()), label=label, splits=splits,
                            fingerprints=fps))


def run_datasets(config: RunConfig, tables: dict[str, pd.DataFrame], frame: pd.DataFrame,
                 fps: dict[str, dict]) -> list[RunDataset]:
    """The run's MLflow datasets: each input table (context "input") and the feature matrix's splits
    (contexts "training", "validation", "oot"), each with the kit's fingerprint as its digest."""
    source = str(Path(config.data_dir).resolve()) if config.data_dir is not None else None
    out = [RunDataset(name, tables[name], str(fps[name]["sha256"]), "input", source=source) for name in sorted(tables)]
    for split, context in SPLIT_CONTEXTS.items():
        part = frame[frame["split"] == split]
        out.append(RunDataset(f"features_{split}", part, table_fingerprint(part), context, targets="default",
                              tags={"feature_matrix_sha256": str(fps["feature_matrix"]["sha256"])}))
    return out


def run_inputs(config: RunConfig, tracking_uri: str | None = None) -> dict[str, Path]:
    """What a run reads and its output must therefore never replace: the data and the tracking store."""
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_STORE / 'mlflow.db'}"
    return {**({"--data": Path(config.data_dir)} if config.data_dir is not None else {}), **tracking_inputs(uri)}


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children (the figure-drawing workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@terminate_as_exception  # SIGTERM unwinds the run like an error: MLflow run KILLED, nothing registered
def run_pipeline(
    config: RunConfig,
    *,
    tracking_uri: str | None = None,
    progress: Callable[[str], None] = lambda msg: log.info(msg),
    force: bool = False,
    inputs: Inputs | None = None,
) -> RunResult:
    """Run the main job; see the module docstring.

    `inputs`: further inputs (label -> path, e.g. the configuration file) the output must not replace;
    `force`: replace an earlier output of creditmodel even if files in it were changed since."""
    out = Path(config.output_dir)
    signing_key = load_private_key(config.bundle.signing_key) if config.bundle.signing_key else None  # fail early
    output = Output(out, kind="dir", command="run", force=force, inputs={**run_inputs(config, tracking_uri),
                                                                          **(inputs or {})})
    stage = output.tmp
    timings: dict[str, float] = {}
    cpu_timings: dict[str, float] = {}  # beside the wall clock: on a shared machine the wall time says little
    clock, cpu_clock = time.perf_counter(), _cpu_seconds()

    def step(name: str) -> None:
        nonlocal clock, cpu_clock
        raise_if_terminated()  # a SIGTERM whose exception was lost (see signals) stops the run here
        now, cpu_now = time.perf_counter(), _cpu_seconds()
        timings[name], cpu_timings[name] = round(now - clock, 2), round(cpu_now - cpu_clock, 2)
        clock, cpu_clock = now, cpu_now

    def say(id_: str, **fields: Any) -> str:
        """A progress line in the run's language."""
        return text(f"progress.run.{id_}", config.lang, **fields)

    try:
        progress(say("load") if config.data_dir else say("synth", enterprises=config.synthetic.enterprises))
        notes: dict = {}
        tables, extraction, truth = load_inputs(config, stage / "world" if config.data_dir is None else None,
                                                progress=progress, notes=notes)
        dictionary = config.data_dictionary()
        flags = policy_flags(tables["loans"], dictionary, enterprises=tables.get("enterprises"))
        referrals = referral_summary(flags)
        rules = ", ".join(f"{k} {v}" for k, v in referrals.items() if k != "all")
        progress(say("policy_rules" if referrals["all"] else "policy", n=referrals["all"], loans=len(flags),
                     rules=rules))
        step("data")
        progress(say("features", n=len(tables["loans"])))
        frame = modelling_frame(tables, extraction, config, progress=lambda msg: progress(f"    {msg}"))
        missing = available_features(tables)[1]
        if missing:
            progress(say("absent", sources=", ".join(missing)))
        frame.to_parquet(stage / "features.parquet", index=False)
        step("features")
        counts = frame.groupby("split")["default"].agg(["size", "sum"]).reindex(SPLITS)
        progress(say("train", sizes=", ".join(f"{s} {int(r['size'])}/{int(r['sum'])}" for s, r in counts.iterrows())))
        models = train_models(frame, config)
        if models.guard is not None:
            guard_lines = summary_lines(models.guard, config.lang)
            progress(say("guard", n=int(models.guard["flagged"].sum())) + "".join(f"\n      {line}" for line in guard_lines))
        step("train")
        progress(say("validate"))
        table = evaluate(frame, models, truth)
        by_grade = write_report(frame, models, table, stage / "report", truth, config.validation.figure_workers)
        if models.guard is not None:
            models.guard.to_csv(stage / "report" / "leakage_guard.csv", index=False)
        if models.without_refit is not None:
            auc = table.set_index(["model", "split"])["auc"]
            progress(say("refit", refit=auc[("lightgbm", "oot")], plain=auc[("lightgbm_without_refit", "oot")]))
        seg = None
        if (config.segments.enabled and config.segments.column in frame.columns
                and frame[config.segments.column].nunique() > 1):
            cols = list(models.lightgbm.schema_.names)
            seg = compare_segment_models(
                frame, cols, models.pd("lightgbm", frame[cols]),
                {**lightgbm_params(config, risk_directions(cols)),
                 **{k: getattr(models.lightgbm, k) for k in SEARCHED}},
                segment=config.segments.column, min_train_defaults=config.segments.min_train_defaults,
                calibration=config.calibration.method, feature_schema=models.lightgbm.schema_)
            seg.to_csv(stage / "report" / f"segment_models_{config.segments.column}.csv", index=False)
            overall = seg[seg["segment"] == "all"].iloc[0]
            progress(say("segments", column=config.segments.column, n=int(seg["own_model"].sum()) - 1,
                         segmented=overall["segmented_auc"], single=overall["global_auc"]))
        findings = preliminary_findings(table, models, config.min_oot_auc)
        said = preliminary_findings(table, models, config.min_oot_auc, config.lang)  # `findings`, in the run's language
        progress(say("checks", findings=text("progress.finding.sep", config.lang).join(said) or say("nothing")))
        step("validate")
        progress(say("export"))
        cols = list(models.lightgbm.schema_.names)
        card = build_model_card(frame=frame, metrics=table, preliminary_findings=findings,
                                features=cols, config=config.model_dump(mode="json"),
                                extraction_date=str(extraction.date()))
        card["data_dictionary"] = {"source": dictionary.source, "currency": dictionary.currency,
                                   "ignored_columns": notes.get("ignored_columns", []),
                                   "policy_rules": [{"name": r.name, "en": r.en, "zh": r.zh}
                                                    for r in dictionary.policies],
                                   "loans_needing_referral": referrals}
        write_bundle(stage / "bundle", models.pd_models["lightgbm"], model_card=card, scorecard_table=models.scorecard.table(),
                     provenance={"extraction_date": str(extraction.date()), "config": config.model_dump(mode="json")},
                     signing_key=signing_key, catalogue=own_features(config))
        # the bundle just written, verified with the key that signed it (unsigned: no key configured)
        bundle = (load_bundle(stage / "bundle", trusted_keys=[signing_key.public_key()]) if signing_key
                  else load_bundle(stage / "bundle", allow_unsigned=True))
        progress(say("signed", key_id=bundle.signature.key_id) if signing_key else say("unsigned", how=HOW_TO_SIGN_PHRASE))
        scored = scored_frame(frame, models)
        gap = float(np.max(np.abs(bundle.predict_pd(frame) - scored["pd_lightgbm"].to_numpy())))
        if gap > PARITY_TOLERANCE:
            raise BundleError.of("error.pipeline.parity", gap=gap, tolerance=PARITY_TOLERANCE)
        scored.to_parquet(stage / "scored.parquet", index=False)
        points = explain.scorecard_feature_points(models.scorecard, frame[cols])
        points.insert(0, "loan_id", frame["loan_id"].to_numpy())
        points.to_parquet(stage / "scorecard_points.parquet", index=False)
        step("export")
        progress(say("price"))
        priced = price_with_bundle(bundle, frame[frame["split"] == "oot"], config.pricing, dictionary, lang=config.lang)
        priced.to_csv(stage / "priced_oot.csv", index=False)
        step("price")
        progress(say("track"))
        flat = {f"{r.model}.{r.split}.{k}": float(getattr(r, k)) for r in table.itertuples()
                for k in ("auc", "gini", "ks", "brier", "mean_pd", "default_rate")}
        flat["bundle_parity_max_abs_diff"] = gap
        if seg is not None:
            flat["segmented.oot.auc"] = float(seg.loc[seg["segment"] == "all", "segmented_auc"].iloc[0])
        flat["lightgbm.best_iteration"] = float(models.lightgbm.best_iteration_)
        guard_tags = {}
        if models.guard is not None:
            gt = models.guard
            kept = gt[gt["status"] == "kept"]
            flat["guard.flagged_features"] = float(gt["flagged"].sum())
            flat["guard.dropped_features"] = float(gt["status"].isin(["constant", "duplicate"]).sum())
            flat["guard.directions_contradicted"] = float(gt["direction_contradicted"].sum())
            for k in ("iv_train", "iv_oot", "auc_train", "auc_oot", "gain_share", "shap_share"):
                if k in kept and kept[k].notna().any():
                    flat[f"guard.max_{k}"] = float(kept[k].max())
            guard_tags = {"guard_flagged": ",".join(gt.loc[gt["flagged"], "feature"]) or "none",
                          "guard_dropped": ",".join(gt.loc[gt["status"] != "kept", "feature"]) or "none"}
        flat["calibration.level_shift"] = models.calibrators["lightgbm"].level_shift_
        flat["master_scale.monotone_development"] = float(models.master_scale.monotone_)
        if by_grade is not None:
            flat["lightgbm.oot.pd_mae_vs_truth"] = float(by_grade.loc[by_grade["grade"] == "all", "mae"].iloc[0])
            graded = by_grade[by_grade["grade"] != "all"]
            flat["lightgbm.oot.grades_within_truth_95"] = float(graded["within_truth_95"].astype(bool).mean())
        (stage / "report" / "metrics.json").write_text(json.dumps(flat, indent=2, sort_keys=True))
        uri = tracking_uri or default_tracking_uri()
        fps = {**fingerprints(tables), "feature_matrix": {"rows": len(frame), "sha256": table_fingerprint(frame)}}
        mlrun_name, description = run_identity(config, tables, frame, extraction, fps)
        with pipeline_run(uri, config.experiment, run_name=mlrun_name, description=description, tags={
                "extraction_date": str(extraction.date()), "config_sha256": config_sha256(config),
                "data_source": str(config.data_dir) if config.data_dir else "synthetic",
                "missing_sources": ",".join(missing) or "none",
                "preliminary_findings": "; ".join(findings)[:4900] or "none", **guard_tags}) as mlrun:
            artifacts = output.scratch()
            try:
                for name in ("report", "bundle"):
                    shutil.copytree(stage / name, artifacts / name)
                shutil.copy(stage / "priced_oot.csv", artifacts / "priced_oot.csv")
                (artifacts / "data").mkdir()  # what a validation report or an export needs to re-score the splits
                for name in ("features.parquet", "scored.parquet", "scorecard_points.parquet"):
                    shutil.copy(stage / name, artifacts / "data" / name)
                log_pipeline_run(
                    mlrun,
                    config=config.model_dump(mode="json"),
                    fingerprints=fps,
                    metrics=flat,
                    artifacts_dir=artifacts,
                    child_runs=[] if models.search_trials is None else [
                        {"name": f"trial-{int(t['trial'])}",
                         "params": {k: t[k] for k in SEARCHED if k in t},
                         "metrics": {"valid_auc": float(t["valid_auc"]), "trees": float(t["trees"])}}
                        for t in models.search_trials.to_dict("records")],
                    input_example=frame[cols].head(5),  # rows as the bundle (and the registered model) take them
                    datasets=run_datasets(config, tables, frame, fps),
                )
            finally:
                shutil.rmtree(artifacts, ignore_errors=True)
            step("track")
            progress(say("report"))
            validated = build_report(mlrun.run_model_uri, stage / "validation_report.html", tracking_uri=uri,
                                     config=config.validation, lang=config.lang, dictionary=dictionary)[0]
            counts = validated.counts()
            progress(say("report_status", status=Phrase(f"report.status.{validated.status}"), green=counts["green"],
                         amber=counts["amber"], red=counts["red"], path=out / "validation_report.html"))
            step("report")
            (stage / "run.json").write_text(json.dumps({
                "mlflow_tracking_uri": uri, "mlflow_run_id": mlrun.run_id, "model_uri": mlrun.run_model_uri,
                "registered_model": config.registered_model, "model_alias": config.model_alias,
                "timings_s": timings, "cpu_s": cpu_timings, "preliminary_findings": findings,
                "validation_status": validated.status, "validation_counts": counts,
                "loans_needing_referral": referrals, "ignored_columns": notes.get("ignored_columns", []),
            }, indent=2))

            def place_outputs() -> None:
                try:
                    output.commit()  # replaces only an earlier output of creditmodel (creditmodel.outputs)
                except OSError as exc:
                    raise ConfigError.of("error.pipeline.outputs_not_placed", out=out,
                                         detail=exc.strerror or str(exc)) from None

            # last: the registry sees this model only once its report and every output exist
            report_uri = artifact_uri(uri, mlrun.run_id, "validation/validation_report.html")
            tracked = mlrun.commit(place_outputs, config.registered_model, config.model_alias,
                                   {"validation_report_artifact": report_uri, **registry_tags(validated)},
                                   f"{mlrun_name}\n\n**Validation report** ({validated.status}): {report_uri}\n\n"
                                   + description)
            step("register")
            progress(say("registered", model=tracked.model_name, version=tracked.model_version,
                         alias=tracked.model_alias, status=Phrase(f"report.status.{validated.status}")))
    except BaseException:
        output.discard()
        raise
    return RunResult(out, table, tracked, models, missing, timings, cpu_timings)
