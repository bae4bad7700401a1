"""Outputs: creditmodel replaces only what it wrote itself, never an input, the current or home
directory or a filesystem root; no half-written output, no leftovers of dead processes, and files
and directories with the permissions of the umask.

Every test works in a private directory and a private $HOME; refusals need no real run.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from creditmodel import outputs
from creditmodel.cli import main
from creditmodel.exceptions import ConfigError
from creditmodel.outputs import LEDGER, Output, check_output, clean_leftovers, tracking_inputs


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A private current directory (tmp/work) and home directory (tmp/home)."""
    (tmp_path / "home").mkdir()
    (tmp_path / "work").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path / "work"


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def no_work(monkeypatch):
    """Make any real work fail loudly: a refusal must come before it."""
    import creditmodel.data.synthetic
    import creditmodel.pipeline

    def started(*args, **kwargs):
        raise AssertionError("work started before the output was checked")

    monkeypatch.setattr(creditmodel.pipeline, "run_pipeline", started)
    monkeypatch.setattr(creditmodel.pipeline, "load_inputs", started)
    monkeypatch.setattr(creditmodel.data.synthetic, "generate_world", started)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def refused(capsys, argv: list[str], *expected: str) -> str:
    assert main(argv) == 2, argv
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("creditmodel: error: --out ") and "refusing to write there" in err[0], err
    for text in expected:
        assert text in err[0], err[0]
    return err[0]


def precious(root: Path) -> dict[str, bytes]:
    """A user's files that no command may delete."""
    (root / "thesis").mkdir(parents=True, exist_ok=True)
    (root / "thesis" / "chapter1.md").write_text("two years of work")
    (root / "notes.txt").write_text("do not delete")
    return tree(root)


def leftovers(directory: Path) -> list[str]:
    """Staging, scratch or moved-aside siblings (named .NAME.creditmodel-PURPOSE-TOKEN-PID-HOST)."""
    return sorted(p.name for p in directory.iterdir() if outputs._SIBLING.match(p.name))


# --- the data-loss cases of `creditmodel run` ------------------------------------------------------


def test_run_out_current_directory_is_refused_at_once_and_deletes_nothing(place, capsys, no_work):
    before = precious(place)
    refused(capsys, ["run", "--out", "."], "is the current directory")
    refused(capsys, ["run", "--out", str(place)], "is the current directory")
    refused(capsys, ["run", "--out", ".."], "contains the current directory")
    refused(capsys, ["run", "--out", "/"], "is a filesystem root")
    assert tree(place) == before
    assert sorted(p.name for p in place.iterdir()) == ["notes.txt", "thesis"]  # no ledger, no staging, no mlruns


def test_run_out_home_is_refused(place, capsys, no_work):
    home = Path(os.environ["HOME"])
    before = precious(home)
    refused(capsys, ["run", "--out", str(home)], "is the home directory")
    refused(capsys, ["run", "--out", "~"], "is the home directory")
    assert tree(home) == before


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_run_into_a_directory_with_foreign_files_is_refused_even_with_force(place, capsys, no_work, force):
    before = precious(place / "victim")
    refused(capsys, ["run", "--out", "victim", *force], "--out victim: is not empty: it holds 'notes.txt', "
                                                        "which creditmodel did not write")
    assert tree(place / "victim") == before


def test_run_whose_output_contains_its_input_is_refused(place, capsys, no_work):
    for world in (place / "proj" / "world", place / "data" / "demo" / "world"):
        world.mkdir(parents=True)
        (world / "loans.parquet").write_bytes(b"the only copy of the loans")
    (place / "run.toml").write_text("[synthetic]\nseed = 4\n")
    before = tree(place)
    refused(capsys, ["run", "--data", "proj/world", "--out", "proj"], "contains the input --data proj/world")
    refused(capsys, ["run", "--data", "proj/world", "--out", "proj/world"], "is the input --data proj/world")
    refused(capsys, ["run", "--data", "proj/world", "--out", "proj/world/run1"], "lies inside the input --data")
    refused(capsys, ["run", "--data", "data/demo/world"], "--out data/demo: contains the input --data data/demo/world")
    refused(capsys, ["run", "--config", "run.toml", "--out", "."], "is the current directory")
    refused(capsys, ["run", "--out", "mlruns"], "contains the input tracking store")
    refused(capsys, ["run", "--out", "store", "--tracking-uri", f"sqlite:///{place / 'store' / 'mlflow.db'}"],
            "contains the input tracking store")
    assert tree(place) == before


