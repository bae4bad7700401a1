"""The public API: what an analyst imports from `creditmodel`, loaded on first use so the import stays light."""

import subprocess
import sys

import pytest

import creditmodel
import creditmodel.models


def test_import_creditmodel_loads_no_modelling_library():
    code = ("import sys, creditmodel; heavy = [m for m in ('lightgbm', 'sklearn', 'matplotlib', 'mlflow', 'pandas') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("package", [creditmodel, creditmodel.models], ids=lambda p: p.__name__)
def test_every_public_name_resolves(package):
    for name in package.__all__:
        assert getattr(package, name) is not None, name
    assert set(package.__all__) <= set(dir(package)) | {"__version__"}
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        package.nothing_here  # noqa: B018


def test_top_level_names_are_the_library_objects():
    from creditmodel.export.bundle import load_bundle
    from creditmodel.models.pd_model import PDModel

    assert creditmodel.PDModel is PDModel and creditmodel.load_bundle is load_bundle
