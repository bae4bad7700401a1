"""The validation report: one self-contained HTML file a model validation team reads, diffs and files.

`build_report("models:/sme_pd@challenger", "report.html")` loads the model's evidence from its
MLflow run, runs the validation suite, writes one HTML file with every figure inline (PNG as data
URIs, CSS inline, no script, no network access needed to open it), logs it to the model's run and
then sets the registry version's ``validation_status`` tag, which `creditmodel promote` reads: the
only place a validation status is ever set. A run's model (`runs:/RUN_ID/model`) can be validated
before it is registered; the pipeline does that, and registers the model with the report's verdict.
With `compare=`, a second model is validated on its own evidence and shown side by side.

Every heading, section title and introduction, test name, scope, status, table and figure caption and
column heading a person reads comes from the message catalogue (``creditmodel.texts``, ids
``report.*``) in the report's language, ``lang="en"`` or ``"zh"``; the tests' own names stay English
in summary.csv and the registry tags (they are ids there), and notes and thresholds keep their figures.
The page's fonts are a CSS stack of CJK-capable families (Noto Sans CJK, Source Han Sans, PingFang,
Microsoft YaHei, WenQuanYi) after the Latin ones: nothing is downloaded, a reader's machine uses the
first one it has, and a machine with none falls back to its own sans-serif.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from creditmodel import __version__
from creditmodel.config import ValidationConfig
from creditmodel.data.dictionary import DataDictionary
from creditmodel.exceptions import ConfigError
from creditmodel.export.bundle import load_bundle
from creditmodel.outputs import Output, scratch_dir, tracking_inputs
from creditmodel.texts import FONT_STACK, check_lang, has_text, text
from creditmodel.validation.suite import Evidence, ValidationResult, run_suite

STATUSES = ("green", "amber", "red", "info")  # coloured as pills by the template's CSS
_SCOPES = (  # the suite's scopes with a number or a name in them: pattern -> text id and its field
    (re.compile(r"^grade (?P<grade>.+)$"), "report.scope.grade"),
    (re.compile(r"^train vs (?P<split>train|valid|oot)$"), "report.scope.train_vs"),
    (re.compile(r"^(?P<n>\d+) segments$"), "report.scope.segments"),
    (re.compile(r"^(?P<n>\d+) enterprises$"), "report.scope.enterprises"),
    (re.compile(r"^top (?P<n>\d+) features$"), "report.scope.top_features"),
    (re.compile(r"^(?P<n>\d+) features$"), "report.scope.features"),
)
_WATERFALL = re.compile(r"^waterfall_(?P<group>.+)_(?P<loan>[^_]+)$")
_NOTES = (  # the suite's most frequent notes, figures kept: pattern -> text id
    (re.compile(r"^none$"), "report.note.none"),
    (re.compile(r"^none contradicts$"), "report.note.none_contradicts"),
    (re.compile(r"^(?P<loans>\d+) loans, (?P<defaults>\d+) defaults, PD (?P<pd>[\d.]+%)$"), "report.note.grade"),
    (re.compile(r"^mean PD (?P<pd>[\d.]+%), default rate (?P<rate>[\d.]+%)$"), "report.note.level"),
    (re.compile(r"^development AUC (?P<auc>[\d.]+)$"), "report.note.development_auc"),
    (re.compile(r"^(?P<k>\d+) of (?P<n>\d+) grades$"), "report.note.grades"),
    (re.compile(r"^lowest AUC shown$"), "report.note.lowest_auc"),
    (re.compile(r"^lowest AUC shown; not green: (?P<values>.+)$"), "report.note.lowest_auc_not_green"),
)
_LIGHTS = re.compile(r"\b(green|amber|red)\b")


def slug(name: str) -> str:
    """A test's or scope's id in the message catalogue: "AUC (DeLong 95% CI)" -> "auc_delong_95_ci"."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


