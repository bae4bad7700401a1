"""The validation suite: every test a model validation team signs off, run on a tracked model's evidence.

The evidence of a model is what its MLflow run logged: the export bundle (trees, calibration, master
scale, schema, scorecard table), the feature matrix of every split and the scores recorded at
training time. The suite needs nothing else, so it validates any registered model, today's or last
year's, without the training code's objects.

Each test yields a :class:`Finding` with its value, p-value, status (green/amber/red) and the
threshold that set the status; thresholds come from :class:`creditmodel.config.ValidationConfig`.
Development data is the ``train`` split; ``oot`` is the current (out-of-time) sample.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from creditmodel.config import ValidationConfig
from creditmodel.data.dictionary import DataDictionary, default_dictionary
from creditmodel.export.bundle import PDBundle
from creditmodel.features.catalogue import BY_NAME
from creditmodel.validation import explain, plots, stats
from creditmodel.validation.leakage import TITLE as LEAKAGE_TITLE
from creditmodel.validation.metrics import auc, brier, ks

STATUS_ORDER = {"green": 0, "amber": 1, "red": 2, "info": -1}
SEGMENTS = ("industry", "product", "guarantee_type", "year")
MODELS = ("lightgbm", "scorecard")


@dataclass
class Evidence:
    """What a tracked model's run logged, loaded: enough to validate it without its training objects."""

    label: str
    bundle: PDBundle
    features: pd.DataFrame  # every split: loan_id, enterprise_id, decision_date, split, default, features
    scored: pd.DataFrame  # loan_id, split, default, segments, pd_<model>, grade_<model>, score_points
    scorecard_points: pd.DataFrame | None = None  # per loan (index loan_id) and scorecard feature
    scorecard_iv: pd.Series | None = None  # information value of every candidate feature
    guard: pd.DataFrame | None = None  # the leakage and dominance guard's table (report/leakage_guard.csv)
    model_uri: str | None = None
    run_id: str | None = None
    version: str | None = None
    dictionary: DataDictionary | None = None  # the bank's, whose policy rules are counted; None: the shipped one

    @property
    def card(self) -> dict[str, Any]:
        return self.bundle.model_card


@dataclass
class Finding:
    """One line of the report's summary."""

    section: str
    test: str
    scope: str
    value: float | None
    p_value: float | None
    status: str
    threshold: str
    note: str = ""


@dataclass
class Section:
    """A chapter of the report: its findings, tables and figures, each table and figure under a short name
    (``section.table("csi")``, ``section.figure("roc")``) besides its caption, in report order."""

    key: str
    title: str
    intro: str = ""
    findings: list[Finding] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)  # (caption, table), report order
    figures: list[tuple[str, Path]] = field(default_factory=list)  # (caption, PNG file), report order
    table_names: list[str] = field(default_factory=list)  # the name of each entry of `tables`
    figure_names: list[str] = field(default_factory=list)  # the name of each entry of `figures`

    def add_table(self, name: str, caption: str, table: pd.DataFrame, *, first: bool = False) -> None:
        if name in self.table_names:
            raise ValueError(f"section {self.key!r} already has a table named {name!r}")
        at = 0 if first else len(self.tables)
        self.tables.insert(at, (caption, table))
        self.table_names.insert(at, name)

    def add_figure(self, name: str, caption: str, path: Path) -> None:
        if name in self.figure_names:
            raise ValueError(f"section {self.key!r} already has a figure named {name!r}")
        self.figures.append((caption, Path(path)))
        self.figure_names.append(name)

    def table(self, name: str) -> pd.DataFrame:
        """The table called `name` (see ``table_names``)."""
        if name not in self.table_names:
            raise KeyError(f"section {self.key!r} has no table {name!r}; it has {self.table_names}")
        return self.tables[self.table_names.index(name)][1]

    def figure(self, name: str) -> Path:
        """The PNG file of the figure called `name` (see ``figure_names``)."""
        if name not in self.figure_names:
            raise KeyError(f"section {self.key!r} has no figure {name!r}; it has {self.figure_names}")
        return self.figures[self.figure_names.index(name)][1]

    def add(self, test: str, scope: str, result: stats.TestResult | None = None, *, value: float | None = None,
            p_value: float | None = None, status: str | None = None, threshold: str = "", note: str = "") -> None:
        if result is not None:
            value, p_value, status, threshold = result.value, result.p_value, result.status, result.threshold
        self.findings.append(Finding(self.title, test, scope, _num(value), _num(p_value), status or "info",
                                     threshold, note))

    @property
    def status(self) -> str:
        return worst(f.status for f in self.findings)


