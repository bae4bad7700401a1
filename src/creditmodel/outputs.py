"""Writing outputs safely: creditmodel replaces only what it wrote itself, and never half of it.

Every command that writes (run, synth, features, export, score, report, price, data adapt, ...)
goes through :class:`Output`, which applies one set of rules:

* before any work, :func:`check_output` refuses an output that is a filesystem root, the current
  or the home directory (or contains one of them), equals or contains an input, lies inside an
  input directory, or would replace something creditmodel did not write — one line saying why;
* the output is written into a staging sibling and renamed into place only when it is complete,
  so nobody ever sees a half-written output;
* what the kit wrote is recorded in a ledger, ``.creditmodel-outputs.json``, in the directory that
  holds the output (each file's size and modification time, the command and the time). An
  existing output is replaced only when everything that would go is listed there unchanged;
  ``force`` also accepts listed files changed since, and never removes an unlisted one. The
  outputs themselves stay byte for byte what their command promises (a bundle directory holds
  only its manifest's files);
* staging and scratch siblings are named ``.NAME.creditmodel-PURPOSE-TOKEN-PID-HOST``, so a later
  write in the same directory removes those of dead processes of this host and keeps the others;
* created files and directories get the permissions of the process umask (0644 and 0755 under
  umask 022), whatever the writers used underneath (``mkstemp``/``mkdtemp`` give 0600/0700).

Example::

    with Output("data/priced.csv", kind="file", command="price", inputs={"--bundle": bundle_dir}) as out:
        frame.to_csv(out.tmp, index=False)    # visible as data/priced.csv only once this block succeeds
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import stat
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Union

from creditmodel.exceptions import ConfigError
from creditmodel.texts import Phrase

__all__ = ["LEDGER", "Inputs", "Output", "check_output", "clean_leftovers", "normalise_permissions", "scratch_dir",
           "tracking_inputs", "write_atomically"]

LEDGER = ".creditmodel-outputs.json"
LEDGER_FORMAT = "creditmodel-outputs"
LEDGER_VERSION = 1

PathLike = Union[str, "os.PathLike[str]"]
Inputs = Mapping[str, PathLike | None]
Kind = Literal["dir", "file"]

_PURPOSES = ("stage", "work", "old", "ledger")
_SIBLING = re.compile(r"^\.(?P<base>.*)\.creditmodel-(?P<purpose>[a-z]+)-(?P<token>[0-9a-f]{8})-(?P<pid>\d+)"
                      r"-(?P<host>[A-Za-z0-9-]+)$")
_MAX_BASE = 120  # keeps sibling names under the usual 255-byte limit
# the names of outputs and inputs that are words, not a command-line flag or a parameter: said in each language
_LABELS = {"tracking store": "error.outputs.label.tracking_store",
           "tracking artifacts": "error.outputs.label.tracking_artifacts",
           "bundle directory": "error.outputs.label.bundle_directory"}


def _label(label: str) -> Phrase | str:
    """The name of an output or input as an error says it: a flag (--out) or parameter (out_dir) as it is."""
    return Phrase(_LABELS[label]) if label in _LABELS else label


# --- names of staging and scratch siblings -------------------------------------------------------


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40].strip("-") or "host"


def _sibling(near: Path, purpose: str) -> Path:
    return near.parent / f".{near.name[:_MAX_BASE]}.creditmodel-{purpose}-{secrets.token_hex(4)}-{os.getpid()}-{_host()}"


def _make_sibling_dir(near: Path, purpose: str) -> Path:
    """A new, empty directory beside `near`, created under the umask (mkdtemp would make it 0700)."""
    for _ in range(20):
        path = _sibling(near, purpose)
        try:
            os.mkdir(path, 0o777)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free name for a {purpose} directory beside {near}")


def scratch_dir(near: PathLike) -> Path:
    """A private working directory beside `near` that a later run can remove if this process dies.

    The caller removes it when done (``shutil.rmtree``)."""
    near = _absolute(near)
    near.parent.mkdir(parents=True, exist_ok=True)
    return _make_sibling_dir(near, "work")


def _alive(pid: int) -> bool:
    """Whether process `pid` of this host may still run (when in doubt: yes)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    return True