def test_run_pipeline_checks_its_output_before_any_work(place, monkeypatch):
    """The library entry point refuses too (callers other than the CLI), before loading any data."""
    import creditmodel.pipeline
    from creditmodel.config import build_config

    monkeypatch.setattr(creditmodel.pipeline, "load_inputs",
                        lambda *a, **k: pytest.fail("data loaded before the output was checked"))
    (place / "proj" / "world").mkdir(parents=True)
    with pytest.raises(ConfigError, match="contains the input --data"):
        creditmodel.pipeline.run_pipeline(build_config({"output_dir": "proj", "data_dir": "proj/world"}))
    with pytest.raises(ConfigError, match="contains the input --config"):
        creditmodel.pipeline.run_pipeline(build_config({"output_dir": "proj"}), inputs={"--config": "proj/x.toml"})
    assert sorted(p.name for p in (place / "proj").iterdir()) == ["world"]


def test_the_default_demo_output_is_accepted_and_replaceable(place, demo_run):
    """`make demo` (synthetic world inside data/demo) is allowed, and a second one replaces the first."""
    from creditmodel.config import RunConfig
    from creditmodel.pipeline import run_inputs

    config = RunConfig()
    assert check_output(config.output_dir, inputs=run_inputs(config)) == place / "data" / "demo"
    out = demo_run["result"].output_dir
    assert (out / "world" / "loans.parquet").is_file()  # the world is part of the run's own output
    assert check_output(out, inputs=run_inputs(demo_run["config"], demo_run["tracking_uri"])) == out
    ledger = json.loads((out.parent / LEDGER).read_text())
    entry = ledger["outputs"][out.name]
    assert entry["command"] == "run" and "pending" not in entry
    assert {f"{out.name}/bundle/model.txt", f"{out.name}/validation_report.html",
            f"{out.name}/world/loans.parquet"} <= set(entry["files"])
    stray = out / "report" / "my_notes.txt"
    stray.write_text("an analyst's notes")
    try:
        with pytest.raises(ConfigError, match="holds 'report/my_notes.txt', which creditmodel did not write"):
            check_output(out, force=True)
    finally:
        stray.unlink()
    assert not leftovers(out.parent) and not leftovers(out)


def test_the_run_output_is_readable_by_colleagues(demo_run):
    """Directories and files of a run get the umask's permissions, not mkdtemp's 0700 / mkstemp's 0600."""
    mask = outputs._umask()
    out = demo_run["result"].output_dir
    for d in (out, out / "bundle", out / "report", out / "world", out / "world" / "_truth"):
        assert d.stat().st_mode & 0o777 == 0o777 & ~mask, d
    for f in (out / "validation_report.html", out / "bundle" / "model.txt", out / "priced_oot.csv",
              out / "world" / "_truth" / "loan_truth.parquet", out / "report" / "roc_oot.png"):
        assert f.stat().st_mode & 0o777 == 0o666 & ~mask, f


# --- re-running over the kit's own output ---------------------------------------------------------