@dataclass
class ValidationResult:
    """The suite's outcome for one model."""

    evidence: Evidence
    sections: list[Section]
    reason_codes: pd.DataFrame  # every out-of-time loan: LightGBM and scorecard reasons side by side
    metrics: dict[str, float]
    explanation: explain.Explanation | None = None  # SHAP of the out-of-time loans, to plot again

    def __getitem__(self, key: str) -> Section:
        """The section called `key` (``result["stability"]``; see :meth:`keys`)."""
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(f"no section {key!r}; the sections are {self.keys()}")

    def keys(self) -> list[str]:
        return [s.key for s in self.sections]

    @property
    def status(self) -> str:
        return worst(s.status for s in self.sections)

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([f.__dict__ for s in self.sections for f in s.findings])

    def counts(self) -> dict[str, int]:
        s = self.summary()["status"]
        return {k: int((s == k).sum()) for k in ("green", "amber", "red")}


def worst(statuses: Any) -> str:
    """The worst of several statuses (red > amber > green); informational lines do not count."""
    ranked = [s for s in statuses if STATUS_ORDER.get(s, -1) >= 0]
    return max(ranked, key=STATUS_ORDER.__getitem__) if ranked else "green"


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)


def _split(ev: Evidence, name: str) -> pd.DataFrame:
    return ev.scored[ev.scored["split"] == name]


# --------------------------------------------------------------------------- figures