def clean_leftovers(directory: PathLike) -> list[Path]:
    """Remove the staging and scratch siblings in `directory` left by dead processes of this host.

    Leftovers of live processes and of other hosts (a shared disk) are kept. A previous output moved
    aside by a process that died before putting the new one in place is moved back, not removed.
    Returns what was removed or restored."""
    directory = Path(directory)
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    host, done = _host(), []
    for entry in entries:
        m = _SIBLING.match(entry.name)
        if not m or m["purpose"] not in _PURPOSES or m["host"] != host or _alive(int(m["pid"])):
            continue
        path = Path(entry.path)
        original = directory / m["base"]
        try:
            if m["purpose"] == "old" and len(m["base"]) < _MAX_BASE and not os.path.lexists(original):
                os.rename(path, original)  # died between moving the old output aside and the new one in
            elif entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        done.append(path)
    return done


def _in_staging(path: Path) -> bool:
    """Whether `path` lies inside a staging or scratch directory: its whole tree is recorded when that
    directory is put in place, so nothing inside needs a record of its own."""
    return any((m := _SIBLING.match(p.name)) and m["purpose"] in ("stage", "work") for p in (path, *path.parents))


# --- permissions -----------------------------------------------------------------------------------


def _umask() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def normalise_permissions(root: PathLike) -> None:
    """Give every directory and file under `root` the usual permissions of the umask: 0755 and 0644
    (0755 for executables) under umask 022. Symbolic links are left alone."""
    mask = _umask()
    root = Path(root)
    if root.is_symlink():
        return
    if root.is_file():
        os.chmod(root, (0o777 if root.stat().st_mode & 0o111 else 0o666) & ~mask)
        return
    for dirpath, _, filenames in os.walk(root):
        os.chmod(dirpath, 0o777 & ~mask)
        for name in filenames:
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode):
                os.chmod(path, (0o777 if mode & 0o111 else 0o666) & ~mask)


# --- the ledger ------------------------------------------------------------------------------------


def _empty_ledger() -> dict[str, Any]:
    return {"format": LEDGER_FORMAT, "version": LEDGER_VERSION,
            "about": "files creditmodel wrote here; it replaces only what is listed, unchanged", "outputs": {}}


def _read_ledger(directory: Path) -> dict[str, Any]:
    path = directory / LEDGER
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _empty_ledger()
    except OSError as exc:
        raise ConfigError.of("error.outputs.ledger_unreadable", path=path, detail=exc.strerror) from None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if (not isinstance(data, dict) or data.get("format") != LEDGER_FORMAT or data.get("version") != LEDGER_VERSION
            or not isinstance(data.get("outputs"), dict)):
        raise ConfigError.of("error.outputs.ledger_invalid", path=path, version=LEDGER_VERSION)
    for name, entry in data["outputs"].items():
        parts = [entry] + ([entry["pending"]] if isinstance(entry, dict) and entry.get("pending") else [])
        if not all(isinstance(p, dict) and isinstance(p.get("files", {}), dict) and isinstance(p.get("dirs", []), list)
                   and all(isinstance(v, list) and len(v) == 2 for v in p.get("files", {}).values())
                   for p in parts):
            raise ConfigError.of("error.outputs.ledger_entry", path=path, name=name)
    return data


