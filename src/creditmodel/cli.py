"""The `creditmodel` command: one sub-command per stage, each a thin call into the library.

Errors at a boundary (data, config, bundle, request) print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from creditmodel.cli_usage import ENV_LANG, EXIT_ERROR, FlagValueError, Parser, parse_args
from creditmodel.exceptions import ConfigError, CreditModelError, DataContractError, Texted, first_line
from creditmodel.memory import keep_freed_memory
from creditmodel.outputs import Output, check_output
from creditmodel.signals import Terminated
from creditmodel.texts import DEFAULT_LANG, LANGS, Phrase, listed, text

if TYPE_CHECKING:  # pandas and the bundle module (LightGBM) are imported only by the commands that use them
    import pandas as pd

    from creditmodel.config import RunConfig
    from creditmodel.export.bundle import PDBundle
    from creditmodel.monitoring.mlflow_metrics import MonitoringTarget


def _read_config(args: argparse.Namespace, overrides: dict | None = None) -> RunConfig:
    """The command's --config with `overrides`; the ``lang`` it sets is then the language of the command's error
    lines (where --lang does not say one; the default configuration's leaves $CREDITMODEL_LANG its say)."""
    from creditmodel.config import load_config

    config = load_config(args.config, overrides)
    if "lang" in config.model_fields_set:
        args.config_lang = config.lang
    return config


def _memory_limit(text: str) -> str:
    from creditmodel.features.online import check_memory_limit

    try:
        return check_memory_limit(text)
    except ValueError as exc:
        if isinstance(exc, Texted) and exc.text_id is not None:
            raise FlagValueError.of(exc.text_id, **exc.fields) from None
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise FlagValueError.of("error.usage.whole_number", value=text) from None
    if value < 0:
        raise FlagValueError.of("error.usage.not_negative", value=value)
    return value


def _signing_key(flag: str | None) -> str | None:
    """The private key that signs bundles: --signing-key, else $CREDITMODEL_SIGNING_KEY (else the config's)."""
    from creditmodel.export.signing import ENV_SIGNING_KEY

    return flag or os.environ.get(ENV_SIGNING_KEY) or None


def _load_bundle(args: argparse.Namespace) -> PDBundle:
    """The --bundle of a consuming command, verified against --trusted-key (or $CREDITMODEL_TRUSTED_KEYS)."""
    from creditmodel.export.bundle import load_bundle

    bundle = load_bundle(args.bundle, **_trust(args))
    _warn_if_unsigned(args, bundle)
    return bundle


def _trust(args: argparse.Namespace) -> dict:
    """load_bundle's trust options from --trusted-key / --allow-unsigned."""
    return {"trusted_keys": args.trusted_key or None, "allow_unsigned": args.allow_unsigned}


def _warn(args: argparse.Namespace, text_id: str, /, **fields) -> None:
    """A warning line on stderr, in the language of the command's error lines."""
    lang = _error_lang(args)
    print(text("cli.warning", lang, msg=text(text_id, lang, **fields)), file=sys.stderr, flush=True)


def _signature_phrase(signature) -> Phrase:
    """What a bundle's signature proved (export.signing.Signature.describe), as a text of each language."""
    if signature.key_id is None:
        return Phrase("cli.signature.unsigned")
    return Phrase("cli.signature.trusted" if signature.trusted else "cli.signature.untrusted",
                  {"key_id": signature.key_id})


def _warn_if_unsigned(args: argparse.Namespace, bundle: PDBundle) -> None:
    if args.allow_unsigned:
        _warn(args, "cli.allow_unsigned", bundle=args.bundle, signature=_signature_phrase(bundle.signature))


def _add_trust_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trusted-key", action="append", metavar="FILE",
                   help="public key (PEM) whose bundle signatures are accepted; repeatable "
                        "(default: the files in $CREDITMODEL_TRUSTED_KEYS, separated by the path separator)")
    p.add_argument("--allow-unsigned", action="store_true",
                   help="development only: accept a bundle that is unsigned or signed by an untrusted key")


def _cmd_keys_generate(args: argparse.Namespace) -> None:
    from creditmodel.export.signing import ENV_SIGNING_KEY, ENV_TRUSTED_KEYS, generate_keys

    private, public, kid = generate_keys(args.out)
    print(text("cli.out.keys", _error_lang(args), kid=kid, private=private, public=public, sign_env=ENV_SIGNING_KEY,
               trust_env=ENV_TRUSTED_KEYS))


def _cmd_synth(args: argparse.Namespace) -> None:
    from pydantic import ValidationError

    from creditmodel.config import SyntheticConfig, pydantic_message
    from creditmodel.data.synthetic import generate_world, write_world

    try:
        cfg = SyntheticConfig(enterprises=args.enterprises, seed=args.seed,
                              transaction_density=args.transaction_density,
                              **({"extraction_date": args.extraction_date} if args.extraction_date else {}))
    except ValidationError as exc:
        err = exc.errors()[0]
        flag = "--" + "-".join(str(p) for p in err["loc"]).replace("_", "-")
        raise ConfigError.of("error.cli.flag_value", flag=flag, value=err.get("input"),
                             msg=pydantic_message(err)) from None
    out, lang = Path(args.out), _error_lang(args)
    check_output(out, kind="dir", force=args.force)  # before the world is drawn
    if args.partitioned:
        from creditmodel.data.synthetic import write_world_partitioned

        write_world_partitioned(out, cfg.enterprises, cfg.seed, chunk_enterprises=args.chunk_enterprises,
                                start=str(cfg.start), extraction_date=str(cfg.extraction_date),
                                transaction_density=cfg.transaction_density,
                                progress=lambda done, total: print(f"  block {done}/{total}", flush=True),
                                force=args.force)
        print(text("cli.out.synth_partitioned", lang, out=out, truth=out / "_truth"))
        return
    world = generate_world(cfg.enterprises, cfg.seed, start=str(cfg.start), extraction_date=str(cfg.extraction_date),
                           transaction_density=cfg.transaction_density)
    write_world(world, out, force=args.force)
    for name, frame in world.tables.items():
        print(text("cli.out.synth_table", lang, name=name, rows=len(frame)))
    print(text("cli.out.synth", lang, out=out, truth=out / "_truth"))


def _cmd_run(args: argparse.Namespace) -> None:
    from creditmodel.outputs import tracking_inputs
    from creditmodel.tracking.mlflow_tracking import DEFAULT_STORE

    config = _read_config(args, {
        "data_dir": args.data, "output_dir": args.out, "synthetic.enterprises": args.enterprises,
        "synthetic.seed": args.seed, "seed": args.seed, "data_encoding": args.encoding,
        "data_delimiter": args.delimiter, "extraction_date": args.extraction_date,
        "bundle.signing_key": _signing_key(args.signing_key), "lang": args.lang,
    })
    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_STORE / 'mlflow.db'}"
    check_output(config.output_dir, kind="dir", force=args.force,  # refused at once, before the heavy imports
                 inputs={"--config": args.config, "--data": config.data_dir, **tracking_inputs(uri)})
    from creditmodel.pipeline import run_pipeline

    result = run_pipeline(config, tracking_uri=args.tracking_uri, progress=lambda m: print(m, flush=True),
                          force=args.force, inputs={"--config": args.config})  # refuses an unsafe --out first
    print(run_summary(result, config))