class Figures:
    """The report's figures, drawn after the tests: `draw` records a plot call and returns the path it will
    write; `render` draws them all, in `workers` processes (fork) or in order (1 worker, or no fork).

    Drawing (matplotlib text layout and PNG encoding) is most of a validation run at demo size while no
    test depends on a figure, so the figures are drawn side by side; the findings never change."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self.jobs: list[tuple[Callable[..., Any], tuple, dict]] = []

    def draw(self, fn: Callable[..., Any], *args: Any, path: Path, **kwargs: Any) -> Path:
        self.jobs.append((fn, args, {**kwargs, "path": path}))
        return Path(path)

    def render(self) -> None:
        jobs, self.jobs = self.jobs, []
        workers = min(self.workers, len(jobs))
        if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
            for job in jobs:
                _draw(*job)
            return
        import matplotlib.pyplot  # noqa: F401  imported once here, not in every worker

        global _PENDING
        _PENDING = jobs  # inherited by the forked workers: nothing large is pickled
        try:
            with multiprocessing.get_context("fork").Pool(workers, initializer=_quiet_worker,
                                                          initargs=(os.getpid(),)) as pool:
                for _ in pool.imap_unordered(_draw_pending, range(len(jobs)), chunksize=1):
                    pass
        finally:
            _PENDING = []


_PENDING: list[tuple[Callable[..., Any], tuple, dict]] = []


def _quiet_worker(run: int) -> None:
    """A forked drawing worker ends quietly when the pool stops it: it must not inherit the run's
    SIGTERM-as-exception handler (creditmodel.signals), which would print a traceback per worker. And it
    ends with the run: a run terminated while its pool was starting a worker had left that worker
    waiting forever on the pool's queue, holding the run's output pipe open."""
    import signal

    from creditmodel.signals import end_with_parent

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    end_with_parent(run, every=0.2)


def _draw_pending(i: int) -> None:
    _draw(*_PENDING[i])


def _draw(fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    """Draw one figure (a plot function returning a display object) and save it at kwargs['path']."""
    kwargs = dict(kwargs)
    path = kwargs.pop("path")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fn(*args, **kwargs).save(path)


def _figures(figures: Figures | None) -> Figures:
    return figures if figures is not None else _Immediate()


class _Immediate(Figures):
    """Draws at once (a section called on its own, outside `run_suite`)."""

    def draw(self, fn: Callable[..., Any], *args: Any, path: Path, **kwargs: Any) -> Path:
        _draw(fn, args, {**kwargs, "path": path})
        return Path(path)


# --------------------------------------------------------------------------- discrimination


def paired_delong(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """DeLong et al. (1988) test of two correlated AUCs on the same loans: (AUC a - AUC b, z, two-sided p)."""
    va10, va01 = stats.delong_placements(y, a)
    vb10, vb01 = stats.delong_placements(y, b)
    n1, n0 = len(va10), len(va01)
    s10 = np.cov(np.vstack([va10, vb10]), ddof=1)
    s01 = np.cov(np.vstack([va01, vb01]), ddof=1)
    cov = s10 / n1 + s01 / n0
    diff = float(va10.mean() - vb10.mean())
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    if var <= 0:
        return diff, 0.0, 1.0
    z = diff / np.sqrt(var)
    return diff, float(z), float(2 * norm.sf(abs(z)))


def discrimination(ev: Evidence, cfg: ValidationConfig, figdir: Path, figures: Figures | None = None) -> Section:
    figures = _figures(figures)
    sec = Section("discrimination", "Discrimination",
                  "Ranking power of the main model (LightGBM) by split; AUC with DeLong confidence interval, "
                  "the ECB variance for comparison, and the ECB test of the out-of-time AUC against the AUC at "
                  "development. The development AUC is the validation split's: it was held out from fitting, "
                  "while a boosted model's in-sample (train) AUC is optimistic by construction.")
    rows, dev = [], None
    for split in ("train", "valid", "oot"):
        part = _split(ev, split)
        y, p = part["default"].to_numpy(), part["pd_lightgbm"].to_numpy()
        d = stats.auc_confidence(y, p, method="delong", amber=cfg.auc_amber, red=cfg.auc_red)
        mw = stats.auc_confidence(y, p, method="mann_whitney", amber=cfg.auc_amber, red=cfg.auc_red)
        cap = stats.cap_curve(y, p)
        rows.append({"split": split, "loans": len(part), "defaults": int(y.sum()), "auc": d.value,
                     "ci_low": d.detail["ci_low"], "ci_high": d.detail["ci_high"], "se_delong": d.detail["se"],
                     "se_ecb": mw.detail["se"], "gini": 2 * d.value - 1, "accuracy_ratio": cap.accuracy_ratio,
                     "ks": ks(y, p)})
        if split == "valid":
            dev = d
        if split == "oot":
            assert dev is not None  # the validation split comes before the out-of-time one
            sec.add("AUC (DeLong 95% CI)", "out of time", d,
                    note=f"[{d.detail['ci_low']:.3f}, {d.detail['ci_high']:.3f}]")
            sec.add("Gini / accuracy ratio (CAP)", "out of time", value=cap.accuracy_ratio, status="info",
                    note=f"Gini {2 * d.value - 1:.3f}")
            sec.add("KS", "out of time", value=ks(y, p), status="info")
            change = stats.auc_change_test(d.value, mw.detail["se"], dev.value, red=cfg.p_red, amber=cfg.p_amber)
            sec.add("AUC now vs at development (ECB one-sided z)", "oot vs valid", change,
                    note=f"development AUC {dev.value:.3f}")
            curves = {}
            for m in MODELS:
                curves[f"{m} (AUC {auc(y, part[f'pd_{m}']):.3f})"] = (y, part[f"pd_{m}"].to_numpy())
            sec.add_figure("roc", "ROC, out of time", figures.draw(plots.plot_roc, curves, path=figdir / "roc_oot.png",
                                                                title="ROC, out of time"))
            sec.add_figure("cap", "CAP, out of time", figures.draw(plot_cap, y, p, path=figdir / "cap_oot.png"))
    sec.add_table("by_split", "Discrimination by split (LightGBM)", pd.DataFrame(rows))
    return sec


def plot_cap(y: np.ndarray, score: np.ndarray, title: str = "CAP, out of time", *, ax: Any = None
             ) -> plots.FigureDisplay:
    """Cumulative accuracy profile of the model against the perfect and the random model."""
    cap = stats.cap_curve(y, score)
    rate = float(np.mean(y))

    def draw(ax: Any) -> tuple[Any, Any]:
        fig, ax = plots.new_axes(ax, (5, 5), plots.MARGINS_SQUARE)
        ax.plot(cap.population_share, cap.default_share, label=f"model (AR {cap.accuracy_ratio:.3f})")
        ax.plot([0, rate, 1], [0, 1, 1], color="grey", linestyle="--", label="perfect")
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random")
        ax.set(xlabel="share of loans (riskiest first)", ylabel="share of defaults", title=title)
        ax.legend(loc="lower right", fontsize=8)
        return fig, ax

    return plots.FigureDisplay(title, draw).plot(ax)


# --------------------------------------------------------------------------- calibration


def calibration(ev: Evidence, cfg: ValidationConfig, figdir: Path, figures: Figures | None = None) -> Section:
    figures = _figures(figures)
    sec = Section("calibration", "Calibration",
                  "Level of the PDs against observed default rates, per grade and overall, out of time. "
                  "Jeffreys and binomial tests are one-sided (a small p-value means the PD is too low).")
    part = _split(ev, "oot")
    y, p, g = part["default"].to_numpy(), part["pd_lightgbm"].to_numpy(), part["grade_lightgbm"].to_numpy()
    jef = stats.jeffreys_test(y, p, g, red=cfg.p_red, amber=cfg.p_amber)
    bino = stats.binomial_test(y, p, g, red=cfg.p_red, amber=cfg.p_amber)
    sec.add("Jeffreys", "portfolio", jef.overall, note=f"mean PD {p.mean():.2%}, default rate {y.mean():.2%}")
    sec.add("Binomial", "portfolio", bino.overall)
    graded = jef.grades.merge(bino.grades[["grade", "p_value", "status"]], on="grade", suffixes=("_jeffreys", "_binomial"))
    order = {name: i for i, name in enumerate(ev.bundle.master_scale.grades)}
    graded = graded.sort_values("grade", key=lambda c: c.map(order)).reset_index(drop=True)
    for r in graded.itertuples():
        sec.add("Jeffreys", f"grade {r.grade}", value=r.default_rate, p_value=r.p_value_jeffreys,
                status=r.status_jeffreys, threshold=jef.overall.threshold,
                note=f"{r.n} loans, {r.defaults} defaults, PD {r.pd:.2%}")
    red_grades = int((graded["status_binomial"] == "red").sum())
    sec.add("Binomial, grades red", "grades", value=red_grades, status="info",
            note=f"{red_grades} of {len(graded)} grades")
    hl = stats.hosmer_lemeshow(y, p, g, red=cfg.p_red, amber=cfg.p_amber)
    sec.add("Hosmer-Lemeshow over grades", "portfolio", hl, note=f"df {hl.detail['df']}")
    sp = stats.spiegelhalter(y, p, red=cfg.p_red, amber=cfg.p_amber)
    sec.add("Spiegelhalter", "portfolio", sp)
    sec.add("Brier score", "portfolio", value=brier(y, p), status="info")
    sec.add_table("by_grade", "Observed against predicted by grade (out of time)", graded)
    sec.add_figure("grades", "Observed and predicted default rate by grade",
                   figures.draw(plot_grades, graded, path=figdir / "grades_oot.png"))
    curves = {m: (y, part[f"pd_{m}"].to_numpy()) for m in MODELS}
    sec.add_figure("calibration", "Calibration curve, out of time",
                   figures.draw(plots.plot_calibration, curves, path=figdir / "calibration_oot.png",
                                title="Calibration, out of time"))
    return sec


def plot_grades(table: pd.DataFrame, title: str = "Observed against predicted by grade (out of time)", *,
                ax: Any = None) -> plots.FigureDisplay:
    """Observed default rate (bars) and mean PD (line) per grade, from the calibration section's table."""

    def draw(ax: Any) -> tuple[Any, Any]:
        fig, ax = plots.new_axes(ax, (7, 4), plots.MARGINS_WIDE)
        x = np.arange(len(table))
        ax.bar(x, table["default_rate"], color="#9bb7d4", label="observed default rate")
        ax.plot(x, table["pd"], color="#c0392b", marker="o", label="mean PD")
        ax.set_xticks(x, table["grade"].astype(str))
        ax.set(xlabel="grade", ylabel="rate", title=title)
        ax.legend(fontsize=8)
        return fig, ax

    return plots.FigureDisplay(title, draw).plot(ax)