def test_synth_replaces_its_own_output_and_nothing_else(place, capsys, umask022):
    before = precious(place / "proj")
    assert main(["synth", "--out", "proj/world", "--enterprises", "60", "--seed", "1"]) == 0
    first = tree(place / "proj" / "world")
    assert main(["synth", "--out", "proj/world", "--enterprises", "60", "--seed", "2"]) == 0
    second = tree(place / "proj" / "world")
    assert set(first) == set(second) and first["loans.parquet"] != second["loans.parquet"]
    assert {k: v for k, v in tree(place / "proj").items() if not k.startswith(("world/", LEDGER))} == before
    assert not leftovers(place / "proj")
    ledger = json.loads((place / "proj" / LEDGER).read_text())
    assert ledger["format"] == "creditmodel-outputs" and list(ledger["outputs"]) == ["world"]
    listed = ledger["outputs"]["world"]["files"]
    assert set(listed) == {f"world/{k}" for k in second}
    st = (place / "proj" / "world" / "loans.parquet").stat()
    assert listed["world/loans.parquet"] == [st.st_size, st.st_mtime_ns]
    capsys.readouterr()

    # a file of the output changed since: refused, unless --force
    with open(place / "proj" / "world" / "loans.parquet", "ab") as fh:
        fh.write(b"an edit")
    edited = tree(place / "proj" / "world")
    refused(capsys, ["synth", "--out", "proj/world", "--enterprises", "60"],
            "'loans.parquet' was changed after creditmodel wrote it (--force replaces it)")
    assert tree(place / "proj" / "world") == edited
    assert main(["synth", "--out", "proj/world", "--enterprises", "60", "--force"]) == 0

    # a file creditmodel did not write: refused, also with --force
    (place / "proj" / "world" / "_truth" / "mine.csv").write_text("mine")
    for force in ([], ["--force"]):
        refused(capsys, ["synth", "--out", "proj/world", "--enterprises", "60", *force],
                "it holds '_truth/mine.csv', which creditmodel did not write")
    assert (place / "proj" / "world" / "_truth" / "mine.csv").read_text() == "mine"


def test_a_file_written_into_an_output_joins_that_output(place, tiny_world):
    """E.g. `report --out data/demo/validation_report.html`: recorded in data/demo's own entry, so
    data/demo gets no ledger of its own and the next run may still replace data/demo."""
    from creditmodel.data.synthetic import write_world

    write_world(tiny_world, "proj/world")
    with Output("proj/world/extra.csv", kind="file", command="test") as out:
        out.tmp.write_text("a,b\n1,2\n")
    assert not (place / "proj" / "world" / LEDGER).exists()
    entry = json.loads((place / "proj" / LEDGER).read_text())["outputs"]["world"]
    assert "world/extra.csv" in entry["files"] and entry["updated"]["path"] == "world/extra.csv"
    with Output("proj/world/extra.csv", kind="file", command="test") as out:  # its own file: replaced
        out.tmp.write_text("a,b\n3,4\n")
    assert (place / "proj" / "world" / "extra.csv").read_text() == "a,b\n3,4\n"
    write_world(tiny_world, "proj/world")  # the whole output again: extra.csv was the kit's, it goes
    assert not (place / "proj" / "world" / "extra.csv").exists()
    entry = json.loads((place / "proj" / LEDGER).read_text())["outputs"]["world"]
    assert "world/extra.csv" not in entry["files"] and "updated" not in entry


@pytest.fixture(scope="module")
def tiny_world():
    from creditmodel.data.synthetic import generate_world

    return generate_world(60, seed=1)


# --- all or nothing ----------------------------------------------------------------------------------


def test_a_failed_write_leaves_nothing_and_the_old_output_intact(place, tiny_world):
    from creditmodel.data.synthetic import write_world

    write_world(tiny_world, "proj/world")
    before = tree(place / "proj")
    with pytest.raises(RuntimeError, match="disk full"):
        with Output("proj/world", command="test") as out:
            (out.tmp / "loans.parquet").write_bytes(b"half")
            raise RuntimeError("disk full")
    with pytest.raises(RuntimeError, match="disk full"):
        with Output("proj/new", command="test") as out:
            raise RuntimeError("disk full")
    assert tree(place / "proj") == before and not (place / "proj" / "new").exists()
    assert not leftovers(place / "proj")