def run_summary(result, config) -> str:
    """The closing summary of `creditmodel run` in the configuration's language (`lang`, --lang)."""
    from creditmodel.texts import text

    lang = config.lang
    m = result.metrics.set_index(["model", "split"])
    lines = ["", text("run.oot", lang)]
    for model in m.index.get_level_values(0).unique():
        r = m.loc[(model, "oot")]
        lines.append(text("run.model", lang, model=f"{model:16s}", auc=r["auc"], gini=r["gini"], ks=r["ks"],
                          brier=r["brier"], mean_pd=r["mean_pd"], default_rate=r["default_rate"]))
    t = result.tracked
    lines += ["", text("run.mlflow", lang, run_id=t.run_id, experiment=config.experiment, uri=t.tracking_uri),
              text("run.registered", lang, uri=t.model_uri, version=t.model_version),
              text("run.report_dir", lang, path=result.report_dir),
              text("run.validation", lang, path=result.output_dir / "validation_report.html", uri=t.model_uri),
              text("run.bundle", lang, path=result.bundle_dir, note=_signature_note(result.bundle_dir, lang)),
              text("run.priced", lang, path=result.priced_path),
              text("run.features", lang, path=result.features_path), "",
              text("run.mlflow_ui", lang, uri=t.tracking_uri), text("run.lab", lang)]
    return "\n".join(lines)


def _signature_note(bundle_dir: Path, lang: str = DEFAULT_LANG) -> str:
    from creditmodel.export.signing import HOW_TO_SIGN_PHRASE, read_signature_key_id

    kid = read_signature_key_id(bundle_dir)
    return (text("cli.out.signed", lang, key_id=kid) if kid else
            text("cli.out.unsigned", lang, how=HOW_TO_SIGN_PHRASE))