# --------------------------------------------------------------------------- stability


def stability(ev: Evidence, cfg: ValidationConfig, figdir: Path, top_features: list[str]) -> Section:
    sec = Section("stability", "Stability",
                  "Population stability of the score and of the grades between development (train) and each later "
                  "period, characteristic stability (CSI) per feature, grade concentration and grade migration.")
    dev = _split(ev, "train")
    later = ev.scored[ev.scored["split"] != "train"].copy()
    later["period"] = pd.to_datetime(later["decision_date"]).dt.to_period("Q").astype(str)
    rows = []
    periods = [("valid", _split(ev, "valid")), ("oot", _split(ev, "oot"))] + [
        (f"quarter {q}", part) for q, part in later.groupby("period") if len(part) >= cfg.min_period_loans]
    grades = list(ev.bundle.master_scale.grades)
    for name, part in periods:
        s = stats.psi(dev["pd_lightgbm"], part["pd_lightgbm"], amber=cfg.psi_amber, red=cfg.psi_red)
        gr = stats.psi_counts(dev["grade_lightgbm"].value_counts().reindex(grades, fill_value=0),
                              part["grade_lightgbm"].value_counts().reindex(grades, fill_value=0),
                              amber=cfg.psi_amber, red=cfg.psi_red)
        rows.append({"period": name, "loans": len(part), "psi_score": s.value, "status_score": s.status,
                     "psi_grade": gr.value, "status_grade": gr.status})
        if name in ("valid", "oot"):
            sec.add("PSI of the score", f"train vs {name}", s)
            sec.add("PSI of the grades", f"train vs {name}", gr)
    sec.add_table("psi", f"PSI by period (quarters with at least {cfg.min_period_loans} loans)", pd.DataFrame(rows))
    feats = ev.features
    cols = [c for c in ev.bundle.schema.names if c in feats.columns]
    table = stats.csi(feats[feats["split"] == "train"][cols], feats[feats["split"] == "oot"][cols],
                      amber=cfg.psi_amber, red=cfg.psi_red).sort_values("psi", ascending=False)
    table.insert(1, "label", table["feature"].map(explain.label))
    table["top_shap"] = table["feature"].isin(top_features)
    key = table[table["top_shap"]]
    worst_key = key.iloc[0] if len(key) else table.iloc[0]
    sec.add("CSI of the top SHAP features", "train vs oot", value=float(worst_key["psi"]),
            status=worst(key["status"]) if len(key) else "green",
            threshold=f"amber >={cfg.psi_amber:g}, red >={cfg.psi_red:g}",
            note=f"largest: {worst_key['feature']}; {int((table['status'] != 'green').sum())} of {len(table)} "
                 f"features amber or red")
    sec.add_table("csi", "CSI per feature, train vs out of time (largest first)", table.reset_index(drop=True))
    oot = _split(ev, "oot")
    counts = oot["grade_lightgbm"].value_counts().reindex(grades, fill_value=0)
    hi = stats.herfindahl(counts, amber=cfg.hi_amber, red=cfg.hi_red)
    sec.add("Grade concentration (Herfindahl HI)", "out of time", hi, note=f"HHI {hi.detail['hhi']:.3f}")
    dev_counts = dev["grade_lightgbm"].value_counts().reindex(grades, fill_value=0)
    cc = stats.concentration_change_test(dev_counts, counts, red=cfg.p_red, amber=cfg.p_amber)
    sec.add("Concentration change (ECB CV test)", "train vs oot", cc)
    mig = grade_migration(ev, grades)
    if mig is not None:
        m, n_pairs = mig
        sec.add("Grade migration, share unchanged", f"{n_pairs} enterprises", value=m.summary["diagonal_share"],
                status="info", note=f"MWB up {m.summary['mwb_upper']:.3f}, down {m.summary['mwb_lower']:.3f}")
        sec.add_table("migration", "Grade migration between an enterprise's last loan before the out-of-time period "
                      "and its first loan in it (row shares)", m.rates.round(3).reset_index())
    return sec