class ReportTexts:
    """The report's words in one language, from the message catalogue; a name the catalogue does not know
    (a section or test a bank added) keeps the suite's own English words."""

    def __init__(self, lang: str = "en", cfg: ValidationConfig | None = None) -> None:
        self.lang = check_lang(lang)
        self.fields = (cfg or ValidationConfig()).model_dump()

    def __call__(self, id_: str, **fields: Any) -> str:
        return text(id_, self.lang, **fields)

    def _known(self, id_: str, fallback: str, **fields: Any) -> str:
        return text(id_, self.lang, **{**self.fields, **fields}) if has_text(id_, self.lang) else fallback

    def section(self, key: str, title: str) -> str:
        return self._known(f"report.section.{key}", title)

    def intro(self, key: str, intro: str) -> str:
        return self._known(f"report.intro.{key}", intro)

    def test(self, name: str) -> str:
        return self._known(f"report.test.{slug(name)}", name)

    def scope(self, scope: str) -> str:
        if has_text(f"report.scope.{slug(scope)}", self.lang):
            return self(f"report.scope.{slug(scope)}")
        for pattern, id_ in _SCOPES:
            m = pattern.match(scope)
            if m:
                return self(id_, **{k: self._known(f"report.split.{v}", v) for k, v in m.groupdict().items()})
        return scope

    def status(self, status: str) -> str:
        return self._known(f"report.status.{status}", status)

    def note(self, note: Any) -> Any:
        """A finding's note: the frequent ones in the report's language with their figures, others as written."""
        if not isinstance(note, str):
            return note
        for pattern, id_ in _NOTES:
            m = pattern.match(note)
            if m:
                return self(id_, **m.groupdict())
        return note

    def threshold(self, threshold: Any) -> Any:
        """A threshold ("red p<0.05, amber p<0.1") with the traffic lights named in the report's language."""
        return _LIGHTS.sub(lambda m: self.status(m.group(1)), threshold) if isinstance(threshold, str) else threshold

    def table(self, name: str, caption: str) -> str:
        return self._known(f"report.table.{name}", caption)

    def figure(self, name: str, caption: str) -> str:
        m = _WATERFALL.match(name)
        if m:
            group = self._known(f"report.figure.{m['group']}", m["group"].replace("_", " "))
            return self("report.figure.waterfall", group=group, loan=m["loan"])
        return self._known(f"report.figure.{name}", caption)

    def column(self, name: str) -> str:
        return self._known(f"report.column.{name}", str(name))


def load_evidence(model_uri: str, tracking_uri: str, workdir: Path) -> Evidence:
    """Download what the model's run logged (bundle and data) and load it."""
    from creditmodel.export.from_registry import download_run_data, resolve_model_uri

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    ref = resolve_model_uri(model_uri, tracking_uri)
    parts = download_run_data(ref, tracking_uri, workdir)
    data = parts["data"]
    for name in ("features.parquet", "scored.parquet"):
        if not (data / name).is_file():
            raise ConfigError.of("error.validation.no_run_data", run_id=ref.run_id, uri=model_uri, name=name)
    points = data / "scorecard_points.parquet"
    iv_series = None
    try:  # the SHAP-against-IV comparison is optional: older runs did not log the IV table
        import mlflow

        mlflow.set_tracking_uri(tracking_uri)
        iv = mlflow.artifacts.download_artifacts(run_id=ref.run_id, artifact_path="report/scorecard_iv.csv",
                                                 dst_path=str(workdir))
        iv_series = pd.read_csv(iv).set_index("feature")["iv"]
    except Exception:  # noqa: BLE001
        pass
    guard = None
    try:  # the leakage guard's table: runs logged before the guard existed have none
        import mlflow

        path = mlflow.artifacts.download_artifacts(run_id=ref.run_id, artifact_path="report/leakage_guard.csv",
                                                   dst_path=str(workdir))
        guard = pd.read_csv(path, keep_default_na=True)
    except Exception:  # noqa: BLE001
        pass
    label = f"{ref.name} version {ref.version}" if ref.name else f"run {ref.run_id[:8]}"
    return Evidence(
        # the run's own artifacts from the tracking store: checksums and every field are verified, and a
        # signature by a key in $CREDITMODEL_TRUSTED_KEYS too; an unsigned run is validated all the same
        label=label, bundle=load_bundle(parts["bundle"], allow_unsigned=True),
        features=pd.read_parquet(data / "features.parquet"), scored=pd.read_parquet(data / "scored.parquet"),
        scorecard_points=pd.read_parquet(points).set_index("loan_id") if points.is_file() else None,
        scorecard_iv=iv_series, guard=guard, model_uri=model_uri, run_id=ref.run_id, version=ref.version)