def _cmd_features(args: argparse.Namespace) -> None:
    from creditmodel.data.contracts import ignored_columns, validate_tables
    from creditmodel.data.io import declared_extraction_date, read_tables
    from creditmodel.features.build import build_features

    out, inputs = _frame_out(args.out), {"--data": args.data}
    check_output(out, kind="file", inputs=inputs, force=args.force)
    raw = read_tables(args.data, encoding=args.encoding, delimiter=args.delimiter)
    ignored = ignored_columns(raw)
    if ignored:
        print(text("cli.ignored_columns", _error_lang(args), columns=", ".join(ignored)), file=sys.stderr)
    tables = validate_tables(raw, extraction_date=declared_extraction_date(args.data))
    frame = build_features(tables, threads=args.threads, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    _write_frame(frame, out, command="features", inputs=inputs, force=args.force)
    print(text("cli.out.features", _error_lang(args), rows=len(frame), features=frame.shape[1] - 3, out=args.out))


def _cmd_store_build(args: argparse.Namespace) -> None:
    from creditmodel.data.contracts import validate_tables
    from creditmodel.data.io import declared_extraction_date, read_tables
    from creditmodel.features.online import build_store

    inputs = {"--data": args.data}
    if args.out.startswith(("postgresql://", "postgres://")):
        return _store_build_pg(args)
    check_output(args.out, kind="file", inputs=inputs, force=args.force)
    raw = read_tables(args.data, encoding=args.encoding, delimiter=args.delimiter)
    tables = validate_tables(raw, extraction_date=declared_extraction_date(args.data))
    with Output(args.out, kind="file", command="store build", inputs=inputs, force=args.force,
                label="--out") as output:
        counts = build_store(tables, output.tmp)
    print(text("cli.out.store", _error_lang(args), n=len(counts), counts=listed([f"{k} {v:,}" for k, v in counts.items()]),
               out=args.out))


def _store_build_pg(args: argparse.Namespace) -> None:
    """store build --out postgresql://…: the same tables loaded into a PostgreSQL schema, in one transaction."""
    from creditmodel.data.contracts import validate_tables
    from creditmodel.data.io import declared_extraction_date, read_tables
    from creditmodel.features.online_pg import build_store_pg, parse_pg_store

    shown = parse_pg_store(args.out)[2]  # a bad schema name is refused before any work
    raw = read_tables(args.data, encoding=args.encoding, delimiter=args.delimiter)
    tables = validate_tables(raw, extraction_date=declared_extraction_date(args.data))
    counts = build_store_pg(tables, args.out, force=args.force)
    print(text("cli.out.store", _error_lang(args), n=len(counts), counts=listed([f"{k} {v:,}" for k, v in counts.items()]),
               out=shown))


def _cmd_export(args: argparse.Namespace) -> None:
    from creditmodel.export.from_registry import export_model
    from creditmodel.tracking.mlflow_tracking import default_tracking_uri

    uri = args.model_uri or (f"runs:/{args.run_id}/model" if args.run_id else f"models:/{args.model}@{args.alias}")
    result = export_model(uri, Path(args.out), tracking_uri=args.tracking_uri or default_tracking_uri(), onnx=args.onnx,
                          force=args.force, signing_key=_signing_key(args.signing_key), compiled=args.compile)
    out, lang = Path(args.out), _error_lang(args)
    files = listed(sorted(p.name for p in out.iterdir()))
    ref = result["model"]
    print(text("cli.out.exported_version" if ref.name else "cli.out.exported", lang, uri=uri, name=ref.name,
               version=ref.version, run_id=ref.run_id, out=out, files=files))
    par = result["parity"]
    print(text("cli.out.export_parity", lang, rows=par["rows"], diff=par["max_abs_pd_diff"],
               agree=par["grade_agreement"]))
    print(_signature_note(out, lang))
    if "compiled" in result:
        c = result["compiled"]
        print(text("cli.out.export_compiled", lang, cpu=c["cpu"], rows=c["parity"]["rows"],
                   diff=c["parity"]["max_abs_pd_diff"]))
    if "onnx_drift" in result:
        d = result["onnx_drift"]
        print(text("cli.out.export_onnx", lang, diff=d["max_abs_pd_diff"], agree=d["grade_agreement"]))


def _read_frame(path: Path) -> pd.DataFrame:
    import pandas as pd

    from creditmodel.exceptions import DataContractError

    if path.is_dir():
        raise DataContractError.of("error.cli.input_is_dir", path=path)
    if not path.is_file():
        raise DataContractError.of("error.cli.input_missing", path=path)
    if path.suffix not in (".parquet", ".csv"):
        raise DataContractError.of("error.cli.input_suffix", path=path)
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow and the CSV parser raise many types for a bad file
        raise DataContractError.of("error.cli.input_unreadable", path=path, kind=path.suffix[1:],
                                   error=type(exc).__name__, detail=first_line(exc)) from None


def _frame_out(out: str) -> Path:
    path = Path(out)
    if path.suffix not in (".csv", ".parquet"):
        raise ConfigError.of("error.cli.out_frame", out=out)
    return path


def _write_frame(frame: pd.DataFrame, out: Path, *, command: str, inputs: dict, force: bool) -> None:
    """Write `frame` as .csv or .parquet all at once, replacing only an earlier output of creditmodel."""
    with Output(out, kind="file", command=command, inputs=inputs, force=force) as output:
        if out.suffix == ".csv":
            frame.to_csv(output.tmp, index=False)
        else:
            frame.to_parquet(output.tmp, index=False)


def _cmd_bundle_compile(args: argparse.Namespace) -> None:
    from creditmodel.export.compiled import COMPILED_FILE, compile_bundle

    frame = _read_frame(Path(args.parity_rows)) if args.parity_rows else None
    info = compile_bundle(args.bundle, args.out, signing_key=_signing_key(args.signing_key),
                          portable=args.portable, parity_frame=frame, force=args.force, **_trust(args))
    par, lang = info["parity"], _error_lang(args)
    print(text("cli.out.bundle_compiled", lang, bundle=args.bundle, cpu=info["cpu"], triple=info["triple"],
               out=args.out or args.bundle, file=COMPILED_FILE, rows=par["rows"], diff=par["max_abs_pd_diff"],
               note=_signature_note(Path(args.out or args.bundle), lang)))


def _amounts(value: str | None) -> list[float] | None:
    """--amounts "500000,6000000" as exposures (the data dictionary's currency); a value that is not a positive
    number: one line."""
    if not value:
        return None
    out = []
    for item in value.split(","):
        try:
            amount = float(item.strip().replace("_", ""))
        except ValueError:
            amount = float("nan")
        if not (amount > 0 and amount < float("inf")):
            raise ConfigError.of("error.cli.amount", value=value, item=item.strip())
        out.append(amount)
    return out


def _cmd_price_grid(args: argparse.Namespace) -> None:
    from creditmodel.pricing.grid import grid_html, rate_grid
    from creditmodel.texts import check_lang, column_heading, text

    out = Path(args.out)
    if out.suffix != ".csv":
        raise ConfigError.of("error.cli.grid_out", out=args.out)
    page = out.with_suffix(".html")
    inputs = {"--bundle": args.bundle, "--config": args.config}
    check_output(out, kind="file", inputs=inputs, force=args.force)
    check_output(page, kind="file", inputs=inputs, force=args.force)
    config = _read_config(args)
    lang = check_lang(args.lang or config.lang)
    dictionary = config.data_dictionary()
    team_vocab = "industry_team" if "industry_team" in dictionary.vocabularies else "industry"
    bundle = _load_bundle(args)
    scale = bundle.master_scale
    only = [t.strip() for t in args.teams.split(",")] if args.teams else None
    grid = rate_grid(list(scale.grades), scale.grade_pds().tolist(), dictionary.vocabulary(team_vocab), config.pricing,
                     only_teams=only, amounts=_amounts(args.amounts), dictionary=dictionary)
    html = grid_html(grid, labels=dictionary.labels.get("guarantee_type", {}),
                     team_labels=dictionary.labels.get(team_vocab, {}), currency=dictionary.currency)
    sheet = grid.rename(columns=lambda c: column_heading(c, lang, dictionary.currency)) if lang != "en" else grid
    with Output(out, kind="file", command="price grid", inputs=inputs, force=args.force) as output:
        sheet.to_csv(output.tmp, index=False)
    with Output(page, kind="file", command="price grid", inputs=inputs, force=args.force) as output:
        output.tmp.write_text(html, encoding="utf-8")
    print(text("grid.summary", lang, n=len(grid), lo=grid["rate"].min(), hi=grid["rate"].max(), out=out, page=page))


def _with_security(bundle, applications, store: str, pricing):
    """The applications with collateral_cover and pd_guarantor from the store: collateral items and guarantors
    (scored by the bundle as of each loan's decision date)."""
    from creditmodel.features.online_pg import open_online
    from creditmodel.pricing.security import loan_security

    if getattr(bundle, "catalogue", None) is None:
        raise ConfigError.of("error.cli.store_no_catalogue", store=store)
    online = open_online(bundle.catalogue, store)
    try:
        security = loan_security(bundle, online, applications, pricing.collateral_haircuts, pd_basis=pricing.pd_basis)
    finally:
        online.close()
    return applications.assign(**{c: security[c].to_numpy() for c in security.columns if c != "loan_id"})


def _cmd_price(args: argparse.Namespace) -> None:
    import math

    if args.action == "grid":
        return _cmd_price_grid(args)
    if not args.applications:
        raise ConfigError.of("error.cli.price_applications")

    from creditmodel.pricing import portfolio_summary, price_with_bundle, with_target_rate
    from creditmodel.texts import check_lang, column_heading, text

    out = _frame_out(args.out)
    inputs = {"--bundle": args.bundle, "--applications": args.applications, "--config": args.config}
    check_output(out, kind="file", inputs=inputs, force=args.force)
    target = args.target_raroc
    if target is not None and not (math.isfinite(target) and -1 < target <= 10):
        raise ConfigError.of("error.cli.target_raroc", target=target)
    config = _read_config(args)
    pricing = config.pricing
    bundle = _load_bundle(args)
    applications = _read_frame(Path(args.applications))
    if "pd_guarantor" in applications.columns:
        raise ConfigError.of("error.cli.pd_guarantor", path=args.applications)
    if args.store:
        applications = _with_security(bundle, applications, args.store, pricing)
    lang = check_lang(args.lang or config.lang)
    dictionary = config.data_dictionary()
    priced = price_with_bundle(bundle, applications, pricing, dictionary, lang=lang)
    if target is not None:
        priced = with_target_rate(priced, target, pricing)
    currency = dictionary.currency
    sheet = priced if lang == "en" else priced.rename(columns=lambda c: column_heading(c, lang, currency))
    _write_frame(sheet, out, command="price", inputs=inputs, force=args.force)
    s = portfolio_summary(priced)
    sep = "；" if lang == "zh" else "; "
    print(text("price.summary", lang, n=s["n_loans"], exposure=s["exposure"], out=out, currency=currency) + "\n"
          + text("price.rates", lang, rate=s["rate"], risk_covering=s["risk_covering_rate"], raroc=s["raroc"],
                 hurdle=pricing.hurdle_rate, eva=s["eva"], currency=currency) + sep
          + text("price.limits", lang, n_floored=s["n_floored"], floor=pricing.min_rate, n_capped=s["n_capped"],
                 cap=pricing.max_rate, n_referral=int(priced["needs_referral"].sum())))


def _cmd_monitor(args: argparse.Namespace) -> None:
    import json
    from datetime import date

    import pandas as pd

    from creditmodel.data.io import load_tables_leaving, resolve_extraction_date
    from creditmodel.monitoring.carried import CARRIED_FILE
    from creditmodel.monitoring.report import REPORT_NAME, summary_lines, write_report
    from creditmodel.monitoring.run import monitor
    from creditmodel.texts import check_lang

    out = Path(args.out)
    inputs = {"--bundle": args.bundle, "--data": args.data, "--config": args.config, "--previous": args.previous}
    check_output(out, kind="dir", inputs=inputs, force=args.force)
    try:
        as_of = pd.Timestamp(date.fromisoformat(args.as_of))
    except ValueError:
        raise ConfigError.of("error.cli.as_of_date", value=args.as_of) from None
    config = _read_config(args)
    bundle = _load_bundle(args)
    dictionary = config.data_dictionary()  # read once: the file is parsed at every call
    bundle.check_currency(dictionary, "monitor")  # before the data is read
    extraction = resolve_extraction_date(config.extraction_date, args.data)
    # transactions stored as parquet stay in their files: DuckDB reads them where monitoring needs them
    tables = load_tables_leaving(args.data, ("transactions",), encoding=config.data_encoding,
                                 delimiter=config.data_delimiter, dictionary=dictionary,
                                 extraction_date=extraction)
    lang = check_lang(args.lang or config.lang)
    target = _monitoring_target(args, bundle)  # the tracking store is checked before any work
    result = monitor(bundle, tables, as_of, config, scoring_log=args.scoring_log, previous=args.previous)
    with Output(out, kind="dir", command="monitor", inputs=inputs, force=args.force) as output:
        for name, frame in result.frames.items():
            frame.to_parquet(output.tmp / f"{name}.parquet", index=False)
        if result.carried is not None:  # the ratings at origination the next date starts from (--previous)
            files, meta = result.carried
            for file, frame in files.items():
                frame.to_parquet(output.tmp / file, index=False)
            (output.tmp / CARRIED_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        write_report(result, output.tmp / REPORT_NAME, lang, dictionary, bundle_label=str(args.bundle))
        result.frames["watch_list"].to_csv(output.tmp / "watch_list.csv", index=False, encoding="utf-8-sig")
        (output.tmp / "summary.json").write_text(json.dumps(result.summary, indent=2, ensure_ascii=False) + "\n",
                                                 encoding="utf-8")
    s = result.summary
    print(summary_lines(s, out, lang, dictionary))
    if target is not None:
        from creditmodel.monitoring.mlflow_metrics import log_monitoring, metrics_of

        try:
            run_id = log_monitoring(target, s, [out / REPORT_NAME, out / "summary.json"])
        except Exception as exc:  # noqa: BLE001 - the outputs are complete; say what is missing, in one line
            raise ConfigError.of("error.cli.monitor_not_logged", uri=target.tracking_uri, as_of=s["as_of"],
                                 detail=first_line(exc)[:200], out=out) from None
        print(text("cli.out.monitor_logged", lang, n=len(metrics_of(s)), step=s["as_of"].replace("-", ""),
                   run_id=run_id, uri=target.tracking_uri))


def _monitoring_target(args: argparse.Namespace, bundle: PDBundle) -> MonitoringTarget | None:
    """Where `monitor` logs its figures (None: nowhere): --tracking-uri or --mlflow ask for it, a bundle
    exported from the registry implies it; --no-mlflow turns it off."""
    from creditmodel.monitoring.mlflow_metrics import registry_provenance, resolve_target
    from creditmodel.monitoring.run import model_id
    from creditmodel.tracking.mlflow_tracking import default_tracking_uri

    want = args.mlflow
    if want is None:
        want = bool(args.tracking_uri) or registry_provenance(bundle) is not None
    if not want:
        return None
    return resolve_target(bundle, args.tracking_uri or default_tracking_uri(), model_id(bundle))


def _cmd_data_check(args: argparse.Namespace) -> None:
    from creditmodel.data.contracts import ignored_columns, validate_tables
    from creditmodel.data.io import read_tables, resolve_extraction_date
    from creditmodel.data.policy import policy_flags, referral_summary
    from creditmodel.data.profile import profile
    from creditmodel.features.labels import label_columns, make_labels
    from creditmodel.pipeline import carry_label_columns

    config = _read_config(args, {"data_encoding": args.encoding, "data_delimiter": args.delimiter,
                                       "extraction_date": args.extraction_date})
    dictionary, lang = config.data_dictionary(), _error_lang(args)
    raw = read_tables(args.dir, encoding=config.data_encoding, delimiter=config.data_delimiter)
    extraction = resolve_extraction_date(config.extraction_date, args.dir)
    outcome = {f"loans.{c}" for c in label_columns(config.label.kind, config.label.column)}
    ignored = [c for c in ignored_columns(raw, dictionary) if c not in outcome]
    if ignored:
        print(text("cli.ignored_columns", lang, columns=", ".join(ignored)))
    tables = validate_tables(raw, dictionary=dictionary, extraction_date=extraction)  # every failure at once
    label = config.label
    tables = carry_label_columns(raw, tables, config)  # the bank's default flag or date column, if configured
    labels = make_labels(tables, extraction, kind=label.kind, window_months=label.window_months,
                         dpd_threshold=label.dpd_threshold, column=label.column).rename(label.describe()["en"])
    print(text("cli.out.extraction", lang, date=extraction.date(), source=dictionary.source_phrase()))
    print(profile(tables, labels))
    referrals = referral_summary(policy_flags(tables["loans"], dictionary, enterprises=tables.get("enterprises")))
    rules = [f"{k} {v}" for k, v in referrals.items() if k != "all"]
    print(text("cli.out.policy_rules" if rules else "cli.out.policy", lang, n=referrals["all"],
               total=len(tables["loans"]), rules=listed(rules) if rules else ""))
    print(text("cli.out.contracts_passed", lang))


def _cmd_data_dictionary(args: argparse.Namespace) -> None:
    from creditmodel.data.dictionary import write_default_dictionary

    out = write_default_dictionary(args.out)
    print(text("cli.out.dictionary", _error_lang(args), out=out))


def _cmd_data_adapt(args: argparse.Namespace) -> None:
    from creditmodel.data.adapters.taiwan import write_taiwan

    out = Path(args.out)
    if Path(args.csv).is_dir():
        raise ConfigError.of("error.cli.csv_is_dir", path=args.csv)
    check_output(out, kind="dir", inputs={"--csv": args.csv}, force=args.force)
    if not Path(args.csv).is_file():
        raise ConfigError.of("error.cli.csv_missing", path=args.csv)
    write_taiwan(args.csv, out, force=args.force)
    print(text("cli.out.adapted", _error_lang(args), out=out))


def _cmd_data_map(args: argparse.Namespace) -> None:
    from creditmodel.data.mapping import write_mapped

    out, counts = write_mapped(args.mapping, args.out, force=args.force)
    rows = listed([f"{name} {n:,}" for name, n in counts.items()])
    print(text("cli.out.mapped", _error_lang(args), out=out, rows=rows))


def _cmd_register(args: argparse.Namespace) -> None:
    from creditmodel.tracking.mlflow_tracking import default_tracking_uri
    from creditmodel.tracking.registry import register

    version = register(args.tracking_uri or default_tracking_uri(), args.run_id, args.model, args.alias,
                       by=args.by, reason=args.reason)
    print(text("cli.out.registered", _error_lang(args), run_id=args.run_id, model=args.model, version=version,
               alias=args.alias))


def _cmd_runs_cleanup(args: argparse.Namespace) -> None:
    from creditmodel.tracking.mlflow_tracking import cleanup_stale_runs, default_tracking_uri

    uri = args.tracking_uri or default_tracking_uri()
    cleaned = cleanup_stale_runs(uri, args.experiment)
    print(text("cli.out.cleaned_runs" if cleaned else "cli.out.cleaned", _error_lang(args), n=len(cleaned),
               experiment=args.experiment, runs=listed(cleaned) if cleaned else ""))


def _cmd_promote(args: argparse.Namespace) -> None:
    from creditmodel.tracking.mlflow_tracking import default_tracking_uri
    from creditmodel.tracking.registry import promote

    version = promote(args.tracking_uri or default_tracking_uri(), args.model, from_alias=args.from_alias,
                      to_alias=args.to_alias, by=args.by, reason=args.reason, force=args.force)
    print(text("cli.out.promoted", _error_lang(args), model=args.model, to_alias=args.to_alias, version=version,
               from_alias=args.from_alias))


def _cmd_compare(args: argparse.Namespace) -> None:
    import pandas as pd

    from creditmodel.tracking.mlflow_tracking import default_tracking_uri
    from creditmodel.tracking.registry import compare_runs

    metrics, params = compare_runs(args.tracking_uri or default_tracking_uri(), args.run_a, args.run_b)
    keys = [k for k in metrics.index if args.all or k.endswith((".auc", ".gini", ".ks", ".brier", ".mean_pd"))
            or "." not in k.split(".", 1)[-1]]
    with pd.option_context("display.width", 160, "display.max_rows", 500, "display.float_format", "{:.4f}".format):
        print(metrics.loc[keys].to_string())
        print("\n" + text("cli.out.params_differ" if len(params) else "cli.out.params_same", _error_lang(args)))
        if len(params):
            print(params.to_string())


def _server_stack(args: argparse.Namespace) -> dict[str, str]:
    """uvicorn's http and loop options from --http/--loop; one line when the one asked for is not installed
    (httptools and uvloop cost a request a fraction of h11's and asyncio's CPU time: benchmarks/bench_service.py)."""
    import importlib.util

    for option, module in (("http", "httptools"), ("loop", "uvloop")):
        if getattr(args, option) == module and importlib.util.find_spec(module) is None:
            raise ConfigError.of("error.cli.not_installed", option=option, module=module)
    return {"http": args.http, "loop": args.loop}


def _cmd_serve(args: argparse.Namespace) -> None:
    import ssl


    if args.workers < 1:
        raise ConfigError.of("error.cli.at_least_one", flag="--workers", value=args.workers)
    for name in ("max_body_mb", "body_timeout"):
        value = getattr(args, name)
        if not (value > 0 and value < 1e9):
            raise ConfigError.of("error.cli.positive", flag="--" + name.replace("_", "-"), value=value)
    if args.max_large_requests < 1:
        raise ConfigError.of("error.cli.at_least_one", flag="--max-large-requests", value=args.max_large_requests)
    config = _read_config(args)
    pricing = config.pricing
    dictionary = config.data_dictionary()  # the bank's policy rules flag what the service scores and prices

    from creditmodel.export.bundle import load_bundle
    from creditmodel.service.app import RequestLog, create_app, listening_socket, load_api_keys, model_id, serve
    from creditmodel.service.workers import WorkerSpec, make_run_dir, pin_bundle, remove_run_dir

    keys = load_api_keys(args.api_key_file, os.environ.get("CREDITMODEL_API_KEYS"))
    tls = {k: getattr(args, k) for k in ("ssl_certfile", "ssl_keyfile", "ssl_ca_certs") if getattr(args, k)}
    if tls and "ssl_certfile" not in tls:
        raise ConfigError.of("error.cli.ssl_certfile")
    if tls:
        try:  # the same context uvicorn will build, so a bad certificate is one line here
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=tls.get("ssl_ca_certs"))
            context.load_cert_chain(tls["ssl_certfile"], tls.get("ssl_keyfile"))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError.of("error.cli.ssl", detail=str(exc)) from None
        if "ssl_ca_certs" in tls:
            tls["ssl_cert_reqs"] = ssl.CERT_REQUIRED  # mutual TLS: clients must show a certificate of this CA
    run_dir = make_run_dir()
    sock = None
    try:
        pinned = pin_bundle(args.bundle, run_dir)  # the bundle's bytes, copied once, read-only
        load_options = _trust(args)
        bundle = load_bundle(pinned, **load_options)  # verified once, on the copy every worker loads
        _warn_if_unsigned(args, bundle)
        request_log = RequestLog(args.request_log) if args.request_log else None
        scoring_log = None
        if args.scoring_log:
            from creditmodel.service.scoring_log import ScoringLog

            scoring_log = ScoringLog(args.scoring_log)
            scoring_log.check()  # a bad directory is one line at start-up; later failures are reported by /health
        app_options = dict(max_body_bytes=int(args.max_body_mb * 2**20), body_timeout=args.body_timeout,
                           max_large_requests=args.max_large_requests, api_keys=keys,
                           training_range=args.training_range, store=args.store, scoring_log=scoring_log,
                           dictionary=dictionary)
        # builds the request schema and proves the fast path's parity before any socket opens
        app = create_app(bundle, pricing, request_log=request_log, load_options=load_options, **app_options)
        sock = listening_socket(args.host, args.port)
        spec = WorkerSpec(run_dir=str(run_dir), bundle_dir=str(pinned), workers=args.workers, model=model_id(bundle),
                          pricing=pricing, load_options=load_options,
                          app_options={**app_options, "request_log": request_log},
                          uvicorn_options=dict(log_level=args.log_level, access_log=args.access_log,
                                               timeout_keep_alive=30, **_server_stack(args), **tls))
        scheme = "https" if tls else "http"

        def ready() -> None:
            trees = Phrase("cli.out.serving_trees") if getattr(bundle, "compiled", None) is not None else ""
            print(text("cli.out.serving", _error_lang(args), model=model_id(bundle), n=len(bundle.schema.names),
                       trees=trees, url=f"{scheme}://{args.host}:{args.port}", workers=args.workers,
                       keys=Phrase("cli.out.serving_keys") if keys else "",
                       certs=Phrase("cli.out.serving_certs") if "ssl_ca_certs" in tls else ""), flush=True)

        serve(app if args.workers == 1 else None, spec, sock, on_ready=ready)
    finally:
        if sock is not None:
            sock.close()
        remove_run_dir(run_dir)


def _cmd_score(args: argparse.Namespace) -> None:
    from creditmodel.service.batch import score_parquet

    if (args.input is None) == (args.store is None):
        raise ConfigError.of("error.cli.score_source")
    if args.lang is not None and not args.reasons:
        raise ConfigError.of("error.cli.score_lang", lang=args.lang)
    if args.store is not None:
        return _cmd_score_as_of(args)
    if args.as_of is not None or args.enterprises is not None:
        raise ConfigError.of("error.cli.score_store_only")
    check_output(args.out, kind="file", inputs={"--input": args.input, "--bundle": args.bundle}, force=args.force)
    bundle = _load_bundle(args)
    keep = None if args.keep is None else [c.strip() for c in args.keep.split(",") if c.strip()]
    progress = (lambda done, total: print(f"  {done:,}/{total:,} rows", file=sys.stderr, flush=True)) if args.verbose else None
    stats = score_parquet(bundle, args.input, args.out, batch_size=args.batch_size, reasons=args.reasons, keep=keep,
                          num_threads=args.threads, progress=progress, force=args.force, lang=args.lang or "en")
    print(text("cli.out.scored", _error_lang(args), rows=stats["rows"], out=stats["out"], seconds=stats["seconds"],
               speed=stats["rows_per_s"], reasons=Phrase("cli.out.with_reasons") if args.reasons else "",
               trees=Phrase("cli.out.compiled_trees") if getattr(bundle, "compiled", None) is not None else ""))


def _cmd_score_as_of(args: argparse.Namespace) -> None:
    """Every listed (default: every active) borrower rated as of a date from the store, in one query."""
    import time

    from creditmodel.exceptions import BundleError
    from creditmodel.features.asof import read_enterprises
    from creditmodel.features.online import parse_store
    from creditmodel.features.online_pg import is_postgres, open_as_of
    from creditmodel.service.asof import score_as_of

    if args.as_of is None:
        raise ConfigError.of("error.cli.score_as_of_needed")
    if args.keep is not None:
        raise ConfigError.of("error.cli.score_keep")
    out = _frame_out(args.out)
    store = args.store if is_postgres(args.store) else parse_store(args.store)
    inputs = {"--bundle": args.bundle, **({} if is_postgres(args.store) else {"--store": store}),
              **({"--enterprises": args.enterprises} if args.enterprises else {})}
    check_output(out, kind="file", inputs=inputs, force=args.force)
    bundle = _load_bundle(args)
    if bundle.catalogue is None:
        raise BundleError.of("error.service.no_catalogue", path=bundle.path)
    listed = read_enterprises(args.enterprises) if args.enterprises else None
    features = open_as_of(bundle.catalogue, store, memory_limit=args.memory_limit)
    try:
        as_of = features.check_date(args.as_of)
        started = time.perf_counter()
        rated = score_as_of(bundle, features, as_of, listed, reasons=args.reasons, lang=args.lang or "en")
    finally:
        features.close()
    _write_frame(rated, out, command="score", inputs=inputs, force=args.force)
    print(text("cli.out.rated", _error_lang(args), n=len(rated), as_of=as_of, out=out,
               seconds=time.perf_counter() - started, new=int(rated["new_to_bank"].sum()),
               reasons=Phrase("cli.out.with_reasons") if args.reasons else ""))


def _cmd_report(args: argparse.Namespace) -> None:
    from creditmodel.texts import check_lang
    from creditmodel.tracking.mlflow_tracking import default_tracking_uri
    from creditmodel.validation.report import ReportTexts, build_report

    run_config = _read_config(args) if args.config else None
    config = run_config.validation if run_config is not None else None
    lang = check_lang(args.lang or (run_config.lang if run_config is not None else None))
    out = Path(args.out)
    if args.screenshot:
        from creditmodel.validation.browser import find_chromium

        if find_chromium() is None:
            raise ConfigError.of("error.cli.chromium")
        check_output(args.screenshot, kind="file", inputs={"--out": out}, force=args.force, label="--screenshot")
    results = build_report(args.model_uri, out, tracking_uri=args.tracking_uri or default_tracking_uri(),
                           config=config, compare=args.compare, log=not args.no_log, force=args.force, lang=lang,
                           dictionary=run_config.data_dictionary() if run_config is not None else None)
    words = ReportTexts(lang)  # the report's own words for statuses, sections, tests and scopes
    for r in results:
        c = r.counts()
        print(text("cli.out.evidence", lang, label=r.evidence.label, status=words.status(r.status), green=c["green"],
                   amber=c["amber"], red=c["red"], auc=r.metrics["oot_auc"]))
        for s in r.sections:
            reds = [text("cli.out.red_test", lang, test=words.test(f.test), scope=words.scope(f.scope))
                    for f in s.findings if f.status == "red"]
            if reds:  # in English the suite's own title, which names the leakage guard in both languages
                print(text("cli.out.red_in", lang, section=s.title if lang == "en" else words.section(s.key, s.title),
                           tests=text("cli.out.red_sep", lang).join(reds)))
    print(text("cli.out.report_written" if args.no_log else "cli.out.report_logged", lang, out=out,
               run_id=results[0].evidence.run_id, status=results[0].status))
    if args.screenshot:
        from creditmodel.validation.browser import open_in_browser

        with Output(args.screenshot, kind="file", command="report", inputs={"--out": out}, force=args.force,
                    label="--screenshot") as shot:
            seen = open_in_browser(out, screenshot=shot.tmp)
        print(text("cli.out.opened", lang, figures=seen["images"], errors=len(seen["console_errors"]),
                   shot=args.screenshot))


FORCE_HELP = ("replace an earlier output of creditmodel even if files in it were changed since "
              "(files creditmodel did not write are never replaced)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="creditmodel", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log library progress")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="generate the synthetic SME world as canonical parquet tables")
    p.add_argument("--out", required=True, help="directory to create (absent, empty or an earlier output of creditmodel)")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
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

    signing_help = ("Ed25519 private key (PEM) that signs the bundle (default $CREDITMODEL_SIGNING_KEY, "
                    "then [bundle] signing_key of the config; none: the bundle is unsigned)")
    p = sub.add_parser("run", help="the main job: features, models, MLflow, SHAP, bundle, pricing")
    p.add_argument("--config", help="TOML run configuration (all fields optional)")
    p.add_argument("--data", help="directory or DuckDB file of canonical tables (default: synthetic world)")
    p.add_argument("--out", help="output directory (default data/demo), replaced only when the run succeeds and "
                                 "only if creditmodel wrote it")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--enterprises", type=_positive_int, help="size of the synthetic world")
    p.add_argument("--seed", type=_positive_int, help="seed of the synthetic world and of training")
    p.add_argument("--encoding", help="encoding of CSV tables, e.g. gbk (default utf-8)")
    p.add_argument("--delimiter", help="CSV delimiter (default ,)")
    p.add_argument("--extraction-date", help="as-of date of the data, YYYY-MM-DD (default: the configuration's, "
                                             "else the data's _dataset.json)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default $MLFLOW_TRACKING_URI or mlruns/mlflow.db)")
    p.add_argument("--signing-key", metavar="FILE", help=signing_help)
    p.add_argument("--lang", choices=("en", "zh"), help="language of the summary, the validation report and the "
                                                        "price sheet (default: the configuration's lang, else en)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("features", help="build as-of features for every loan of a data directory")
    p.add_argument("--data", required=True, help="directory or DuckDB file of canonical tables")
    p.add_argument("--out", required=True, help="output .parquet or .csv")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--encoding", default="utf-8", help="CSV encoding, e.g. gbk (default utf-8)")
    p.add_argument("--delimiter", default=",", help="CSV delimiter (default ,)")
    p.add_argument("--threads", type=_positive_int, default=1,
                   help="DuckDB threads (default 1: bit-stable sums; more is faster)")
    p.set_defaults(func=_cmd_features)

    p = sub.add_parser("export", help="write a verified bundle of a tracked model for pricing and scoring services")
    p.add_argument("model_uri", nargs="?", help="models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN_ID/model "
                                                "(default models:/sme_pd@challenger)")
    p.add_argument("--out", required=True, help="directory to write the bundle to (absent, empty or an earlier "
                                                "output of creditmodel)")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--onnx", action="store_true", help="also write model.onnx and measure its float32 drift")
    p.add_argument("--compile", action="store_true",
                   help="also write model_compiled.o, the trees as native code for faster scoring (needs lleaves and "
                        "--signing-key; see `creditmodel bundle compile`)")
    p.add_argument("--model", default="sme_pd", help="registered model name when no MODEL_URI (default sme_pd)")
    p.add_argument("--alias", default="challenger", help="model alias when no MODEL_URI (default challenger)")
    p.add_argument("--run-id", help="take the model of this run when no MODEL_URI")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default $MLFLOW_TRACKING_URI or mlruns/mlflow.db)")
    p.add_argument("--signing-key", metavar="FILE", help="Ed25519 private key (PEM) that signs the bundle "
                                                         "(default $CREDITMODEL_SIGNING_KEY; none: unsigned)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("price", help="score applications with an export bundle alone and price them; "
                                     "`price grid`: the published rate grid")
    p.add_argument("action", nargs="?", choices=("grid",), help="grid: the rate grid by grade x guarantee type x "
                                                                "industry team (CSV --out and a heatmap .html beside it)")
    p.add_argument("--bundle", required=True, help="export bundle directory")
    p.add_argument("--teams", help="grid: only these industry teams (comma-separated)")
    p.add_argument("--amounts", help="grid: an amount dimension, exposures in the data dictionary's currency "
                                     "(comma-separated, e.g. 500000,6000000); cells above the approval authority are "
                                     "flagged for referral")
    p.add_argument("--applications", "--features", dest="applications",
                   help="rows (.parquet/.csv) with loan_id, the bundle's features and the loan terms: guarantee_type, "
                        "ead or amount/loan_amount, maturity_years or term_months, optional annual_sales (amounts in the data "
                        "dictionary's currency)")
    p.add_argument("--out", required=True, help="priced output (.csv or .parquet), written only when all rows price")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--config", help="TOML configuration whose [pricing] table sets costs, LGDs, capital, floor/cap "
                                    "and whose data dictionary sets the policy rules (needs_referral)")
    p.add_argument("--store", help="a store (`creditmodel store build`) to take each loan's security from: its "
                                   "collateral items and guarantors (guarantor_id column, else the store's "
                                   "guarantees), the guarantors scored by the bundle as of the loan's decision date")
    p.add_argument("--target-raroc", type=float, metavar="X",
                   help="also give each loan the rate that earns RAROC X (e.g. 0.15), column rate_for_target_raroc")
    p.add_argument("--lang", choices=("en", "zh"), help="language of the summary and the price sheet's headings "
                                                        "(zh: Chinese headings; en: the column ids); default: "
                                                        "the configuration's lang")
    _add_trust_options(p)
    p.set_defaults(func=_cmd_price)

    p = sub.add_parser("monitor", help="re-rate the open loans as of a date: migration, early warning, NPL and EVA")
    p.add_argument("--bundle", required=True, help="export bundle directory")
    p.add_argument("--data", required=True, help="canonical tables with balances, officers and loan_accounts")
    p.add_argument("--as-of", required=True, help="monitoring date (YYYY-MM-DD); nothing dated later is read")
    p.add_argument("--out", required=True, help="output directory (watch list parquet + CSV, NPL, EVA, migration)")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--config", help="TOML configuration: [monitoring] triggers and NPL tolerance, [pricing] for EVA")
    p.add_argument("--lang", choices=("en", "zh"), help="language of monitoring_report.html (default: the "
                                                        "configuration's lang)")
    p.add_argument("--tracking-uri", help="MLflow store to log the monitored figures to, at step = the as-of date "
                                          "(default with --mlflow: $MLFLOW_TRACKING_URI or mlruns/mlflow.db)")
    p.add_argument("--scoring-log", metavar="DIR", help="the scoring service's log (serve --scoring-log): PSI of the "
                                                       "PDs it answered against the development sample")
    p.add_argument("--previous", metavar="DIR", help="the --out of an earlier monitor run of this bundle on the same "
                                                    "data: its ratings at origination are carried, so only loans "
                                                    "applied for since and the open book are built (same results)")
    p.add_argument("--mlflow", action=argparse.BooleanOptionalAction, default=None,
                   help="log the figures to MLflow (the default for a bundle exported from the registry, or with "
                        "--tracking-uri); --no-mlflow never logs")
    _add_trust_options(p)
    p.set_defaults(func=_cmd_monitor)

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
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--compare", metavar="OTHER_URI", help="a second model to validate and show side by side")
    p.add_argument("--config", help="TOML whose [validation] table sets the thresholds and whose data dictionary's "
                                    "policy rules the report counts")
    p.add_argument("--screenshot", metavar="PNG", help="open the report in headless Chromium and save the summary")
    p.add_argument("--lang", choices=("en", "zh"), help="language of the report (default: the configuration's lang, "
                                                        "else en)")
    p.add_argument("--no-log", action="store_true", help="do not log the report to the run or tag the version")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default $MLFLOW_TRACKING_URI or mlruns/mlflow.db)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("store", help="the store the service computes features from at decision time")
    store_sub = p.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    c = store_sub.add_parser("build", help="load canonical tables into a DuckDB file or a PostgreSQL database for "
                                           "per-borrower lookups")
    c.add_argument("--data", required=True, help="directory or DuckDB file of canonical tables")
    c.add_argument("--out", required=True, help="the DuckDB file to write (e.g. store.duckdb), or a PostgreSQL "
                                                "database: postgresql://user@host:port/db[?schema=NAME] (default "
                                                "schema creditmodel; --force replaces a store creditmodel wrote there)")
    c.add_argument("--force", action="store_true", help=FORCE_HELP)
    c.add_argument("--encoding", default="utf-8", help="CSV encoding, e.g. gbk (default utf-8)")
    c.add_argument("--delimiter", default=",", help="CSV delimiter (default ,)")
    c.set_defaults(func=_cmd_store_build)

    p = sub.add_parser("data", help="work with a directory of canonical tables")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    c = data_sub.add_parser("check", help="validate every table against its contract and print a profile")
    c.add_argument("dir", help="directory of .parquet/.csv tables, or a DuckDB file")
    c.add_argument("--encoding", default=None, help="CSV encoding, e.g. gbk (default utf-8)")
    c.add_argument("--delimiter", default=None, help="CSV delimiter (default ,)")
    c.add_argument("--config", help="run configuration (TOML): label definition, data dictionary, extraction date")
    c.add_argument("--extraction-date", help="as-of date of the data, YYYY-MM-DD (default: the configuration's, "
                                             "else the data's _dataset.json)")
    c.set_defaults(func=_cmd_data_check)
    dd = data_sub.add_parser("dictionary", help="write the default data dictionary (TOML) for a bank to edit")
    dd.add_argument("--out", required=True, help="the .toml file to create (an existing file is refused)")
    dd.set_defaults(func=_cmd_data_dictionary)
    a = data_sub.add_parser("adapt", help="map a public data set into canonical tables")
    a.add_argument("dataset", choices=["taiwan"], help="taiwan: UCI credit-card clients (Yeh & Lien 2009)")
    a.add_argument("--csv", required=True, help="path of the data set's CSV file")
    a.add_argument("--out", required=True, help="directory to create (absent, empty or an earlier output of creditmodel)")
    a.add_argument("--force", action="store_true", help=FORCE_HELP)
    a.set_defaults(func=_cmd_data_adapt)
    m = data_sub.add_parser("map", help="map a bank's extracts (CSV, Excel, Parquet, SQL) to canonical tables")
    m.add_argument("--mapping", required=True, help="mapping file (TOML); relative source paths resolve against it")
    m.add_argument("--out", required=True, help="directory to create (absent, empty or an earlier output of creditmodel)")
    m.add_argument("--force", action="store_true", help=FORCE_HELP)
    m.set_defaults(func=_cmd_data_map)
    p = sub.add_parser("serve", help="serve PDs, grades, reason codes and prices over HTTP from an export bundle")
    p.add_argument("--bundle", required=True, help="export bundle directory (verified at start-up)")
    p.add_argument("--store", help="feature store for /v1/applications/*: duckdb:///path or a DuckDB file "
                                   "(see `creditmodel store build`); checked against the bundle's catalogue at start-up")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1, loopback only)")
    p.add_argument("--port", type=_positive_int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--config", help="TOML configuration whose [pricing] table sets costs, LGDs, capital, floor/cap, "
                                    "and whose data dictionary's policy rules flag referrals")
    p.add_argument("--workers", type=_positive_int, default=1, help="uvicorn worker processes (default 1)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn log level (default info)")
    p.add_argument("--access-log", action="store_true",
                   help="uvicorn's access log (it shows client addresses; --request-log shows ids only)")
    p.add_argument("--http", default="auto", choices=["auto", "httptools", "h11"],
                   help="HTTP/1.1 parser (default auto: httptools, a C parser, when installed, else h11 in Python)")
    p.add_argument("--loop", default="auto", choices=["auto", "uvloop", "asyncio"],
                   help="event loop (default auto: uvloop, on libuv, when installed, else asyncio's own)")
    p.add_argument("--request-log", metavar="FILE",
                   help="append one JSON line per request (time, path, status, latency, model, application ids; "
                        "never feature values) to FILE, '-' for stderr")
    p.add_argument("--scoring-log", metavar="DIR",
                   help="append every scored application (model id, time, features, PD, grade) to rotated JSONL "
                        "parts under DIR, for `creditmodel monitor --scoring-log`; never blocks or fails a request "
                        "(/health shows the log's state)")
    p.add_argument("--api-key-file", metavar="FILE",
                   help="require an API key on /v1/* (Authorization: Bearer KEY or X-API-Key: KEY): one key a line; "
                        "$CREDITMODEL_API_KEYS (comma-separated) adds keys; /health stays open")
    p.add_argument("--ssl-certfile", metavar="PEM", help="serve HTTPS with this certificate (chain)")
    p.add_argument("--ssl-keyfile", metavar="PEM", help="the certificate's private key")
    p.add_argument("--ssl-ca-certs", metavar="PEM", help="mutual TLS: require client certificates issued by this CA")
    p.add_argument("--max-body-mb", type=float, default=64.0, help="largest request body in MiB (default 64)")
    p.add_argument("--body-timeout", type=float, default=30.0,
                   help="seconds to receive a whole request body before answering 408 (default 30)")
    p.add_argument("--max-large-requests", type=_positive_int, default=2,
                   help="large bodies (over 256 KiB) in flight per worker; more get 503 + Retry-After (default 2)")
    p.add_argument("--training-range", choices=["flag", "refuse"],
                   help="values outside the training range: flag them in the response or refuse with 422 "
                        "(default: the bundle's policy, else flag)")
    _add_trust_options(p)
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("score", help="score a parquet file of feature rows in chunks from an export bundle, or "
                                     "rate borrowers as of a date from a feature store (--store --as-of)")
    p.add_argument("--bundle", required=True, help="export bundle directory")
    p.add_argument("--input", help="parquet file or directory of parquet parts with the bundle's features")
    p.add_argument("--store", help="instead of --input: a feature store (duckdb:///path or a DuckDB file) to compute "
                                   "the bundle's features from, as of --as-of, for every borrower in one query")
    p.add_argument("--as-of", help="with --store: the date (YYYY-MM-DD) to rate as of; rows dated on or after it are "
                                   "not read")
    p.add_argument("--enterprises", help="with --store: .csv or .parquet of enterprise_id (optionally amount, "
                                         "term_months, product, guarantee_type, group_id: the terms to score); "
                                         "default: every enterprise with a loan active on the date, for its "
                                         "latest active loan's terms")
    p.add_argument("--out", required=True, help="output .parquet (with --store also .csv), written only when every "
                                                "row scored")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--reasons", action="store_true", help="add the top-3 reason codes (TreeSHAP; slower)")
    p.add_argument("--lang", choices=("en", "zh"), help="with --reasons: language of the reason codes' texts "
                   "(default en; zh: as the officers read them, with the bundle's labels and currency)")
    p.add_argument("--keep", help="comma-separated input columns to carry over (default: every non-feature column)")
    p.add_argument("--batch-size", type=_positive_int, default=100_000, help="rows per chunk (default 100000)")
    p.add_argument("--threads", type=_positive_int, default=0, help="LightGBM threads (default 0 = all cores)")
    p.add_argument("--memory-limit", type=_memory_limit, help="with --store: what the store's query may hold in "
                   "memory, e.g. 4GB (default: DuckDB's, 80%% of the machine); the rest spills to a temporary directory")
    _add_trust_options(p)
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser("bundle", help="work with an export bundle")
    bundle_sub = p.add_subparsers(dest="bundle_command", required=True, metavar="ACTION")
    c = bundle_sub.add_parser("compile", help="add the trees compiled to native code (faster scoring; lleaves), "
                                              "checked against LightGBM and signed")
    c.add_argument("--bundle", required=True, help="export bundle directory (verified first)")
    c.add_argument("--out", help="write the compiled bundle here instead of replacing --bundle")
    c.add_argument("--signing-key", help="private key (PEM) that signs the compiled bundle (required: native code runs "
                                         "only from a signed bundle); default $CREDITMODEL_SIGNING_KEY")
    c.add_argument("--portable", action="store_true",
                   help="compile for baseline x86-64 instead of this machine's CPU (runs anywhere, slower)")
    c.add_argument("--parity-rows", metavar="FILE",
                   help="parquet or CSV of feature rows to check against LightGBM as well (e.g. the run's "
                        "features.parquet: its out-of-time split)")
    c.add_argument("--force", action="store_true", help=FORCE_HELP)
    _add_trust_options(c)
    c.set_defaults(func=_cmd_bundle_compile)

    p = sub.add_parser("keys", help="Ed25519 keys that sign export bundles and let consumers verify their author")
    keys_sub = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    k = keys_sub.add_parser("generate", help="write a new key pair: private key (0600) and public key, PEM")
    k.add_argument("--out", required=True, help="directory to write the two key files to (never overwritten)")
    k.set_defaults(func=_cmd_keys_generate)
    return parser