def grade_migration(ev: Evidence, grades: list[str]) -> tuple[stats.MigrationMatrix, int] | None:
    """Each enterprise's grade on its last loan before the out-of-time period against its first loan in it."""
    if "enterprise_id" not in ev.features.columns:
        return None
    s = ev.scored.merge(ev.features[["loan_id", "enterprise_id"]], on="loan_id")
    s = s.sort_values("decision_date")
    before = s[s["split"] != "oot"].groupby("enterprise_id").last()
    after = s[s["split"] == "oot"].groupby("enterprise_id").first()
    both = before.join(after, lsuffix="_from", rsuffix="_to", how="inner")
    if len(both) < 10:
        return None
    return stats.migration_matrix(both["grade_lightgbm_from"], both["grade_lightgbm_to"], grades), len(both)


# --------------------------------------------------------------------------- segments and benchmark


def segments(ev: Evidence, cfg: ValidationConfig) -> Section:
    sec = Section("segments", "Out of time by segment",
                  "AUC and observed against predicted default rates by industry, product, guarantee type and year, "
                  f"out of time. Segments with fewer than {cfg.min_segment_defaults} defaults are shown but not judged.")
    oot = _split(ev, "oot").copy()
    oot["year"] = pd.to_datetime(oot["decision_date"]).dt.year.astype(str)
    rows = []
    for col in SEGMENTS:
        if col not in oot.columns:
            continue
        for value, part in oot.groupby(col, observed=True):
            y, p = part["default"].to_numpy(), part["pd_lightgbm"].to_numpy()
            d = int(y.sum())
            a = auc(y, p) if 0 < d < len(y) else float("nan")
            jp = float(stats.jeffreys_p(d, len(y), float(p.mean())))
            judged = d >= cfg.min_segment_defaults
            status = worst([stats.status_from_p(jp, cfg.p_red, cfg.p_amber),
                            "red" if a < cfg.auc_red else "amber" if a < cfg.auc_amber else "green"]) if judged else "info"
            rows.append({"segment": col, "value": str(value), "loans": len(y), "defaults": d,
                         "default_rate": y.mean(), "mean_pd": p.mean(), "auc": a, "jeffreys_p": jp, "status": status})
    table = pd.DataFrame(rows)
    for col in SEGMENTS:
        part = table[table["segment"] == col]
        if len(part):
            judged = part[part["status"] != "info"]
            bad = judged[judged["status"] != "green"]["value"].tolist()
            sec.add(f"By {col.replace('_', ' ')}", f"{len(part)} segments",
                    value=float(judged["auc"].min()) if len(judged) else None,
                    status=worst(judged["status"]) if len(judged) else "info",
                    threshold=f"AUC red <{cfg.auc_red:g}, amber <{cfg.auc_amber:g}; Jeffreys red p<{cfg.p_red:g}",
                    note=("lowest AUC shown; not green: " + ", ".join(bad)) if bad else "lowest AUC shown")
    sec.add_table("segments", "Segments, out of time", table)
    return sec