def write_atomically(path: PathLike, text: str, *, exclusive: bool = False) -> Path:
    """Write one small file through a sibling renamed into place: a reader sees the old file or the new
    one, never part of either. For files inside a directory an Output already guards (a bundle being
    signed, a status file of a private run directory); whole outputs go through :class:`Output`.

    exclusive: never replace an existing `path` (FileExistsError, also when it appears meanwhile).
    The file gets the umask's permissions (0644 under umask 022)."""
    path = Path(path)
    tmp = _sibling(path, "stage")
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            fh.write(text)
        if exclusive:
            os.link(tmp, path)  # fails if the name exists: never overwrites
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _write_ledger(directory: Path, data: dict[str, Any]) -> None:
    data["outputs"] = {name: entry for name, entry in sorted(data["outputs"].items())
                       if os.path.lexists(directory / name) or entry.get("pending")}
    path = directory / LEDGER
    if not data["outputs"]:
        path.unlink(missing_ok=True)
        return
    write_atomically(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialise ledger updates of one directory between processes (best effort where flock is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass
        yield
    finally:
        os.close(fd)


Owner = tuple[Path, str, dict[str, Any]]


def _owner(path: Path) -> Owner | None:
    """The ledger directory, entry name and entry whose output is or encloses `path` (the nearest one)."""
    for directory in path.parents:
        if not (directory / LEDGER).is_file():
            continue
        name = path.relative_to(directory).parts[0]
        entry = _read_ledger(directory)["outputs"].get(name)
        if isinstance(entry, dict):
            return directory, name, entry
    return None


def _stamp(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns]


def _scan(root: Path, rel: str) -> tuple[dict[str, list[int]], list[str]]:
    """Files (size, mtime) and directories under `root`, keyed by paths relative to the ledger
    directory, with `rel` standing for `root`."""
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode):
        return {rel: _stamp(st)}, []
    files, dirs = {}, [rel]
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath).relative_to(root).as_posix()
        prefix = rel if here == "." else f"{rel}/{here}"
        for name in list(dirnames):
            if os.path.islink(os.path.join(dirpath, name)):  # a link is recorded as what it is, not followed
                dirnames.remove(name)
                files[f"{prefix}/{name}"] = _stamp(os.lstat(os.path.join(dirpath, name)))
            else:
                dirs.append(f"{prefix}/{name}")
        for name in filenames:
            files[f"{prefix}/{name}"] = _stamp(os.lstat(os.path.join(dirpath, name)))
    return files, dirs


def _unowned(actual: Path, rel: str, entry: dict[str, Any], force: bool) -> Phrase | None:
    """What in `actual` (recorded as `rel`) creditmodel did not write, or changed since; None if nothing."""
    pending = entry.get("pending") or {}
    known_files: dict[str, list[list[int]]] = {}
    for records in (entry.get("files") or {}, pending.get("files") or {}):
        for key, stamp in records.items():
            known_files.setdefault(key, []).append(list(stamp))
    known_dirs = set(entry.get("dirs") or []) | set(pending.get("dirs") or [])
    files, dirs = _scan(actual, rel)

    def shown(key: str) -> str:
        return key[len(rel) + 1:] if key.startswith(rel + "/") else Path(key).name

    def foreign(key: str) -> Phrase | None:
        for part in shown(key).split("/"):  # creditmodel's own staging inside: gone with it once its writer died
            m = _SIBLING.match(part)
            if m and m["purpose"] in _PURPOSES:
                if m["host"] == _host() and not _alive(int(m["pid"])):
                    return None
                return Phrase("error.outputs.being_written", {"name": shown(key), "pid": m["pid"], "host": m["host"]})
        return (Phrase("error.outputs.foreign", {"name": shown(key)}) if key != rel else
                Phrase("error.outputs.not_ours"))

    for key in [*dirs, *sorted(files)]:
        if key not in known_dirs and key not in known_files:
            problem = foreign(key)
            if problem:
                return problem
    if not force:
        for key in sorted(files):
            if key in known_files and files[key] not in known_files[key]:
                return (Phrase("error.outputs.changed") if key == rel else
                        Phrase("error.outputs.file_changed", {"name": shown(key)}))
    return None


def _replace_problem(path: Path, force: bool) -> Phrase | None:
    """Why the existing `path` may not be replaced, or None (also when it does not exist)."""
    if not os.path.lexists(path):
        return None
    if path.is_symlink():
        return Phrase("error.outputs.symlink")
    if _in_staging(path):
        return None
    owner = _owner(path)
    if owner is None:
        if path.is_dir():
            first = min((p.name for p in path.iterdir()), default=None)
            return None if first is None else Phrase("error.outputs.foreign", {"name": first})
        return Phrase("error.outputs.unlisted", {"ledger": LEDGER})
    directory, _, entry = owner
    if path.is_dir() and not any(path.iterdir()):
        return None
    return _unowned(path, path.relative_to(directory).as_posix(), entry, force)


# --- the checks ------------------------------------------------------------------------------------


def _absolute(path: PathLike) -> Path:
    return Path(os.path.abspath(Path(path).expanduser()))