def _error_lang(args: argparse.Namespace) -> str:
    """The language of the lines a command prints when it stops: its --lang, else the language of the
    configuration it read (``lang``), else $CREDITMODEL_LANG, else English."""
    lang = getattr(args, "lang", None) or getattr(args, "config_lang", None) or os.environ.get(ENV_LANG)
    return lang if lang in LANGS else DEFAULT_LANG


def main(argv: list[str] | None = None, *, own_process: bool = False) -> int:
    """Run one command; own_process: the process is this command's alone (the `creditmodel` executable), so a
    batch command may set how the process keeps memory (``memory.keep_freed_memory``)."""
    if os.environ.get(ENV_LANG, DEFAULT_LANG) not in LANGS:  # said in English: no language is known yet
        print(text("cli.error", DEFAULT_LANG, msg=text("error.cli.env_lang", DEFAULT_LANG, env=ENV_LANG,
                                                       value=os.environ[ENV_LANG], langs=list(LANGS))),
              file=sys.stderr)
        return EXIT_ERROR
    args = parse_args(build_parser(), argv)
    if own_process and args.func is not _cmd_serve:  # a service gives back what a burst of requests took
        keep_freed_memory()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one-line output, also on errors
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"pyspark(\..*)?")  # noise on import
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except CreditModelError as exc:
        lang = _error_lang(args)
        print(text("cli.error", lang, msg=exc.in_lang(lang) or str(exc)), file=sys.stderr)
        failures = exc.failures_in(lang) if isinstance(exc, DataContractError) else ()
        if len(failures) > 1:  # a data check lists every failure, not only the first
            print(text("cli.failures", lang, n=len(failures)), file=sys.stderr)
            for line in failures:
                print(f"  - {line}", file=sys.stderr)
        return EXIT_ERROR
    except Terminated as exc:
        print(text("cli.terminated", _error_lang(args), signal=exc.signal_name), file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print(text("cli.interrupted", _error_lang(args)), file=sys.stderr)
        return 128 + 2
    return 0


def console() -> int:
    """The `creditmodel` command: `main` in a process of its own, which draws figures into files only."""
    os.environ.setdefault("MPLBACKEND", "Agg")  # no window, no display needed (main() called in a kernel keeps its own)
    return main(own_process=True)


if __name__ == "__main__":
    sys.exit(console())