def benchmark(ev: Evidence, cfg: ValidationConfig) -> Section:
    sec = Section("benchmark", "Benchmark: LightGBM (challenger) against the scorecard",
                  "Both models on the same out-of-time loans; the AUC difference is tested with DeLong's paired test.")
    oot = _split(ev, "oot")
    y = oot["default"].to_numpy()
    rows = []
    for m in MODELS:
        p = oot[f"pd_{m}"].to_numpy()
        rows.append({"model": m, "auc": auc(y, p), "gini": 2 * auc(y, p) - 1, "ks": ks(y, p), "brier": brier(y, p),
                     "mean_pd": p.mean(), "default_rate": y.mean()})
    diff, z, p_value = paired_delong(y, oot["pd_lightgbm"].to_numpy(), oot["pd_scorecard"].to_numpy())
    status = "amber" if diff < -cfg.benchmark_margin else "green"
    sec.add("AUC LightGBM minus scorecard (paired DeLong)", "out of time", value=diff, p_value=p_value, status=status,
            threshold=f"amber when the benchmark is better by more than {cfg.benchmark_margin:g}", note=f"z {z:.2f}")
    sec.add_table("models", "Champion and challenger on the same data", pd.DataFrame(rows))
    return sec


# --------------------------------------------------------------------------- policy rules


def policy(ev: Evidence, cfg: ValidationConfig) -> Section:
    """Out-of-time loans outside a policy rule of the data dictionary (the unit's approval authority, the
    longest term): information for the reader, never a reason to drop or refuse a loan."""
    from creditmodel.data.policy import applicable_rules, policy_flags, rule_text

    sec = Section("policy", "Approval authority and policy rules",
                  "Out-of-time loans above the unit's approval authority or outside another policy rule of the "
                  "data dictionary: they are scored and priced like every loan and flagged for referral upwards.")
    oot = ev.features[ev.features["split"] == "oot"]
    d = applicable_rules(ev.dictionary if ev.dictionary is not None else default_dictionary(), set(oot.columns))
    flags = policy_flags(oot, d)
    rows = []
    for rule in d.policies:
        hit = flags["referral_rules"].str.split(",").map(lambda names, r=rule.name: r in names)
        n = int(hit.sum())
        rows.append({"rule": rule.name, "column": f"{rule.table}.{rule.column}", "max": rule.max_value,
                     "min": rule.min_value, "loans": n, "share": n / max(len(oot), 1),
                     "text_en": rule_text(d, rule.name, "en"), "text_zh": rule_text(d, rule.name, "zh")})
    sec.add("Loans needing referral", "out of time", value=float(flags["needs_referral"].sum()), status="info",
            note=f"{int(flags['needs_referral'].sum())} of {len(oot)} loans; rules: "
                 + (", ".join(r.name for r in d.policies) or "none"))
    sec.add_table("referrals", "Loans outside each policy rule (out of time)", pd.DataFrame(rows))
    return sec


# --------------------------------------------------------------------------- explanations


