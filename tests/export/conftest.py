"""Fixtures of the bundle tests."""

import shutil

import pytest


@pytest.fixture
def bundle_copy(demo_run, tmp_path):
    """A private copy of the demo run's (signed) bundle, to edit or break."""
    dst = tmp_path / "bundle"
    shutil.copytree(demo_run["result"].bundle_dir, dst)
    return dst