def _img(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _fmt(v: Any, words: ReportTexts | None = None) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return (words or ReportTexts())("report.yes" if v else "report.no")
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        a = abs(float(v))
        return f"{v:.3g}" if a and (a < 1e-3 or a >= 1e5) else f"{v:.4f}".rstrip("0").rstrip(".") if a < 1 else f"{v:,.3f}"
    return str(v)


def _table(frame: pd.DataFrame, max_rows: int = 60, words: ReportTexts | None = None) -> str:
    """A table as HTML in the report's language: column headings from the catalogue, statuses as pills."""
    words = words or ReportTexts()
    shown = frame.head(max_rows)
    body = shown.map(lambda v: _fmt(v, words)) if hasattr(shown, "map") else shown.applymap(lambda v: _fmt(v, words))
    body.columns = [words.column(str(c)) for c in body.columns]
    html = body.to_html(index=False, escape=True, border=0, classes="grid")
    if any(str(c).startswith("status") for c in frame.columns):
        for s in STATUSES:
            html = html.replace(f"<td>{s}</td>", f'<td><span class="pill {s}">{words.status(s)}</span></td>')
    if len(frame) > max_rows:
        html += f'<p class="muted">{words("report.more_rows", n=len(frame) - max_rows)}</p>'
    return html


TEMPLATE = jinja2.Template("""<!DOCTYPE html>
<html lang="{{ html_lang }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ heading }}</title>
<style>
body { font-family: {{ font_stack }}; margin: 0; color: #1d2733; }
header { background: #1f3b57; color: white; padding: 18px 28px; }
header h1 { margin: 0 0 4px 0; font-size: 22px; } header p { margin: 2px 0; opacity: .85; font-size: 13px; }
main { padding: 8px 28px 40px 28px; max-width: 1400px; }
h2 { border-bottom: 2px solid #1f3b57; padding-bottom: 4px; margin-top: 34px; }
h3 { margin-top: 22px; font-size: 15px; }
table.grid { border-collapse: collapse; font-size: 12.5px; margin: 8px 0; }
table.grid th { background: #eef2f6; text-align: left; padding: 4px 8px; border-bottom: 1px solid #c9d3dd; }
table.grid td { padding: 3px 8px; border-bottom: 1px solid #e6ebf0; vertical-align: top; }
.pill { white-space: nowrap; display: inline-block; padding: 1px 8px; border-radius: 9px; color: white; font-size: 11.5px; font-weight: 600; }
.green { background: #2e7d32; } .amber { background: #e69500; } .red { background: #c62828; } .info { background: #607d8b; }
.big { font-size: 15px; padding: 3px 14px; }
.figs { display: flex; flex-wrap: wrap; gap: 14px; }
figure { margin: 0; } figure img { max-width: 640px; border: 1px solid #e1e6eb; }
figcaption { font-size: 12px; color: #4a5a6a; }
.muted { color: #66788a; font-size: 12px; } .cols { display: flex; gap: 30px; flex-wrap: wrap; }
nav a { margin-right: 14px; font-size: 13px; }
</style></head>
<body>
<header><h1>{{ heading }}</h1>
<p>{{ subtitle }}</p><p>{{ generated_line }}</p></header>
<main>
<nav>{% for m in models %}{% for s in m.result.sections %}<a href="#{{ m.key }}-{{ s.key }}">{{ m.titles[s.key] }}{% if models|length > 1 %} ({{ m.short }}){% endif %}</a>{% endfor %}{% endfor %}</nav>
<section id="summary">
<h2>{{ words("report.summary") }}</h2>
<div class="cols">
{% for m in models %}<div>
<p>{% if models|length > 1 %}<b>{{ "AB"[loop.index0] }}</b> &nbsp; {% endif %}<b>{{ m.label }}</b> &nbsp; {{ words("report.overall") }} <span class="pill big {{ m.result.status }}">{{ words.status(m.result.status) }}</span>
&nbsp; {{ words("report.counts", **m.counts) }}</p>
<p class="muted">{{ m.uri }} &middot; {{ words("report.mlflow_run", run_id=m.run_id) }} &middot; {{ words("report.oot_auc", auc=m.result.metrics.oot_auc) }}</p>
</div>{% endfor %}
</div>
{{ summary_table }}
</section>
{% if side_by_side %}<section id="compare"><h2>{{ words("report.side_by_side") }}</h2>{{ side_by_side }}</section>{% endif %}
<section id="card"><h2>{{ words("report.model_card") }}</h2>{% for m in models %}<h3>{{ m.label }}</h3>{{ m.card }}{% endfor %}</section>
{% for m in models %}{% for s in m.result.sections %}
<section id="{{ m.key }}-{{ s.key }}">
<h2>{{ m.titles[s.key] }}{% if models|length > 1 %} &middot; {{ m.label }}{% endif %} <span class="pill {{ s.status }}">{{ words.status(s.status) }}</span></h2>
<p>{{ m.intros[s.key] }}</p>
{{ m.findings[s.key] }}
{% for caption, html in m.tables[s.key] %}<h3>{{ caption }}</h3>{{ html }}{% endfor %}
<div class="figs">{% for caption, src in m.figures[s.key] %}<figure><img alt="{{ caption }}" src="{{ src }}"><figcaption>{{ caption }}</figcaption></figure>{% endfor %}</div>
</section>
{% endfor %}{% endfor %}
</main></body></html>
""", autoescape=False)


@dataclass
class _Rendered:
    key: str
    short: str
    label: str
    uri: str
    run_id: str
    result: ValidationResult
    counts: dict[str, int]
    card: str
    findings: dict[str, str]
    tables: dict[str, list[tuple[str, str]]]
    figures: dict[str, list[tuple[str, str]]]
    titles: dict[str, str]
    intros: dict[str, str]


def _findings(frame: pd.DataFrame, words: ReportTexts, titles: dict[str, str] | None = None) -> pd.DataFrame:
    """Findings with their test, scope (and section) in the report's language."""
    out = frame.copy()
    if "test" in out.columns:
        out["test"] = out["test"].map(words.test)
    if "scope" in out.columns:
        out["scope"] = out["scope"].map(words.scope)
    if "note" in out.columns:
        out["note"] = out["note"].map(words.note)
    if "threshold" in out.columns:
        out["threshold"] = out["threshold"].map(words.threshold)
    if titles is not None and "section" in out.columns:
        out["section"] = out["section"].map(lambda t: titles.get(t, t))
    return out


def _render_model(key: str, short: str, result: ValidationResult, words: ReportTexts | None = None) -> _Rendered:
    words = words or ReportTexts()
    ev = result.evidence
    card = ev.card
    card_rows = [(words("report.card.intended_use"), card.get("intended_use", "")),
                 (words("report.card.target"), card.get("target", "")),
                 (words("report.card.target_zh"), card.get("target_zh", "")),
                 (words("report.card.extraction_date"), card.get("extraction_date", "")),
                 (words("report.card.not_for"), "; ".join(card.get("not_for", []))),
                 (words("report.card.limitations"), " ".join(card.get("limitations", [])))]
    for split, w in card.get("data_window", {}).items():
        card_rows.append((words("report.card.data", split=split),
                          words("report.card.window", first=w["first_decision_date"], last=w["last_decision_date"],
                                loans=w["loans"], defaults=w["defaults"], rate=w["default_rate"])))
    card_html = _table(pd.DataFrame(card_rows, columns=["", words("report.card.heading")]), words=words)
    findings, tables, figures = {}, {}, {}
    for s in result.sections:
        f = pd.DataFrame([x.__dict__ for x in s.findings]).drop(columns="section")
        findings[s.key] = _table(_findings(f, words), words=words)
        names = s.table_names or [""] * len(s.tables)
        tables[s.key] = [(words.table(n, c), _table(t, words=words)) for n, (c, t) in zip(names, s.tables)]
        fig_names = s.figure_names or [""] * len(s.figures)
        figures[s.key] = [(words.figure(n, c), _img(p)) for n, (c, p) in zip(fig_names, s.figures)]
    return _Rendered(key, short, ev.label, ev.model_uri or "", ev.run_id or "", result, result.counts(), card_html,
                     findings, tables, figures, {s.key: words.section(s.key, s.title) for s in result.sections},
                     {s.key: words.intro(s.key, s.intro) for s in result.sections})


def render_html(results: list[ValidationResult], cfg: ValidationConfig, lang: str = "en") -> str:
    """The report as one HTML string in `lang` ("en" or "zh"); two results are shown side by side."""
    words = ReportTexts(lang, cfg)
    models = [_render_model(f"m{i}", r.evidence.label.split(" ")[-1] if r.evidence.version else f"m{i}", r, words)
              for i, r in enumerate(results)]
    titles = {s.title: words.section(s.key, s.title) for r in results for s in r.sections}
    summary = _findings(results[0].summary(), words, titles)
    side = ""
    if len(results) == 1:
        summary_html = _table(summary, max_rows=500, words=words)
    else:
        tags = ["A", "B"]
        keyed = []
        for tag, r in zip(tags, results):
            s = _findings(r.summary(), words, titles)
            s["key"] = s["section"] + " | " + s["test"] + " | " + s["scope"]
            keyed.append(s[["key", "section", "test", "scope", "value", "p_value", "status"]].rename(
                columns={"value": f"value {tag}", "p_value": f"p {tag}", "status": f"status {tag}"}))
        both = keyed[0].merge(keyed[1], on=["key", "section", "test", "scope"], how="outer", sort=False)
        summary_html = _table(both.drop(columns="key"), max_rows=500, words=words)
        side = _table(pd.DataFrame([{"": tag, "model": r.evidence.label, "uri": r.evidence.model_uri,
                                     "overall": r.status, **r.counts(),
                                     "oot_auc": r.metrics["oot_auc"], "oot_brier": r.metrics["oot_brier"]}
                                    for tag, r in zip(tags, results)]).rename(columns={"overall": "status"}),
                      words=words)
    title = words("report.vs").join(r.evidence.label for r in results)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return TEMPLATE.render(
        heading=words("report.title", title=title), html_lang="zh-CN" if words.lang == "zh" else "en",
        font_stack=FONT_STACK, words=words,
        subtitle=results[0].evidence.card.get("model", ""), models=models, summary_table=summary_html,
        side_by_side=side, generated_line=words("report.generated", generated=generated, version=__version__,
                                                thresholds=", ".join(f"{k} {v}" for k, v in cfg.model_dump().items())))


def log_report(result: ValidationResult, html: Path, tracking_uri: str, workdir: Path) -> None:
    """Log the report and its tables to the model's run; record the verdict on the registry version."""
    import mlflow
    from mlflow import MlflowClient

    ev = result.evidence
    if ev.run_id is None:
        raise ConfigError.of("error.validation.no_run_to_log", label=ev.label)
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    files = Path(workdir) / "validation"
    files.mkdir(parents=True, exist_ok=True)
    shutil.copy(html, files / "validation_report.html")
    result.summary().to_csv(files / "summary.csv", index=False)
    result.reason_codes.to_csv(files / "reason_codes_oot.csv", index=False)
    (files / "status.json").write_text(json.dumps({"status": result.status, **result.counts()}, indent=2))
    client.log_artifacts(ev.run_id, str(files), artifact_path="validation")
    client.log_metric(ev.run_id, "validation.red_tests", float(result.counts()["red"]))
    client.log_metric(ev.run_id, "validation.amber_tests", float(result.counts()["amber"]))
    client.set_tag(ev.run_id, "validation_report_status", result.status)
    name = ev.label.split(" version ")[0] if ev.version else None
    if name and ev.version:
        for key, value in registry_tags(result).items():  # validation_status last: it is the verdict
            client.set_model_version_tag(name, ev.version, key, value)


def registry_tags(result: ValidationResult) -> dict[str, str]:
    """The registry version tags that record this report's verdict, `validation_status` last; set
    only once the report is written and logged, and never from anything but a report."""
    ev = result.evidence
    red = [f"{f.section}: {f.test} ({f.scope})" for s in result.sections for f in s.findings if f.status == "red"]
    return {"validation_findings": ("; ".join(red) or "no red test")[:4900],
            "validation_report": f"runs:/{ev.run_id}/validation/validation_report.html",
            "validation_status": result.status}


def build_report(
    model_uri: str,
    out: str | Path,
    *,
    tracking_uri: str,
    config: ValidationConfig | None = None,
    compare: str | None = None,
    log: bool = True,
    figures_dir: str | Path | None = None,
    force: bool = False,
    lang: str = "en",
    dictionary: DataDictionary | None = None,
) -> list[ValidationResult]:
    """Validate `model_uri` (and `compare`), write the HTML report to `out`, log it to the model's run.

    The figures are inlined into the HTML; with `figures_dir` they are also kept there as PNG files
    (e.g. to show them in a notebook), else they are removed with the other intermediate files.
    `out` must be new or an earlier output of creditmodel (`creditmodel.outputs`; `force` also
    replaces one changed since); it is checked before any work. `lang`: the report's language ("en", "zh").
    `dictionary`: the bank's data dictionary (``RunConfig.data_dictionary()``), whose policy rules the report
    counts on the out-of-time loans; default: the shipped one."""
    cfg = config or ValidationConfig()
    lang = check_lang(lang)
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ConfigError.of("error.validation.out_not_html", out=out)
    output = Output(out, kind="file", command="report", force=force, inputs=tracking_inputs(tracking_uri))
    work = None
    try:
        work = scratch_dir(out)
        results = []
        for i, uri in enumerate([model_uri] + ([compare] if compare else [])):
            ev = load_evidence(uri, tracking_uri, work / f"model{i}")
            ev.dictionary = dictionary
            figdir = Path(figures_dir) / f"model{i}" if figures_dir is not None else work / f"figures{i}"
            results.append(run_suite(ev, cfg, figdir))
        html = render_html(results, cfg, lang)
        output.tmp.write_text(html, encoding="utf-8")
        output.commit()
        if log:
            log_report(results[0], out, tracking_uri, work)
    except BaseException:
        output.discard()
        raise
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    return results