def test_a_foreign_file_appearing_during_the_write_is_kept(place, tiny_world):
    from creditmodel.data.synthetic import write_world

    write_world(tiny_world, "proj/world")
    out = Output("proj/world", command="test")  # checked: its own output
    (out.tmp / "new.txt").write_text("new")
    (place / "proj" / "world" / "late.txt").write_text("saved meanwhile by someone else")
    with pytest.raises(ConfigError, match="it holds 'late.txt', which creditmodel did not write"):
        out.commit()
    assert (place / "proj" / "world" / "late.txt").read_text() == "saved meanwhile by someone else"
    assert (place / "proj" / "world" / "loans.parquet").is_file() and not leftovers(place / "proj")


def test_links_files_and_ledgers_that_are_not_what_they_seem(place):
    (place / "target").mkdir()
    (place / "link").symlink_to(place / "target")
    with pytest.raises(ConfigError, match="is a symbolic link"):
        check_output("link")
    (place / "afile").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        check_output("afile")
    with pytest.raises(ConfigError, match="exists and was not written by creditmodel"):
        check_output("afile", kind="file", force=True)
    (place / "adir").mkdir()
    with pytest.raises(ConfigError, match="is a directory"):
        check_output("adir", kind="file")
    assert check_output("adir") == place / "adir"  # an empty directory holds nothing to lose
    with pytest.raises(ConfigError, match="a name creditmodel keeps for its own records"):
        check_output(LEDGER, kind="file")
    (place / LEDGER).write_text(json.dumps({"format": "creditmodel-outputs", "version": 1,
                                            "outputs": {"afile": {"files": ["afile"]}}}))
    with pytest.raises(ConfigError, match="output 'afile': expected lists of files"):
        check_output("afile", kind="file")
    (place / LEDGER).write_text("{not json")
    with pytest.raises(ConfigError, match=r"\.creditmodel-outputs\.json: not a creditmodel output ledger"):
        check_output("afile", kind="file")


def test_tracking_inputs():
    assert tracking_inputs("sqlite:////srv/ml/mlflow.db") == {
        "tracking store": Path("/srv/ml/mlflow.db"), "tracking artifacts": Path("/srv/ml/artifacts")}
    assert tracking_inputs("sqlite:///mlruns/mlflow.db")["tracking store"] == Path("mlruns/mlflow.db")
    assert tracking_inputs("file:///srv/ml/mlruns") == {"tracking store": Path("/srv/ml/mlruns")}
    assert tracking_inputs("mlruns") == {"tracking store": Path("mlruns")}
    assert tracking_inputs("http://127.0.0.1:5000") == {} and tracking_inputs(None) == {}


# --- leftovers and permissions -------------------------------------------------------------------