def explanations(ev: Evidence, cfg: ValidationConfig, figdir: Path, figures: Figures | None = None
                 ) -> tuple[Section, pd.DataFrame, pd.Series, explain.Explanation]:
    figures = _figures(figures)
    sec = Section("explanations", "Explanations (SHAP)",
                  "Exact TreeSHAP from LightGBM's own pred_contrib on the out-of-time loans: global ranking, "
                  "beeswarm, dependence with the catalogue's expected direction, local waterfalls and reason codes, "
                  "beside the scorecard's points-lost reasons.")
    oot_f = ev.features[ev.features["split"] == "oot"].reset_index(drop=True)
    schema = ev.bundle.schema
    values, base = explain.shap_values(ev.bundle.booster, schema.encode(oot_f))
    index = pd.Index(oot_f["loan_id"].to_numpy(), name="loan_id")
    names = list(schema.names)
    expl = explain.Explanation(pd.DataFrame(values, index=index, columns=names), base,
                               oot_f[names].set_axis(index, axis=0), tuple(schema.categorical))
    importance = explain.global_importance(expl)
    sec.add_figure("importance", "Mean |SHAP|", figures.draw(explain.plot_importance, importance,
                                                         path=figdir / "shap_importance.png"))
    sec.add_figure("beeswarm", "Beeswarm", figures.draw(explain.plot_beeswarm, expl, path=figdir / "shap_beeswarm.png",
                                                       max_rows=cfg.shap_plot_rows))
    sec.add_figure("dependence", "Dependence of the top features, expected direction marked",
                   figures.draw(explain.plot_dependence, expl, path=figdir / "shap_dependence.png", top=6))
    check = explain.direction_check(expl)
    top = list(importance.index[:cfg.top_features])
    flagged = check[check["feature"].isin(top) & check["contradicts"]]
    sec.add("SHAP direction against the catalogue", f"top {len(top)} features", value=float(len(flagged)),
            status="amber" if len(flagged) else "green", threshold="amber when any top feature contradicts",
            note=", ".join(flagged["feature"]) if len(flagged) else "none contradicts")
    sec.add_table("direction", "Direction check (Spearman rho of value and SHAP)", check)
    scored = _split(ev, "oot").set_index("loan_id").loc[index]
    chosen = explain.select_loans(scored["pd_lightgbm"].to_numpy(), scored["default"].to_numpy(),
                                  n=cfg.waterfalls_per_group, loan_id=index.to_numpy())
    (figdir / "waterfalls").mkdir(parents=True, exist_ok=True)
    for r in chosen.itertuples(index=False):  # as explain.plot_waterfalls names and titles them
        title = (f"{str(r.group).replace('_', ' ')}: loan {r.loan_id}, PD {r.pd:.2%}, "
                 f"defaulted: {'yes' if r.default else 'no'}")
        path = figures.draw(explain.plot_waterfall, expl, r.loan_id,
                            path=figdir / "waterfalls" / f"waterfall_{r.group}_{r.loan_id}.png", title=title)
        sec.add_figure(path.stem, path.stem.replace("_", " "), path)
    lgb_reasons = explain.reason_codes(expl, n=3, features=True).set_index("loan_id").add_prefix("lightgbm_")
    reasons = lgb_reasons
    if ev.scorecard_points is not None and ev.bundle.scorecard is not None:
        best = ev.bundle.scorecard.groupby("Variable", sort=False)["Points"].max().astype(float)
        pts = ev.scorecard_points.loc[index]
        sc = explain.points_lost_reasons(pts, best, oot_f.set_axis(index, axis=0), n=3).set_index("loan_id")
        reasons = lgb_reasons.join(sc.add_prefix("scorecard_"))
        same = (reasons["lightgbm_reason_1_feature"] == reasons["scorecard_reason_1_feature"]).mean()
        sec.add("Top reason: LightGBM and scorecard name the same feature", "out of time", value=float(same),
                status="info")
    reasons.insert(0, "pd", scored["pd_lightgbm"].to_numpy())
    reasons.insert(1, "grade", scored["grade_lightgbm"].to_numpy())
    sec.add_table("reasons", "Reason codes of the loans in the waterfalls (every loan's are in reason_codes_oot.csv)",
                  reasons.loc[chosen["loan_id"]].reset_index())
    if ev.scorecard_iv is not None:
        agree = explain.importance_agreement(importance, ev.scorecard_iv)
        sec.add("Rank agreement SHAP importance vs scorecard IV (Spearman)", f"{agree['n_common']} features",
                value=agree["spearman_rho"], status="info",
                note=f"Kendall tau {agree['kendall_tau']:.2f}; top-10 overlap {agree.get('top_overlap', '')}")
    imp = importance.head(cfg.top_features).rename("mean_abs_shap").reset_index()
    imp.columns = ["feature", "mean_abs_shap"]
    imp.insert(1, "label", imp["feature"].map(explain.label))
    imp["direction"] = imp["feature"].map(lambda n: BY_NAME[n].direction if n in BY_NAME else 0)
    if ev.scorecard_iv is not None:
        imp["scorecard_iv"] = imp["feature"].map(ev.scorecard_iv)
    sec.add_table("importance", "Top features by mean |SHAP|", imp, first=True)
    return sec, reasons.reset_index(), importance, expl


