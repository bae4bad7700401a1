"""The `creditmodel` command: one sub-command per stage, each a thin call into the library.

Errors at a boundary (data, config, bundle, request) print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path

from creditmodel.exceptions import ConfigError, CreditModelError
from creditmodel.signals import Terminated

EXIT_ERROR = 2


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _cmd_synth(args: argparse.Namespace) -> None:
    from creditmodel.config import SyntheticConfig
    from creditmodel.data.synthetic import generate_world, write_world

    from pydantic import ValidationError

    try:
        cfg = SyntheticConfig(enterprises=args.enterprises, seed=args.seed,
                              transaction_density=args.transaction_density,
                              **({"extraction_date": args.extraction_date} if args.extraction_date else {}))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"--{'-'.join(str(p) for p in err['loc']).replace('_', '-')}: value "
                          f"{err.get('input')!r}: {err['msg']}") from None
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out}: directory exists and is not empty")
    if args.partitioned:
        from creditmodel.data.synthetic import write_world_partitioned

        write_world_partitioned(out, cfg.enterprises, cfg.seed, chunk_enterprises=args.chunk_enterprises,
                                start=str(cfg.start), extraction_date=str(cfg.extraction_date),
                                transaction_density=cfg.transaction_density,
                                progress=lambda done, total: print(f"  block {done}/{total}", flush=True))
        print(f"wrote {out} as partitioned parquet (ground truth apart in {out / '_truth'})")
        return
    world = generate_world(cfg.enterprises, cfg.seed, start=str(cfg.start), extraction_date=str(cfg.extraction_date),
                           transaction_density=cfg.transaction_density)
    write_world(world, out)
    for name, frame in world.tables.items():
        print(f"{name:22s} {len(frame):>12,d} rows")
    print(f"wrote {out} (ground truth apart in {out / '_truth'})")


def _cmd_run(args: argparse.Namespace) -> None:
    from creditmodel.config import load_config
    from creditmodel.pipeline import run_pipeline

    config = load_config(args.config, {
        "data_dir": args.data, "output_dir": args.out, "synthetic.enterprises": args.enterprises,
        "synthetic.seed": args.seed, "seed": args.seed, "data_encoding": args.encoding,
        "data_delimiter": args.delimiter,
    })
    result = run_pipeline(config, tracking_uri=args.tracking_uri, progress=lambda m: print(m, flush=True))
    m = result.metrics.set_index(["model", "split"])
    print("\nout-of-time test:")
    for model in m.index.get_level_values(0).unique():
        r = m.loc[(model, "oot")]
        print(f"  {model:16s} AUC {r['auc']:.3f}  Gini {r['gini']:.3f}  KS {r['ks']:.3f}  Brier {r['brier']:.4f}"
              f"  mean PD {r['mean_pd']:.2%} vs default rate {r['default_rate']:.2%}")
    t = result.tracked
    print(f"""
MLflow run       {t.run_id} (experiment {config.experiment}) in {t.tracking_uri}
registered model {t.model_uri} (version {t.model_version})
report and plots {result.report_dir}
validation       {result.output_dir / "validation_report.html"}   (creditmodel report {t.model_uri} --out FILE)
export bundle    {result.bundle_dir}
priced OOT loans {result.priced_path}
features         {result.features_path}