def test_leftovers_of_dead_processes_are_removed_and_live_ones_kept(place, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        proj, host = place / "proj", outputs._host()
        names = {
            "dead": f".world.creditmodel-stage-0badc0de-{dead.pid}-{host}",
            "dead_work": f".world.creditmodel-work-0badc0de-{dead.pid}-{host}",
            "dead_ledger": f"..creditmodel-outputs.json.creditmodel-ledger-0badc0de-{dead.pid}-{host}",
            "live": f".world.creditmodel-stage-0badc0de-{live.pid}-{host}",
            "other_host": f".world.creditmodel-stage-0badc0de-{dead.pid}-another-machine",
            "old": f".previous.creditmodel-old-0badc0de-{dead.pid}-{host}",
            "not_ours": ".world.partial-x1y2z3",
        }
        for key, name in names.items():
            if key == "dead_ledger":
                (proj / name).parent.mkdir(parents=True, exist_ok=True)
                (proj / name).write_text("{}")
            else:
                (proj / name).mkdir(parents=True)
                (proj / name / "part-00000.parquet").write_bytes(b"x")
        assert main(["synth", "--out", "proj/world", "--enterprises", "60"]) == 0
        left = set(p.name for p in proj.iterdir())
        assert not {names["dead"], names["dead_work"], names["dead_ledger"], names["old"]} & left
        assert {names["live"], names["other_host"], names["not_ours"]} <= left
        # an output moved aside by a process that died before moving the new one in is put back
        assert (proj / "previous" / "part-00000.parquet").read_bytes() == b"x"
        assert clean_leftovers(proj) == []
    finally:
        live.kill()
        live.wait()
    assert [p.name for p in clean_leftovers(proj)] == [names["live"]]
    capsys.readouterr()


def test_a_killed_writer_leaves_the_old_output_intact_and_the_next_run_cleans_up(place):
    """A writer killed (SIGKILL) half-way through, with a staged output and a scratch directory, as
    `run` has them: nothing half-written is visible, and the next write removes what it left."""
    import signal

    proj = place / "proj"
    assert main(["synth", "--out", "proj/world", "--enterprises", "60"]) == 0
    before = tree(proj / "world")
    script = ("import sys, time\n"
              "from creditmodel.outputs import Output\n"
              "out = Output('proj/world', command='synth')\n"
              "(out.tmp / 'loans.parquet').write_bytes(b'half written')\n"
              "(out.scratch() / 'artifacts.bin').write_bytes(b'x')\n"
              "print('writing', flush=True)\n"
              "time.sleep(120)\n")
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(Path(outputs.__file__).parents[1])})
    try:
        assert writer.stdout.readline().strip() == "writing"
        assert len(leftovers(proj)) == 2  # a live writer's staging and scratch: a second write keeps them
        assert main(["synth", "--out", "proj/world", "--enterprises", "60"]) == 0
        assert len(leftovers(proj)) == 2
        before = tree(proj / "world")
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
    assert tree(proj / "world") == before  # nothing half-written is visible
    assert main(["synth", "--out", "proj/world", "--enterprises", "60", "--seed", "5"]) == 0
    assert not leftovers(proj) and tree(proj / "world") != before


def test_staging_of_a_dead_writer_inside_an_output_goes_with_it(place, tiny_world):
    """A file being written into the kit's output by a live process blocks its replacement; once that
    process is dead, its staging directory is the kit's own debris and goes with the output."""
    from creditmodel.data.synthetic import write_world

    write_world(tiny_world, "proj/world")
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    stage = place / "proj" / "world" / f".scores.csv.creditmodel-stage-0badc0de-{writer.pid}-{outputs._host()}"
    stage.mkdir()
    (stage / "scores.csv").write_text("half")
    try:
        with pytest.raises(ConfigError, match=f"is being written: .* may still run \\(pid {writer.pid} on "):
            check_output("proj/world")
    finally:
        writer.kill()
        writer.wait()
    write_world(tiny_world, "proj/world")
    assert not stage.exists() and not leftovers(place / "proj")


@pytest.mark.parametrize("mask, dirs, files", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600), (0o002, 0o775, 0o664)])
def test_outputs_get_the_permissions_of_the_umask(place, mask, dirs, files):
    import tempfile

    old = os.umask(mask)
    try:
        with Output("out/tables", command="test") as out:
            fd, name = tempfile.mkstemp(dir=out.tmp)  # 0600, as libraries create them
            os.close(fd)
            Path(tempfile.mkdtemp(dir=out.tmp), "f.txt").write_text("x")  # a 0700 directory
        with Output("out/report.html", kind="file", command="test") as out:
            fd, name = tempfile.mkstemp(dir=out.tmp.parent)
            os.close(fd)
            os.replace(name, out.tmp)
    finally:
        os.umask(old)
    made = [place / "out", *(place / "out").rglob("*")]
    for path in made:
        if path.name == LEDGER:
            assert path.stat().st_mode & 0o777 == files
        else:
            assert path.stat().st_mode & 0o777 == (dirs if path.is_dir() else files), path
    assert len(made) == 7


# --- one case per writing command ----------------------------------------------------------------


def test_synth_refusals(place, capsys, no_work):
    before = precious(place / "victim")
    refused(capsys, ["synth", "--out", ".", "--enterprises", "60"], "is the current directory")
    refused(capsys, ["synth", "--out", "victim", "--enterprises", "60", "--force"], "it holds 'notes.txt'")
    assert tree(place / "victim") == before