# --------------------------------------------------------------------------- leakage and dominance


def leakage(ev: Evidence, cfg: ValidationConfig) -> Section:
    """The guard's verdict, first in the report: features with implausible power, contradicted directions,
    and the constant or duplicate columns dropped before training."""
    sec = Section("leakage", f"{LEAKAGE_TITLE['en']} / {LEAKAGE_TITLE['zh']}",
                  "Every feature alone: direction-free AUC and information value on train and out of time; its "
                  "share of LightGBM's gain and of mean |SHAP|. A feature with implausible power may be recorded "
                  "after, or because of, the default (e.g. a term cut short by a charge-off): check that it is known "
                  "at the decision date before trusting the model. 单一特征的区分能力过强可能意味着信息泄露"
                  "（该字段在决策日之后才记录或因违约而改变），请在使用模型前核实。")
    g = ev.guard
    if g is None:
        sec.add("Leakage guard", "all features", status="info", note="no guard table logged with this run")
        return sec
    flagged = g[g["flagged"].astype(bool)]
    contradicted = g[g["direction_contradicted"].astype(bool)]
    dropped = g[g["status"].isin(["constant", "duplicate"])]
    top = flagged.iloc[0] if len(flagged) else None
    sec.add("Features with implausible power", f"{int((g['status'] == 'kept').sum())} features",
            value=float(len(flagged)), status="amber" if len(flagged) else "green",
            threshold="amber when any feature exceeds a guard threshold (config [guard])",
            note=("; ".join(f"{r.feature}: {r.reasons}" for r in flagged.itertuples())
                  if top is not None else "none"))
    sec.add("Declared risk direction contradicted by the data", "train", value=float(len(contradicted)),
            status="info", threshold="opposite sign of Spearman's rho on train, p < 0.01",
            note=(", ".join(contradicted["feature"]) + ": the monotone constraint keeps the declared direction; "
                  "remove the direction if the data is right") if len(contradicted) else "none")
    sec.add("Constant or duplicate features dropped", "development", value=float(len(dropped)), status="info",
            note=", ".join(f"{r.feature} ({r.reasons})" for r in dropped.itertuples()) or "none")
    shown = g.drop(columns=[c for c in ("duplicate_of",) if c in g.columns])
    shown.insert(1, "label", shown["feature"].map(explain.label))
    sec.add_table("guard", "Power and dominance per feature (flagged first)", shown)
    return sec


# --------------------------------------------------------------------------- the whole suite


def run_suite(ev: Evidence, cfg: ValidationConfig, figdir: Path, workers: int | None = None) -> ValidationResult:
    """Run every section; figures are written into `figdir`, once every test has run, by `workers`
    processes (default: the config's ``figure_workers``; 1 draws them one after another)."""
    figdir = Path(figdir)
    figdir.mkdir(parents=True, exist_ok=True)
    figures = Figures(cfg.figure_workers if workers is None else workers)
    expl_sec, reasons, importance, expl = explanations(ev, cfg, figdir, figures)
    sections = [leakage(ev, cfg), discrimination(ev, cfg, figdir, figures), calibration(ev, cfg, figdir, figures),
                stability(ev, cfg, figdir, list(importance.index[:cfg.top_features])),
                segments(ev, cfg), benchmark(ev, cfg), policy(ev, cfg), expl_sec]
    figures.render()
    oot = _split(ev, "oot")
    metrics = {"oot_auc": auc(oot["default"], oot["pd_lightgbm"]), "oot_brier": brier(oot["default"], oot["pd_lightgbm"])}
    result = ValidationResult(ev, sections, reasons, metrics, explanation=expl)
    result.metrics.update({f"validation_{k}": float(v) for k, v in result.counts().items()})
    return result