open the MLflow UI:  .venv/bin/mlflow ui --backend-store-uri {t.tracking_uri}   (then http://127.0.0.1:5000)
open JupyterLab:     make lab   (notebooks/01_end_to_end.ipynb walks the same flow, 02_validation_report.ipynb the report)""")


def _cmd_features(args: argparse.Namespace) -> None:
    from creditmodel.data.io import load_tables
    from creditmodel.features.build import build_features

    tables = load_tables(args.data, encoding=args.encoding, delimiter=args.delimiter)
    frame = build_features(tables, threads=args.threads, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    _atomic_write(frame, Path(args.out))
    print(f"wrote {len(frame)} rows x {frame.shape[1] - 3} features to {args.out}")


def _cmd_export(args: argparse.Namespace) -> None:
    from creditmodel.export.from_registry import export_model
    from creditmodel.tracking.mlflow_tracking import default_tracking_uri

    uri = args.model_uri or (f"runs:/{args.run_id}/model" if args.run_id else f"models:/{args.model}@{args.alias}")
    result = export_model(uri, Path(args.out), tracking_uri=args.tracking_uri or default_tracking_uri(), onnx=args.onnx)
    out = Path(args.out)
    files = ", ".join(sorted(p.name for p in out.iterdir()))
    ref = result["model"]
    where = f"{ref.name} version {ref.version}, " if ref.name else ""
    print(f"exported {uri} ({where}run {ref.run_id}) to {out}: {files}")
    par = result["parity"]
    print(f"checksums verified; parity with training-time scores on {par['rows']} out-of-time loans: "
          f"max PD difference {par['max_abs_pd_diff']:.2g}, grades agree {par['grade_agreement']:.0%}")
    if "onnx_drift" in result:
        d = result["onnx_drift"]
        print(f"ONNX (float32) drift on the same loans: max PD difference {d['max_abs_pd_diff']:.2g}, "
              f"grades agree {d['grade_agreement']:.4%}")


def _read_frame(path: Path) -> "pd.DataFrame":  # noqa: F821
    import pandas as pd

    from creditmodel.exceptions import DataContractError

    if not path.is_file():
        raise DataContractError(f"input file {path} does not exist")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    raise DataContractError(f"input file {path}: expected .parquet or .csv")


def _atomic_write(frame: "pd.DataFrame", out: Path) -> None:  # noqa: F821
    if out.suffix not in (".csv", ".parquet"):
        raise ConfigError(f"--out {out}: expected a .csv or .parquet file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        if out.suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _cmd_price(args: argparse.Namespace) -> None:
    import math

    from creditmodel.config import load_config
    from creditmodel.export.bundle import load_bundle
    from creditmodel.pricing import portfolio_summary, price_with_bundle, with_target_rate

    out = Path(args.out)
    if out.suffix not in (".csv", ".parquet"):
        raise ConfigError(f"--out {out}: expected a .csv or .parquet file name")
    target = args.target_raroc
    if target is not None and not (math.isfinite(target) and -1 < target <= 10):
        raise ConfigError(f"--target-raroc {target}: expected a return on capital as a fraction, e.g. 0.15")
    pricing = load_config(args.config).pricing
    bundle = load_bundle(args.bundle)
    applications = _read_frame(Path(args.applications))
    priced = price_with_bundle(bundle, applications, pricing)
    if target is not None:
        priced = with_target_rate(priced, target, pricing)
    _atomic_write(priced, out)
    s = portfolio_summary(priced)
    print(f"priced {s['n_loans']} loans (exposure {s['exposure']:,.0f}) -> {out}\n"
          f"exposure-weighted rate {s['rate']:.2%} (risk-covering {s['risk_covering_rate']:.2%}), "
          f"RAROC {s['raroc']:.1%} against a {pricing.hurdle_rate:.0%} hurdle, EVA {s['eva']:,.0f} a year; "
          f"{s['n_floored']} at the {pricing.min_rate:.2%} floor, {s['n_capped']} at the {pricing.max_rate:.0%} cap")


def _cmd_data_check(args: argparse.Namespace) -> None:
    from creditmodel.data.io import load_tables
    from creditmodel.data.profile import profile
    from creditmodel.features.labels import default_labels

    tables = load_tables(args.dir, encoding=args.encoding, delimiter=args.delimiter)
    extraction = tables["repayments"]["date"].max()
    print(profile(tables, default_labels(tables["loans"], tables["repayments"], extraction)))
    print("all contracts passed")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors, like every other boundary of creditmodel."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _cmd_data_adapt(args: argparse.Namespace) -> None:
    from creditmodel.data.adapters.taiwan import write_taiwan

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out}: directory exists and is not empty")
    if not Path(args.csv).is_file():
        raise ConfigError(f"--csv {args.csv}: file does not exist")
    write_taiwan(args.csv, out)
    print(f"wrote canonical tables to {out}; run them with: creditmodel run --data {out} --config configs/taiwan.toml")


def _cmd_register(args: argparse.Namespace) -> None:
    from creditmodel.tracking.mlflow_tracking import default_tracking_uri
    from creditmodel.tracking.registry import register

    version = register(args.tracking_uri or default_tracking_uri(), args.run_id, args.model, args.alias,
                       by=args.by, reason=args.reason)
    print(f"registered run {args.run_id} as {args.model} version {version}, alias {args.alias}; not validated yet "
          f"(promotion refused until then): creditmodel report models:/{args.model}/{version} --out FILE")


def _cmd_runs_cleanup(args: argparse.Namespace) -> None:
    from creditmodel.tracking.mlflow_tracking import cleanup_stale_runs, default_tracking_uri

    uri = args.tracking_uri or default_tracking_uri()
    cleaned = cleanup_stale_runs(uri, args.experiment)
    print(f"marked {len(cleaned)} run(s) of experiment {args.experiment!r} FAILED whose process on this host "
          f"had gone" + (": " + ", ".join(cleaned) if cleaned else ""))


def _cmd_promote(args: argparse.Namespace) -> None:
    from creditmodel.tracking.mlflow_tracking import default_tracking_uri
    from creditmodel.tracking.registry import promote

    version = promote(args.tracking_uri or default_tracking_uri(), args.model, from_alias=args.from_alias,
                      to_alias=args.to_alias, by=args.by, reason=args.reason, force=args.force)
    print(f"{args.model}@{args.to_alias} -> version {version} (was {args.model}@{args.from_alias})")


def _cmd_compare(args: argparse.Namespace) -> None:
    import pandas as pd

    from creditmodel.tracking.mlflow_tracking import default_tracking_uri
    from creditmodel.tracking.registry import compare_runs

    metrics, params = compare_runs(args.tracking_uri or default_tracking_uri(), args.run_a, args.run_b)
    keys = [k for k in metrics.index if args.all or k.endswith((".auc", ".gini", ".ks", ".brier", ".mean_pd"))
            or "." not in k.split(".", 1)[-1]]
    with pd.option_context("display.width", 160, "display.max_rows", 500, "display.float_format", "{:.4f}".format):
        print(metrics.loc[keys].to_string())
        print("\nparameters that differ:" if len(params) else "\nno parameter differs")
        if len(params):
            print(params.to_string())


def _cmd_serve(args: argparse.Namespace) -> None:
    import socket

    from creditmodel.config import load_config
    from creditmodel.export.bundle import load_bundle

    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: expected at least 1")
    pricing = load_config(args.config).pricing
    bundle = load_bundle(args.bundle)  # verified (checksums, parse) before any server starts

    from creditmodel.service.app import create_app, model_id, serve

    app = create_app(bundle, pricing)  # builds the request schema and proves the fast path's parity
    try:
        socket.create_server((args.host, args.port)).close()
    except OSError as exc:
        raise ConfigError(f"--host {args.host} --port {args.port}: cannot listen there ({exc.strerror or exc})") from None
    print(f"serving model {model_id(bundle)} ({len(bundle.schema.names)} features) on "
          f"http://{args.host}:{args.port} with {args.workers} worker(s); API docs at /docs", flush=True)
    serve(app, args.bundle, args.config, host=args.host, port=args.port, workers=args.workers,
          log_level=args.log_level, access_log=args.access_log)  # more workers: each loads and verifies the bundle


def _cmd_score(args: argparse.Namespace) -> None:
    from creditmodel.export.bundle import load_bundle
    from creditmodel.service.batch import score_parquet

    bundle = load_bundle(args.bundle)
    keep = None if args.keep is None else [c.strip() for c in args.keep.split(",") if c.strip()]
    progress = (lambda done, total: print(f"  {done:,}/{total:,} rows", file=sys.stderr, flush=True)) if args.verbose else None
    stats = score_parquet(bundle, args.input, args.out, batch_size=args.batch_size, reasons=args.reasons, keep=keep,
                          num_threads=args.threads, progress=progress)
    print(f"scored {stats['rows']:,} rows -> {stats['out']} in {stats['seconds']:.1f} s "
          f"({stats['rows_per_s']:,.0f} rows/s){'; with reason codes' if args.reasons else ''}")


def _cmd_report(args: argparse.Namespace) -> None:
    from creditmodel.config import load_config
    from creditmodel.tracking.mlflow_tracking import default_tracking_uri
    from creditmodel.validation.report import build_report

    config = load_config(args.config).validation if args.config else None
    out = Path(args.out)
    if args.screenshot:
        from creditmodel.validation.browser import find_chromium

        if find_chromium() is None:
            raise ConfigError("--screenshot needs Chromium, and none is installed (package 'chromium')")
    results = build_report(args.model_uri, out, tracking_uri=args.tracking_uri or default_tracking_uri(),
                           config=config, compare=args.compare, log=not args.no_log)
    for r in results:
        c = r.counts()
        print(f"{r.evidence.label}: {r.status} ({c['green']} green, {c['amber']} amber, {c['red']} red), "
              f"out-of-time AUC {r.metrics['oot_auc']:.3f}")
        for s in r.sections:
            reds = [f"{f.test} ({f.scope})" for f in s.findings if f.status == "red"]
            if reds:
                print(f"  red in {s.title}: " + "; ".join(reds))
    print(f"wrote {out}" + ("" if args.no_log else f"; logged to run {results[0].evidence.run_id} and tagged "
                                                  f"validation_status={results[0].status}"))
    if args.screenshot:
        from creditmodel.validation.browser import open_in_browser

        seen = open_in_browser(out, screenshot=args.screenshot)
        print(f"opened in Chromium: {seen['images']} figures, {len(seen['console_errors'])} console errors; "
              f"summary screenshot {args.screenshot}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="creditmodel", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log library progress")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="generate the synthetic SME world as canonical parquet tables")
    p.add_argument("--out", required=True, help="directory to create (must be empty or absent)")
    p.add_argument("--enterprises", type=_positive_int, default=10_000, help="number of borrowers (default 10000)")
    p.add_argument("--seed", type=_positive_int, default=0, help="random seed (default 0)")
    p.add_argument("--extraction-date", help="last date of the data, YYYY-MM-DD (default 2025-06-30)")
    p.add_argument("--transaction-density", type=float, default=1.0,
                   help="scale of account transactions (default 1.0, about 20 a month per borrower)")
    p.add_argument("--partitioned", action="store_true",
                   help="write in chunks to <table>/part-*.parquet with bounded memory (large worlds)")
    p.add_argument("--chunk-enterprises", type=_positive_int, default=50_000,
                   help="borrowers per part with --partitioned (default 50000)")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("run", help="the main job: features, models, MLflow, SHAP, bundle, pricing")
    p.add_argument("--config", help="TOML run configuration (all fields optional)")
    p.add_argument("--data", help="directory or DuckDB file of canonical tables (default: synthetic world)")
    p.add_argument("--out", help="output directory (default data/demo), replaced only when the run succeeds")
    p.add_argument("--enterprises", type=_positive_int, help="size of the synthetic world")
    p.add_argument("--seed", type=_positive_int, help="seed of the synthetic world and of training")
    p.add_argument("--encoding", help="encoding of CSV tables, e.g. gbk (default utf-8)")
    p.add_argument("--delimiter", help="CSV delimiter (default ,)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default $MLFLOW_TRACKING_URI or mlruns/mlflow.db)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("features", help="build as-of features for every loan of a data directory")
    p.add_argument("--data", required=True, help="directory or DuckDB file of canonical tables")
    p.add_argument("--out", required=True, help="output .parquet or .csv")
    p.add_argument("--encoding", default="utf-8", help="CSV encoding, e.g. gbk (default utf-8)")
    p.add_argument("--delimiter", default=",", help="CSV delimiter (default ,)")
    p.add_argument("--threads", type=_positive_int, default=1,
                   help="DuckDB threads (default 1: bit-stable sums; more is faster)")
    p.set_defaults(func=_cmd_features)

    p = sub.add_parser("export", help="write a verified bundle of a tracked model for pricing and scoring services")
    p.add_argument("model_uri", nargs="?", help="models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN_ID/model "
                                                "(default models:/sme_pd@challenger)")
    p.add_argument("--out", required=True, help="directory to write the bundle to (must be empty or absent)")
    p.add_argument("--onnx", action="store_true", help="also write model.onnx and measure its float32 drift")
    p.add_argument("--model", default="sme_pd", help="registered model name when no MODEL_URI (default sme_pd)")
    p.add_argument("--alias", default="challenger", help="model alias when no MODEL_URI (default challenger)")
    p.add_argument("--run-id", help="take the model of this run when no MODEL_URI")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default $MLFLOW_TRACKING_URI or mlruns/mlflow.db)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("price", help="score applications with an export bundle alone and price them")
    p.add_argument("--bundle", required=True, help="export bundle directory")
    p.add_argument("--applications", "--features", dest="applications", required=True,
                   help="rows (.parquet/.csv) with loan_id, the bundle's features and the loan terms: guarantee_type, "
                        "ead or amount/loan_amount (CNY), maturity_years or term_months, optional annual_sales (CNY)")
    p.add_argument("--out", required=True, help="priced output (.csv or .parquet), written only when all rows price")
    p.add_argument("--config", help="TOML configuration whose [pricing] table sets costs, LGDs, capital, floor/cap")
    p.add_argument("--target-raroc", type=float, metavar="X",
                   help="also give each loan the rate that earns RAROC X (e.g. 0.15), column rate_for_target_raroc")
    p.set_defaults(func=_cmd_price)

    uri_help = "MLflow tracking URI (default $MLFLOW_TRACKING_URI or mlruns/mlflow.db)"
    p = sub.add_parser("register", help="register a run's model as a new version and set an alias")
    p.add_argument("--run-id", required=True, help="MLflow run whose model to register")
    p.add_argument("--model", default="sme_pd", help="registered model name (default sme_pd)")
    p.add_argument("--alias", default="challenger", help="alias to point at the new version (default challenger)")
    p.add_argument("--by", help="who registers it (default: the current user)")
    p.add_argument("--reason", default="", help="why, recorded as a tag")
    p.add_argument("--tracking-uri", help=uri_help)
    p.set_defaults(func=_cmd_register)

    p = sub.add_parser("promote", help="move an alias, e.g. challenger -> champion, refusing red validations")
    p.add_argument("--model", default="sme_pd", help="registered model name (default sme_pd)")
    p.add_argument("--from", dest="from_alias", default="challenger", help="alias to promote (default challenger)")
    p.add_argument("--to", dest="to_alias", default="champion", help="alias to set (default champion)")
    p.add_argument("--by", help="who promotes it (default: the current user)")
    p.add_argument("--reason", default="", help="why, recorded as a tag (required with --force)")
    p.add_argument("--force", action="store_true", help="promote even though validation is red or not done yet")
    p.add_argument("--tracking-uri", help=uri_help)
    p.set_defaults(func=_cmd_promote)

    p = sub.add_parser("runs", help="maintain the MLflow runs of an experiment")
    runs_sub = p.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    c = runs_sub.add_parser("cleanup", help="mark FAILED the runs left RUNNING by a process of this host that is gone")
    c.add_argument("--experiment", default="creditmodel", help="MLflow experiment (default creditmodel)")
    c.add_argument("--tracking-uri", help=uri_help)
    c.set_defaults(func=_cmd_runs_cleanup)

    p = sub.add_parser("compare", help="show two runs' metrics side by side and the parameters that differ")
    p.add_argument("run_a", help="first MLflow run id")
    p.add_argument("run_b", help="second MLflow run id")
    p.add_argument("--all", action="store_true", help="show every metric, not only the headline ones")
    p.add_argument("--tracking-uri", help=uri_help)
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("report", help="validation report (one self-contained HTML) of a tracked model")
    p.add_argument("model_uri", help="models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN_ID/model")
    p.add_argument("--out", required=True, help="the .html file to write")
    p.add_argument("--compare", metavar="OTHER_URI", help="a second model to validate and show side by side")
    p.add_argument("--config", help="TOML whose [validation] table sets the thresholds")
    p.add_argument("--screenshot", metavar="PNG", help="open the report in headless Chromium and save the summary")
    p.add_argument("--no-log", action="store_true", help="do not log the report to the run or tag the version")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default $MLFLOW_TRACKING_URI or mlruns/mlflow.db)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("data", help="work with a directory of canonical tables")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    c = data_sub.add_parser("check", help="validate every table against its contract and print a profile")
    c.add_argument("dir", help="directory of .parquet/.csv tables, or a DuckDB file")
    c.add_argument("--encoding", default="utf-8", help="CSV encoding, e.g. gbk (default utf-8)")
    c.add_argument("--delimiter", default=",", help="CSV delimiter (default ,)")
    c.set_defaults(func=_cmd_data_check)
    a = data_sub.add_parser("adapt", help="map a public data set into canonical tables")
    a.add_argument("dataset", choices=["taiwan"], help="taiwan: UCI credit-card clients (Yeh & Lien 2009)")
    a.add_argument("--csv", required=True, help="path of the data set's CSV file")
    a.add_argument("--out", required=True, help="directory to create (must be empty or absent)")
    a.set_defaults(func=_cmd_data_adapt)
    p = sub.add_parser("serve", help="serve PDs, grades, reason codes and prices over HTTP from an export bundle")
    p.add_argument("--bundle", required=True, help="export bundle directory (verified at start-up)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1, loopback only)")
    p.add_argument("--port", type=_positive_int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--config", help="TOML configuration whose [pricing] table sets costs, LGDs, capital, floor/cap")
    p.add_argument("--workers", type=_positive_int, default=1, help="uvicorn worker processes (default 1)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn log level (default info)")
    p.add_argument("--access-log", action="store_true", help="log every request (off by default: it costs latency)")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("score", help="score a parquet file of feature rows in chunks from an export bundle")
    p.add_argument("--bundle", required=True, help="export bundle directory")
    p.add_argument("--input", required=True, help="parquet file or directory of parquet parts with the bundle's features")
    p.add_argument("--out", required=True, help="output .parquet, written only when every row scored")
    p.add_argument("--reasons", action="store_true", help="add the top-3 reason codes (TreeSHAP; slower)")
    p.add_argument("--keep", help="comma-separated input columns to carry over (default: every non-feature column)")
    p.add_argument("--batch-size", type=_positive_int, default=100_000, help="rows per chunk (default 100000)")
    p.add_argument("--threads", type=_positive_int, default=0, help="LightGBM threads (default 0 = all cores)")
    p.set_defaults(func=_cmd_score)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one-line output, also on errors
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"pyspark(\..*)?")  # noise on import
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except CreditModelError as exc:
        print(f"creditmodel: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Terminated as exc:
        print(f"creditmodel: {exc}; an unfinished run registers nothing and leaves the outputs as they were",
              file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("creditmodel: interrupted; an unfinished run registers nothing and leaves the outputs as they were",
              file=sys.stderr)
        return 128 + 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
