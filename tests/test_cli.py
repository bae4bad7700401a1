"""The console command: every stage has --help; each class of bad input is one line, exit 2, nothing written."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from creditmodel.cli import main

COMMANDS = [["synth"], ["run"], ["features"], ["export"], ["price"], ["data", "check"], ["keys", "generate"],
            ["bundle", "compile"]]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*cmd, "--help"])
    assert exit_.value.code == 0
    assert "usage: creditmodel" in capsys.readouterr().out


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "creditmodel"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True).stdout
    for cmd in ("synth", "run", "export", "price"):
        assert cmd in out


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("creditmodel: error: ")
    return err[0]


def test_synth_writes_canonical_tables(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "w"), "--enterprises", "60", "--seed", "1"]) == 0
    names = sorted(p.name for p in (tmp_path / "w").glob("*.parquet"))
    assert names == sorted(f"{t}.parquet" for t in (
        "enterprises", "registration_events", "court_cases", "environment_checks", "transactions",
        "financial_statements", "loans", "repayments", "collateral", "guarantees", "officers", "loan_accounts",
        "balances"))
    assert (tmp_path / "w" / "_truth" / "loan_truth.parquet").is_file()
    assert main(["synth", "--out", str(tmp_path / "w"), "--enterprises", "60"]) == 0  # its own output: replaced
    (tmp_path / "w" / "notes.txt").write_text("mine")
    assert main(["synth", "--out", str(tmp_path / "w"), "--enterprises", "60"]) == 2
    assert "not empty: it holds 'notes.txt', which creditmodel did not write" in _one_error_line(capsys)
    assert (tmp_path / "w" / "notes.txt").read_text() == "mine"


def test_bad_cli_argument_exits_non_zero(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["synth", "--out", "x", "--enterprises", "many"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "expected a whole number, got 'many'" in err[0] and "creditmodel synth" in err[0]


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "world"
    assert main(["synth", "--out", str(out), "--enterprises", "300", "--seed", "2"]) == 0
    return out


def test_missing_input_table_writes_nothing(world_dir, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(world_dir, data)
    (data / "loans.parquet").unlink()
    out, db = tmp_path / "out", tmp_path / "mlflow.db"
    assert main(["run", "--data", str(data), "--out", str(out), "--tracking-uri", f"sqlite:///{db}"]) == 2
    line = _one_error_line(capsys)
    assert "loans" in line and "required table missing" in line
    assert not out.exists() and not db.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_wrong_input_value_writes_nothing(world_dir, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(world_dir, data)
    loans = pd.read_parquet(data / "loans.parquet")
    loans.loc[3, "guarantee_type"] = "gold"
    loans.to_parquet(data / "loans.parquet")
    assert main(["run", "--data", str(data), "--out", str(tmp_path / "out"),
                 "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]) == 2
    assert "loans.guarantee_type: value 'gold' not in allowed categories" in _one_error_line(capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


@pytest.mark.parametrize("toml, match", [
    ("[lightgbm]\nlearning_rate = -1\n", "field lightgbm.learning_rate: value -1: Input should be greater than 0"),
    ('[split]\nvalid_start = 2023-01-01\noot_start = 2022-01-01\n', "valid_start 2023-01-01 must be before oot_start"),
    ("[pricing]\nlgd = { unsecured = 0.5 }\n", "lgd needs exactly the guarantee types"),
    ("[lightgbm]\nnum_leafs = 3\n", "field lightgbm.num_leafs: value 3: Extra inputs are not permitted"),
    ("[monitoring]\nlanes = 3\n", "field monitoring.lanes: value 3: Input should be 1 or 2"),
    ("[monitoring]\nchunk_rows = 10\n", "field monitoring.chunk_rows: value 10: Input should be greater than or equal"),
    ("this is = not toml [", "not valid TOML"),
])
def test_bad_config_value_writes_nothing(tmp_path, capsys, toml, match):
    cfg = tmp_path / "run.toml"
    cfg.write_text(toml)
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "out"),
                 "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]) == 2
    line = _one_error_line(capsys)
    assert match in line and "run.toml" in line
    assert [p.name for p in tmp_path.iterdir()] == ["run.toml"]


def test_price_from_bundle_and_tampered_bundle(demo_run, tmp_path, capsys):
    r = demo_run["result"]
    frame = pd.read_parquet(r.features_path)
    feats = tmp_path / "oot.parquet"
    frame[frame["split"] == "oot"].drop(columns=["default", "split"]).to_parquet(feats)
    out = tmp_path / "priced.csv"
    assert main(["price", "--bundle", str(r.bundle_dir), "--features", str(feats), "--out", str(out)]) == 0
    priced = pd.read_csv(out)
    reference = pd.read_csv(r.priced_path)
    pd.testing.assert_frame_equal(priced, reference)
    capsys.readouterr()

    bad = tmp_path / "bundle"
    shutil.copytree(r.bundle_dir, bad)
    (bad / "model.txt").write_text((bad / "model.txt").read_text().replace("leaf_value=", "leaf_value=9", 1))
    out2 = tmp_path / "priced2.csv"
    assert main(["price", "--bundle", str(bad), "--features", str(feats), "--out", str(out2)]) == 2
    assert "model.txt: sha256" in _one_error_line(capsys)
    assert not out2.exists()


@pytest.mark.parametrize("command", ["price", "monitor", "serve"])
def test_a_dictionary_in_another_currency_than_the_bundle_is_refused(demo_run, tmp_path, capsys, command):
    """The demo bundle was trained on CNY amounts: a config whose dictionary is in USD would read its loan
    amounts, sales and bounds off by the exchange rate; each command refuses it in one line, writing nothing."""
    r = demo_run["result"]
    (tmp_path / "usd.toml").write_text('currency = "USD"\n', encoding="utf-8")
    cfg = tmp_path / "run.toml"
    cfg.write_text(f"dictionary = {json.dumps((tmp_path / 'usd.toml').as_posix())}\n", encoding="utf-8")
    out = tmp_path / "out"
    common = ["--bundle", str(r.bundle_dir), "--config", str(cfg)]
    argv = {"price": ["price", *common, "--features", str(r.features_path), "--out", str(out / "priced.csv")],
            "monitor": ["monitor", *common, "--data", str(r.output_dir / "world"), "--as-of", "2023-09-30",
                        "--out", str(out)],
            "serve": ["serve", *common, "--port", "0"]}[command]
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert line.startswith(f"creditmodel: error: {command}: the data dictionary")
    assert "is in USD" in line and "amounts in CNY" in line
    assert not out.exists()


def test_export_writes_a_verified_bundle_of_the_registered_model(demo_run, tmp_path, capsys):
    out = tmp_path / "exported"
    assert main(["export", "models:/sme_pd@challenger", "--out", str(out),
                 "--tracking-uri", demo_run["tracking_uri"]]) == 0
    printed = capsys.readouterr().out
    assert "max PD difference 0" in printed and "grades agree 100%" in printed
    for name in ("model.txt", "calibration.json", "master_scale.json", "feature_schema.json"):
        assert (out / name).read_bytes() == (demo_run["result"].bundle_dir / name).read_bytes()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["provenance"]["mlflow"]["run_id"] == demo_run["result"].tracked.run_id
    assert manifest["verification"]["parity"]["max_abs_pd_diff"] <= 1e-9


@pytest.mark.parametrize("argv, message", [
    (["models:/nope@challenger"], "model URI 'models:/nope@challenger' not found"),
    (["models:/sme_pd@nosuchalias"], "not found"),
    (["s3://bucket/model"], "expected models:/NAME@ALIAS"),
    (["runs:/0123456789abcdef0123456789abcdef/model"], "not found"),
])
def test_export_bad_model_uri_is_one_line_and_writes_nothing(demo_run, tmp_path, capsys, argv, message):
    out = tmp_path / "x"
    assert main(["export", *argv, "--out", str(out), "--tracking-uri", demo_run["tracking_uri"]]) == 2
    assert message in _one_error_line(capsys)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_export_refuses_a_non_empty_out_dir(demo_run, tmp_path, capsys):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert main(["export", "--out", str(tmp_path / "full"), "--tracking-uri", demo_run["tracking_uri"]]) == 2
    assert "not empty: it holds 'keep.txt', which creditmodel did not write" in _one_error_line(capsys)
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


def test_data_check_profiles_a_directory(world_dir, capsys):
    assert main(["data", "check", str(world_dir)]) == 0
    out = capsys.readouterr().out
    assert "transactions" in out and "default rate" in out and "all contracts passed" in out


def test_the_run_reports_loans_needing_referral(demo_run):
    """The policy rules of the data dictionary reach the run's record, the model card and the priced loans."""
    from creditmodel.data.policy import policy_flags
    from creditmodel.data.synthetic import generate_world

    out = demo_run["result"].output_dir
    run = json.loads((out / "run.json").read_text())
    world = generate_world(2500, seed=3)
    expected = policy_flags(world.tables["loans"])
    assert run["loans_needing_referral"]["all"] == int(expected["needs_referral"].sum())
    assert run["ignored_columns"] == []
    card = json.loads((demo_run["result"].bundle_dir / "model_card.json").read_text())
    assert card["data_dictionary"]["loans_needing_referral"] == run["loans_needing_referral"]
    assert [r["name"] for r in card["data_dictionary"]["policy_rules"]] == ["approval_authority", "term_limit"]
    assert card["data_dictionary"]["currency"] == "CNY"
    priced = pd.read_csv(demo_run["result"].priced_path)
    assert {"needs_referral", "referral_rules"} <= set(priced.columns)