def test_features_refusals(place, capsys):
    (place / "world").mkdir()
    (place / "world" / "loans.csv").write_text("loan_id\n1\n")
    (place / "features.parquet").write_bytes(b"someone else's features")
    refused(capsys, ["features", "--data", "world", "--out", "world/f.parquet"], "lies inside the input --data world")
    refused(capsys, ["features", "--data", "world", "--out", "features.parquet", "--force"],
            "exists and was not written by creditmodel")
    assert (place / "features.parquet").read_bytes() == b"someone else's features"


def test_price_and_score_refusals(place, capsys, demo_run):
    bundle = str(demo_run["result"].bundle_dir)
    apps = place / "apps.parquet"
    apps.write_bytes(b"applications")
    refused(capsys, ["price", "--bundle", bundle, "--applications", str(apps), "--out", f"{bundle}/priced.csv"],
            "lies inside the input --bundle")
    refused(capsys, ["price", "--bundle", bundle, "--applications", str(apps), "--out", str(apps)],
            "is the input --applications")
    refused(capsys, ["score", "--bundle", bundle, "--input", str(apps), "--out", str(apps)], "is the input --input")
    (place / "parts").mkdir()
    refused(capsys, ["score", "--bundle", bundle, "--input", "parts", "--out", "parts/scored.parquet"],
            "lies inside the input --input parts")
    (place / "scored.parquet").write_bytes(b"last week's scores, by hand")
    refused(capsys, ["score", "--bundle", bundle, "--input", str(apps), "--out", "scored.parquet"],
            "exists and was not written by creditmodel")
    assert apps.read_bytes() == b"applications" and sorted(p.name for p in place.iterdir()) == [
        "apps.parquet", "parts", "scored.parquet"]


def test_report_and_export_refusals(place, capsys):
    """Refused before MLflow is even opened: the store named here does not exist and stays absent."""
    store = place / "store"
    uri = f"sqlite:///{store / 'mlflow.db'}"
    (place / "mine.html").write_text("<p>my own report</p>")
    refused(capsys, ["report", "models:/sme_pd@challenger", "--out", "mine.html", "--tracking-uri", uri, "--force"],
            "exists and was not written by creditmodel")
    refused(capsys, ["report", "models:/sme_pd@challenger", "--out", "store/artifacts/r.html", "--tracking-uri", uri],
            "lies inside the input tracking artifacts")
    before = precious(place / "victim")
    refused(capsys, ["export", "--out", "victim", "--tracking-uri", uri, "--force"], "it holds 'notes.txt'")
    refused(capsys, ["export", "--out", "store", "--tracking-uri", uri], "contains the input tracking store")
    assert tree(place / "victim") == before and (place / "mine.html").read_text() == "<p>my own report</p>"
    assert not store.exists()


def test_export_replaces_its_own_bundle(place, capsys, demo_run):
    args = ["export", "models:/sme_pd@challenger", "--out", "exported", "--tracking-uri", demo_run["tracking_uri"]]
    assert main(args) == 0
    first = tree(place / "exported")
    assert main(args) == 0  # the bundle it wrote: replaced, and still loads (no ledger inside it)
    assert set(tree(place / "exported")) == set(first) and LEDGER not in first
    from creditmodel.export.bundle import load_bundle

    load_bundle(place / "exported", allow_unsigned=True)  # exported without a signing key
    capsys.readouterr()
    (place / "exported" / "README.txt").write_text("deployed to production on Monday")
    refused(capsys, [*args, "--force"], "it holds 'README.txt', which creditmodel did not write")


def test_data_adapt_refusals(place, capsys):
    (place / "proj").mkdir()
    (place / "proj" / "UCI_Credit_Card.csv").write_text("ID\n1\n")
    refused(capsys, ["data", "adapt", "taiwan", "--csv", "proj/UCI_Credit_Card.csv", "--out", "proj"],
            "contains the input --csv proj/UCI_Credit_Card.csv")
    assert [p.name for p in (place / "proj").iterdir()] == ["UCI_Credit_Card.csv"]
