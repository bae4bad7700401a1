"""The registered MLflow model: a pyfunc over the export bundle, so that
`mlflow.pyfunc.load_model("models:/NAME@ALIAS")` and `mlflow models serve` give the bundle's calibrated
PD and grade for each row, never the booster's uncalibrated output.

The model is logged as code (MLflow's "models from code": a three-line file naming `BundlePDModel`)
with the bundle directory as its one artifact, so loading it unpickles nothing; the bundle is verified
as `load_bundle` always does (checksums, every field; a signature by a key in
$CREDITMODEL_TRUSTED_KEYS when it has one). Rows are checked against the bundle's feature schema and a
bad one is refused with one line naming the feature. This module reads bundles only: no training code.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel
from mlflow.types.schema import AnyType, ColSpec, Schema

from creditmodel import __version__
from creditmodel.exceptions import RequestError
from creditmodel.export.bundle import PDBundle, load_bundle
from creditmodel.features.matrix import FeatureSchema

BUNDLE_ARTIFACT = "bundle"  # the name of the bundle among the model's artifacts
CODE_FILE = "creditmodel_pd_model.py"
MODEL_CODE = '''"""creditmodel's PD model: calibrated PD and grade from the export bundle logged with this model."""
import mlflow

from creditmodel.export.pyfunc import BundlePDModel

mlflow.models.set_model(BundlePDModel())
'''
OUTPUT_COLUMNS = ("pd", "grade")


class ModelInputError(MlflowException, RequestError):
    """A row does not match the bundle's feature schema: a RequestError to callers in Python, and an
    MLflow error with status 400 to clients of `mlflow models serve`."""

    def __init__(self, message: str) -> None:
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)


class BundlePDModel(PythonModel):
    """Calibrated PD and master-scale grade of each row of features, as the bundle scores them."""

    bundle: PDBundle | None = None

    def load_context(self, context: Any) -> None:
        # unsigned or signed by a key this host does not trust: accepted, as the registry vouches for
        # its models; a signature that does not verify, or any changed file, is refused all the same
        self.bundle = load_bundle(context.artifacts[BUNDLE_ARTIFACT], allow_unsigned=True)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        if self.bundle is None:
            raise RuntimeError("BundlePDModel.predict before load_context")
        if not isinstance(model_input, pd.DataFrame):
            raise ModelInputError.of("error.pyfunc.not_table", n=len(self.bundle.schema.names),
                                     type=type(model_input).__name__)
        try:
            pd_ = self.bundle.predict_pd(model_input)
        except RequestError as exc:  # the same message, in every language it is said in
            raise (ModelInputError.of(exc.text_id, **exc.fields) if exc.text_id
                   else ModelInputError.of("error.pyfunc.request", detail=str(exc))) from None
        return pd.DataFrame({"pd": pd_, "grade": self.bundle.grade(pd_).astype(str)}, index=model_input.index)


def model_signature(schema: FeatureSchema) -> ModelSignature:
    """The model's inputs (the schema's features by name; text for categorical ones) and outputs (pd,
    grade). Inputs are optional and numeric ones of any type for MLflow, so that the bundle's own check
    (one line naming the feature: missing, null, not a number, out of range, unknown category) answers a
    bad row rather than MLflow's message, which quotes the whole input."""
    inputs = Schema([ColSpec("string" if n in schema.categories else AnyType(), n, required=False)
                     for n in schema.names])
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("double", "pd"), ColSpec("string", "grade")]))


def pip_requirements() -> list[str]:
    """What the model needs to load: creditmodel (the bundle reader) and the libraries it scores with."""
    from importlib.metadata import version

    return [f"creditmodel=={__version__}", *(f"{name}=={version(name)}" for name in
                                              ("mlflow", "lightgbm", "numpy", "pandas", "cryptography"))]


def log_pd_model(bundle_dir: str | Path, *, name: str = "model", input_example: pd.DataFrame | None = None) -> Any:
    """Log the bundle in `bundle_dir` as an MLflow pyfunc model into the active run; return its ModelInfo."""
    bundle = load_bundle(bundle_dir, allow_unsigned=True)  # refuse a bad bundle before anything is logged
    example = None if input_example is None else input_example[list(bundle.schema.names)]
    with tempfile.TemporaryDirectory() as tmp:
        code = Path(tmp) / CODE_FILE
        code.write_text(MODEL_CODE, encoding="utf-8")
        return mlflow.pyfunc.log_model(name=name, python_model=str(code),
                                       artifacts={BUNDLE_ARTIFACT: str(Path(bundle_dir).resolve())},
                                       signature=model_signature(bundle.schema), input_example=example,
                                       pip_requirements=pip_requirements())
