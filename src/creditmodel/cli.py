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

from creditmodel.cli_usage import ENV_LANG, EXIT_ERROR, FlagValueError, Parser, argv_lang, help_in, parse_args
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
    p.add_argument("--trusted-key", action="append", metavar="FILE")
    p.add_argument("--allow-unsigned", action="store_true")


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
                                progress=lambda done, total: print(text("progress.cli.block", lang, done=done,
                                                                        total=total), flush=True),
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
    frame = build_features(tables, threads=args.threads, progress=lambda msg: print(msg, file=sys.stderr, flush=True),
                           lang=_error_lang(args))
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
    lang = _error_lang(args)
    progress = (lambda done, total: print(text("progress.cli.rows", lang, done=done, total=total), file=sys.stderr,
                                          flush=True)) if args.verbose else None
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


def _command(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    """A sub-command of `sub`; its help line, like every option's, is the catalogue's (``help_in``)."""
    return sub.add_parser(name, help=name)


def _tables_to_output(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of a command that reads canonical tables (--data, CSV --encoding and --delimiter) into one
    output (--out, --force)."""
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true")
    p.add_argument("--encoding", default="utf-8")
    p.add_argument("--delimiter", default=",")
    return p


def build_parser(lang: str = DEFAULT_LANG) -> argparse.ArgumentParser:
    """The `creditmodel` command's parser, its --help said in `lang` (the texts ``help.*`` of the catalogue)."""
    parser = Parser(prog="creditmodel")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _command(sub, "synth")
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true")
    p.add_argument("--enterprises", type=_positive_int, default=10_000)
    p.add_argument("--seed", type=_positive_int, default=0)
    p.add_argument("--extraction-date")
    p.add_argument("--transaction-density", type=float, default=1.0)
    p.add_argument("--partitioned", action="store_true")
    p.add_argument("--chunk-enterprises", type=_positive_int, default=50_000)
    p.set_defaults(func=_cmd_synth)

    p = _command(sub, "run")
    p.add_argument("--config")
    p.add_argument("--data")
    p.add_argument("--out")
    p.add_argument("--force", action="store_true")
    p.add_argument("--enterprises", type=_positive_int)
    p.add_argument("--seed", type=_positive_int)
    p.add_argument("--encoding")
    p.add_argument("--delimiter")
    p.add_argument("--extraction-date")
    p.add_argument("--tracking-uri")
    p.add_argument("--signing-key", metavar="FILE")
    p.add_argument("--lang", choices=("en", "zh"))
    p.set_defaults(func=_cmd_run)

    p = _tables_to_output(_command(sub, "features"))
    p.add_argument("--threads", type=_positive_int, default=1)
    p.set_defaults(func=_cmd_features)

    p = _command(sub, "export")
    p.add_argument("model_uri", nargs="?")
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true")
    p.add_argument("--onnx", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--model", default="sme_pd")
    p.add_argument("--alias", default="challenger")
    p.add_argument("--run-id")
    p.add_argument("--tracking-uri")
    p.add_argument("--signing-key", metavar="FILE")
    p.set_defaults(func=_cmd_export)

    p = _command(sub, "price")
    p.add_argument("action", nargs="?", choices=("grid",))
    p.add_argument("--bundle", required=True)
    p.add_argument("--teams")
    p.add_argument("--amounts")
    p.add_argument("--applications", "--features", dest="applications")
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true")
    p.add_argument("--config")
    p.add_argument("--store")
    p.add_argument("--target-raroc", type=float, metavar="X")
    p.add_argument("--lang", choices=("en", "zh"))
    _add_trust_options(p)
    p.set_defaults(func=_cmd_price)

    p = _command(sub, "monitor")
    p.add_argument("--bundle", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--as-of", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true")
    p.add_argument("--config")
    p.add_argument("--lang", choices=("en", "zh"))
    p.add_argument("--tracking-uri")
    p.add_argument("--scoring-log", metavar="DIR")
    p.add_argument("--previous", metavar="DIR")
    p.add_argument("--mlflow", action=argparse.BooleanOptionalAction, default=None)
    _add_trust_options(p)
    p.set_defaults(func=_cmd_monitor)

    p = _command(sub, "register")
    p.add_argument("--run-id", required=True)
    p.add_argument("--model", default="sme_pd")
    p.add_argument("--alias", default="challenger")
    p.add_argument("--by")
    p.add_argument("--reason", default="")
    p.add_argument("--tracking-uri")
    p.set_defaults(func=_cmd_register)

    p = _command(sub, "promote")
    p.add_argument("--model", default="sme_pd")
    p.add_argument("--from", dest="from_alias", default="challenger")
    p.add_argument("--to", dest="to_alias", default="champion")
    p.add_argument("--by")
    p.add_argument("--reason", default="")
    p.add_argument("--force", action="store_true")
    p.add_argument("--tracking-uri")
    p.set_defaults(func=_cmd_promote)

    p = _command(sub, "runs")
    runs_sub = p.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    c = _command(runs_sub, "cleanup")
    c.add_argument("--experiment", default="creditmodel")
    c.add_argument("--tracking-uri")
    c.set_defaults(func=_cmd_runs_cleanup)

    p = _command(sub, "compare")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--all", action="store_true")
    p.add_argument("--tracking-uri")
    p.set_defaults(func=_cmd_compare)

    p = _command(sub, "report")
    p.add_argument("model_uri")
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true")
    p.add_argument("--compare", metavar="OTHER_URI")
    p.add_argument("--config")
    p.add_argument("--screenshot", metavar="PNG")
    p.add_argument("--lang", choices=("en", "zh"))
    p.add_argument("--no-log", action="store_true")
    p.add_argument("--tracking-uri")
    p.set_defaults(func=_cmd_report)

    p = _command(sub, "store")
    store_sub = p.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    c = _tables_to_output(_command(store_sub, "build"))
    c.set_defaults(func=_cmd_store_build)

    p = _command(sub, "data")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    c = _command(data_sub, "check")
    c.add_argument("dir")
    c.add_argument("--encoding", default=None)
    c.add_argument("--delimiter", default=None)
    c.add_argument("--config")
    c.add_argument("--extraction-date")
    c.set_defaults(func=_cmd_data_check)
    dd = _command(data_sub, "dictionary")
    dd.add_argument("--out", required=True)
    dd.set_defaults(func=_cmd_data_dictionary)
    a = _command(data_sub, "adapt")
    a.add_argument("dataset", choices=["taiwan"])
    a.add_argument("--csv", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--force", action="store_true")
    a.set_defaults(func=_cmd_data_adapt)
    m = _command(data_sub, "map")
    m.add_argument("--mapping", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--force", action="store_true")
    m.set_defaults(func=_cmd_data_map)
    p = _command(sub, "serve")
    p.add_argument("--bundle", required=True)
    p.add_argument("--store")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_positive_int, default=8000)
    p.add_argument("--config")
    p.add_argument("--workers", type=_positive_int, default=1)
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--access-log", action="store_true")
    p.add_argument("--http", default="auto", choices=["auto", "httptools", "h11"])
    p.add_argument("--loop", default="auto", choices=["auto", "uvloop", "asyncio"])
    p.add_argument("--request-log", metavar="FILE")
    p.add_argument("--scoring-log", metavar="DIR")
    p.add_argument("--api-key-file", metavar="FILE")
    p.add_argument("--ssl-certfile", metavar="PEM")
    p.add_argument("--ssl-keyfile", metavar="PEM")
    p.add_argument("--ssl-ca-certs", metavar="PEM")
    p.add_argument("--max-body-mb", type=float, default=64.0)
    p.add_argument("--body-timeout", type=float, default=30.0)
    p.add_argument("--max-large-requests", type=_positive_int, default=2)
    p.add_argument("--training-range", choices=["flag", "refuse"])
    _add_trust_options(p)
    p.set_defaults(func=_cmd_serve)

    p = _command(sub, "score")
    p.add_argument("--bundle", required=True)
    p.add_argument("--input")
    p.add_argument("--store")
    p.add_argument("--as-of")
    p.add_argument("--enterprises")
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true")
    p.add_argument("--reasons", action="store_true")
    p.add_argument("--lang", choices=("en", "zh"))
    p.add_argument("--keep")
    p.add_argument("--batch-size", type=_positive_int, default=100_000)
    p.add_argument("--threads", type=_positive_int, default=0)
    p.add_argument("--memory-limit", type=_memory_limit)
    _add_trust_options(p)
    p.set_defaults(func=_cmd_score)

    p = _command(sub, "bundle")
    bundle_sub = p.add_subparsers(dest="bundle_command", required=True, metavar="ACTION")
    c = _command(bundle_sub, "compile")
    c.add_argument("--bundle", required=True)
    c.add_argument("--out")
    c.add_argument("--signing-key")
    c.add_argument("--portable", action="store_true")
    c.add_argument("--parity-rows", metavar="FILE")
    c.add_argument("--force", action="store_true")
    _add_trust_options(c)
    c.set_defaults(func=_cmd_bundle_compile)

    p = _command(sub, "keys")
    keys_sub = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    k = _command(keys_sub, "generate")
    k.add_argument("--out", required=True)
    k.set_defaults(func=_cmd_keys_generate)
    return help_in(parser, lang)


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
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(build_parser(argv_lang(argv)), argv)
    if own_process and args.func is not _cmd_serve:  # a service gives back what a burst of requests took
        keep_freed_memory()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one-line output, also on errors
    if not args.verbose:  # MLflow's own INFO lines (tables created, input example validated) are not the kit's
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
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
