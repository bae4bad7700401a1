"""write_atomically: the one write-to-a-sibling-then-rename for small files outside a whole Output."""

import os

import pytest

from creditmodel.outputs import write_atomically


def test_writes_replaces_and_leaves_no_sibling(tmp_path):
    path = tmp_path / "status.json"
    write_atomically(path, "one")
    write_atomically(path, "two")
    assert path.read_text(encoding="utf-8") == "two"
    assert sorted(os.listdir(tmp_path)) == ["status.json"]


def test_exclusive_never_replaces(tmp_path):
    path = tmp_path / "dictionary.toml"
    write_atomically(path, "mine", exclusive=True)
    with pytest.raises(FileExistsError):
        write_atomically(path, "theirs", exclusive=True)
    assert path.read_text(encoding="utf-8") == "mine"
    assert sorted(os.listdir(tmp_path)) == ["dictionary.toml"]


def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = write_atomically(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640