def _location_problem(out: Path, inputs: Inputs | None) -> Phrase | None:
    real = out.resolve()
    if real.parent == real or os.path.ismount(real):
        return Phrase("error.outputs.root")
    places = []
    try:
        places.append(("error.outputs.cwd", Path.cwd().resolve()))
    except OSError:
        pass
    try:
        places.append(("error.outputs.home", Path.home().resolve()))
    except (RuntimeError, KeyError, OSError):
        pass
    for what, place in places:
        if real == place:
            return Phrase("error.outputs.is_place", {"place": Phrase(what)})
        if place.is_relative_to(real):
            return Phrase("error.outputs.contains_place", {"place": Phrase(what), "path": place})
    for label, given in (inputs or {}).items():
        if given is None or str(given) == "":
            continue
        source = Path(given).expanduser().resolve()
        where = {"label": _label(label), "path": given}
        if real == source:
            return Phrase("error.outputs.is_input", where)
        if source.is_relative_to(real):
            return Phrase("error.outputs.contains_input", where)
        if real.is_relative_to(source):
            return Phrase("error.outputs.inside_input", where)
    return None


def _kind_problem(out: Path, kind: Kind) -> Phrase | None:
    if out.name == LEDGER or (_SIBLING.match(out.name) and not _in_staging(out)):
        return Phrase("error.outputs.reserved_name")
    if kind == "dir" and out.exists() and not out.is_dir():
        return Phrase("error.outputs.not_dir")
    if kind == "file" and out.is_dir():
        return Phrase("error.outputs.is_dir")
    return None


def check_output(path: PathLike, *, kind: Kind = "dir", inputs: Inputs | None = None, force: bool = False,
                 label: str = "--out") -> Path:
    """Refuse an unsafe output with one line (ConfigError) before any work is done; return its absolute path.

    `inputs` maps a label (e.g. ``"--data"``) to each input path of the command; `force` lets an
    output of creditmodel be replaced although files in it were changed since (never foreign ones)."""
    if kind not in ("dir", "file"):
        raise ValueError(f"kind {kind!r}: expected 'dir' or 'file'")
    out = _absolute(path)
    problem = _location_problem(out, inputs) or _kind_problem(out, kind) or _replace_problem(out, force)
    if problem:
        raise ConfigError.of("error.outputs.refused", label=_label(label), path=path, problem=problem)
    return out


def tracking_inputs(uri: str | None) -> dict[str, Path]:
    """The local files of an MLflow tracking URI that an output must never replace: a SQLite store and
    the ``artifacts`` directory beside it (where creditmodel puts them), or a file store's directory."""
    if not uri:
        return {}
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        return {"tracking store": db, "tracking artifacts": db.parent / "artifacts"}
    if uri.startswith("file:"):
        return {"tracking store": Path(urllib.parse.unquote(urllib.parse.urlparse(uri).path))}
    if "://" not in uri:
        return {"tracking store": Path(uri)}
    return {}


# --- writing ---------------------------------------------------------------------------------------


def _drop_pending(directory: Path, name: str) -> None:
    """Forget the records of an output that was not put in place after all (best effort)."""
    try:
        ledger = _read_ledger(directory)
        entry = ledger["outputs"].get(name)
        if isinstance(entry, dict) and entry.pop("pending", None) is not None:
            if not entry.get("files") and not entry.get("dirs"):
                del ledger["outputs"][name]
            _write_ledger(directory, ledger)
    except (OSError, ConfigError):
        pass