def test_shipped_configs_are_valid_and_demo_equals_the_defaults():
    from creditmodel.config import RunConfig, load_config

    root = Path(__file__).resolve().parents[1] / "configs"
    demo = load_config(root / "demo.toml")
    assert demo.output_dir == root.parent / "data" / "demo"  # the default, written relative to the file
    assert demo.model_copy(update={"output_dir": RunConfig().output_dir}) == RunConfig()
    taiwan = load_config(root / "taiwan.toml")
    assert taiwan.split.method == "holdout" and str(taiwan.label.first_decision_date) == "2005-10-01"


def test_gbk_csv_needs_the_encoding_option(world_dir, tmp_path, capsys):
    data = tmp_path / "gbk"
    data.mkdir()
    for p in world_dir.glob("*.parquet"):
        frame = pd.read_parquet(p)
        if p.stem == "enterprises":
            frame["county"] = "安吉县"
        frame.to_csv(data / f"{p.stem}.csv", index=False, encoding="gbk")
    shutil.copy(world_dir / "_dataset.json", data / "_dataset.json")  # the declared extraction date
    assert main(["data", "check", str(data)]) == 2
    assert "try --encoding gbk" in _one_error_line(capsys)
    assert main(["data", "check", str(data), "--encoding", "gbk"]) == 0
    assert "all contracts passed" in capsys.readouterr().out
    assert main(["run", "--data", str(data), "--encoding", "latin-9x", "--out", str(tmp_path / "o")]) == 2
    assert "unknown encoding 'latin-9x'" in _one_error_line(capsys)
    assert not (tmp_path / "o").exists()