class Output:
    """One output (a directory or a file) written all at once.

    Creating it checks the path (:func:`check_output`), removes leftovers of dead processes beside it
    and makes an empty staging directory. Write into ``tmp`` — the staging directory itself for
    ``kind="dir"``, a path inside it named like the output for ``kind="file"`` — then call
    ``commit()`` to put it in place and record it, or ``discard()``; as a context manager it commits
    on success and discards on any exception. ``scratch()`` gives working directories removed with it.
    """

    def __init__(self, path: PathLike, *, kind: Kind = "dir", command: str = "", inputs: Inputs | None = None,
                 force: bool = False, label: str = "--out") -> None:
        self.given = str(path)
        self.path = check_output(path, kind=kind, inputs=inputs, force=force, label=label)
        self.kind, self.command, self.force, self.label = kind, command, force, label
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            clean_leftovers(self.path.parent)
            self.stage = _make_sibling_dir(self.path, "stage")
        except OSError as exc:
            raise ConfigError.of("error.outputs.cannot_write", label=_label(label), path=path,
                                 parent=self.path.parent, detail=exc.strerror or type(exc).__name__) from None
        self.tmp = self.stage if kind == "dir" else self.stage / self.path.name
        self.committed = False
        self._scratch: list[Path] = []

    def __enter__(self) -> Output:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()

    def scratch(self) -> Path:
        """A working directory beside the output, removed on commit or discard."""
        path = _make_sibling_dir(self.path, "work")
        self._scratch.append(path)
        return path

    def discard(self) -> None:
        """Remove the staging directory and the scratch directories; the old output stays as it was."""
        for path in (self.stage, *self._scratch):
            shutil.rmtree(path, ignore_errors=True)

    def _refuse(self, problem: Phrase) -> None:
        self.discard()
        raise ConfigError.of("error.outputs.refused", label=_label(self.label), path=self.given, problem=problem)

    def commit(self) -> Path:
        """Put the staged output in place, replacing the previous one only if creditmodel wrote it."""
        if self.committed:
            return self.path
        if not os.path.lexists(self.tmp):
            self.discard()
            raise FileNotFoundError(f"nothing was written to {self.tmp}")
        normalise_permissions(self.stage)
        try:
            if _in_staging(self.path):
                self._put_in_place(None)
            else:
                for _ in range(5):  # the ledger that records the path is found again under its lock
                    owner = _owner(self.path)
                    directory = owner[0] if owner else self.path.parent
                    with _locked(directory):
                        owner = _owner(self.path)
                        if (owner[0] if owner else self.path.parent) == directory:
                            self._put_in_place(directory)
                            break
                else:  # pragma: no cover - ledgers appearing and vanishing under us
                    self._refuse(Phrase("error.outputs.ledger_changing"))
        except BaseException:
            self.discard()  # whatever went wrong, the staged output does not stay behind
            raise
        finally:
            for path in self._scratch:
                shutil.rmtree(path, ignore_errors=True)
        self.committed = True
        return self.path

    def _put_in_place(self, directory: Path | None) -> None:
        problem = _replace_problem(self.path, self.force)
        if problem:
            self._refuse(problem)
        rel = self.path.relative_to(directory).as_posix() if directory is not None else ""
        name = rel.split("/")[0]
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        if directory is not None:  # record first, as pending: a crash at any point leaves a known state
            files, dirs = _scan(self.tmp, rel)
            ledger = _read_ledger(directory)
            entry = ledger["outputs"].setdefault(name, {"command": self.command, "written_utc": now,
                                                        "files": {}, "dirs": []})
            entry["pending"] = {"files": files, "dirs": dirs}
            _write_ledger(directory, ledger)
        old = None
        try:
            if os.path.lexists(self.path) and self.kind == "dir":
                if not any(self.path.iterdir()):
                    os.rmdir(self.path)
                else:
                    old = _sibling(self.path, "old")
                    os.rename(self.path, old)
                    owner = _owner(self.path) if directory is not None else None
                    late = owner and _unowned(old, rel, owner[2], self.force)
                    if late:  # something was added after the check: put everything back untouched
                        os.rename(old, self.path)
                        old = None
                        self._refuse(late)
            if self.kind == "dir":
                os.rename(self.stage, self.path)
            else:
                os.replace(self.tmp, self.path)
                os.rmdir(self.stage)
        except BaseException as exc:
            if old is not None and not os.path.lexists(self.path):
                os.rename(old, self.path)
            self.discard()
            if directory is not None:
                _drop_pending(directory, name)
            if isinstance(exc, OSError):
                raise ConfigError.of("error.outputs.cannot_place", label=_label(self.label), path=self.given,
                                     detail=exc.strerror or type(exc).__name__) from None
            raise
        if directory is not None:
            ledger = _read_ledger(directory)
            entry = ledger["outputs"][name]
            pending = entry.pop("pending")

            def inside(key: str) -> bool:
                return key == rel or key.startswith(rel + "/")

            entry["files"] = {k: v for k, v in entry.get("files", {}).items() if not inside(k)} | pending["files"]
            entry["dirs"] = sorted({d for d in entry.get("dirs", []) if not inside(d)} | set(pending["dirs"]))
            if rel == name:
                entry["command"], entry["written_utc"] = self.command, now
                entry.pop("updated", None)
            else:
                entry["updated"] = {"path": rel, "command": self.command, "utc": now}
            _write_ledger(directory, ledger)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