def test_data_adapt_taiwan(tmp_path, capsys):
    csv = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "taiwan_credit_card" / "UCI_Credit_Card.csv"
    if not csv.is_file():
        pytest.skip("the public Taiwan data is not beside the project")
    assert main(["data", "adapt", "taiwan", "--csv", str(csv), "--out", str(tmp_path / "tw")]) == 0
    assert main(["data", "check", str(tmp_path / "tw")]) == 0
    assert "2005" in capsys.readouterr().out
    assert main(["data", "adapt", "taiwan", "--csv", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "x")]) == 2
    assert "--csv" in _one_error_line(capsys) and not (tmp_path / "x").exists()


def test_a_config_file_gets_its_own_experiment(tmp_path):
    from creditmodel.config import load_config

    (tmp_path / "stress_2023.toml").write_text("[synthetic]\nseed = 4\n")
    assert load_config(tmp_path / "stress_2023.toml").experiment == "creditmodel-stress_2023"
    (tmp_path / "named.toml").write_text('experiment = "pricing-review"\n')
    assert load_config(tmp_path / "named.toml").experiment == "pricing-review"
    assert load_config().experiment == "creditmodel"


def test_paths_in_a_config_file_are_relative_to_the_file(tmp_path, monkeypatch):
    """The file means the same files from any working directory (as a mapping file's paths do); the command
    line's paths stay relative to where it runs, and absolute paths are kept."""
    from creditmodel.config import load_config
    from creditmodel.data.dictionary import default_dictionary_text

    bank = tmp_path / "bank"
    (bank / "keys").mkdir(parents=True)
    (bank / "dictionary.toml").write_text(default_dictionary_text(), encoding="utf-8")
    (bank / "run.toml").write_text('data_dir = "extract/tables"\noutput_dir = "../runs/q3"\n'
                                   'dictionary = "dictionary.toml"\n[bundle]\nsigning_key = "keys/sign.pem"\n',
                                   encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config("../bank/run.toml")
    assert config.data_dir == Path("../bank/extract/tables") and config.output_dir == Path("../runs/q3")
    assert config.dictionary == Path("../bank/dictionary.toml") and config.bundle.signing_key == Path("../bank/keys/sign.pem")
    assert (elsewhere / config.dictionary).resolve() == (bank / "dictionary.toml").resolve()
    config = load_config(bank / "run.toml", {"output_dir": "out", "data_dir": str(tmp_path / "abs")})
    assert config.output_dir == Path("out") and config.data_dir == tmp_path / "abs"
    assert config.dictionary == bank / "dictionary.toml"
    (bank / "run.toml").write_text(f'dictionary = "{(bank / "dictionary.toml").as_posix()}"\n', encoding="utf-8")
    assert load_config(bank / "run.toml").dictionary == bank / "dictionary.toml"


def test_partitioned_synth_equals_the_in_memory_world(tmp_path, capsys):
    from creditmodel.data.io import read_tables

    assert main(["synth", "--out", str(tmp_path / "p"), "--enterprises", "80", "--seed", "4", "--partitioned",
                 "--chunk-enterprises", "50"]) == 0
    assert main(["synth", "--out", str(tmp_path / "m"), "--enterprises", "80", "--seed", "4"]) == 0
    assert (tmp_path / "p" / "transactions").is_dir()
    parts, whole = read_tables(tmp_path / "p"), read_tables(tmp_path / "m")
    for name in whole:
        pd.testing.assert_frame_equal(parts[name].reset_index(drop=True), whole[name].reset_index(drop=True))
