"""Optional ONNX copy of the bundle's trees, for scoring services that do not run Python.

ONNX tree ensembles compare features with float32 thresholds, so a value lying between a float64
threshold and its float32 rounding can take the other branch; the PD drift this causes is measured
(`onnx_drift`) and reported, never assumed to be zero. The ONNX graph outputs the uncalibrated
probability; a service applies calibration.json and master_scale.json to it exactly as Python does.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from creditmodel.exceptions import BundleError
from creditmodel.features.matrix import FeatureSchema

INPUT_NAME = "features"
OPSET = 15


def write_onnx(booster: lgb.Booster, schema: FeatureSchema, path: Path) -> dict[str, Any]:
    """Convert the booster with onnxmltools; returns what a service needs to call the graph."""
    try:
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType
    except ImportError:
        raise BundleError.of("error.onnx.needs_packages") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = onnxmltools.convert_lightgbm(booster, initial_types=[(INPUT_NAME, FloatTensorType([None, len(schema.names)]))],
                                             zipmap=False, target_opset=OPSET)
    Path(path).write_bytes(model.SerializeToString())
    return {"input": INPUT_NAME, "input_dtype": "float32", "output": "probabilities", "output_column": 1,
            "opset": OPSET, "feature_order": "feature_schema.json", "categorical_encoding": "category position",
            "calibration_input": "log(p / (1 - p)) of the output, then calibration.json"}


def onnx_raw_score(path: str | Path, encoded: np.ndarray) -> np.ndarray:
    """Log-odds margin from the ONNX graph (float32 inside), for rows already encoded by the schema."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    prob = session.run(["probabilities"], {INPUT_NAME: encoded.astype(np.float32)})[0][:, 1].astype(np.float64)
    prob = np.clip(prob, 1e-15, 1 - 1e-15)
    return np.log(prob / (1 - prob))


def onnx_drift(bundle: Any, frame: pd.DataFrame) -> dict[str, float]:
    """Largest PD and margin difference between the ONNX graph and LightGBM on `frame`, and grade agreement."""
    onnx_path = Path(bundle.path) / "model.onnx"
    if not onnx_path.is_file():
        raise BundleError.of("error.onnx.no_model", path=bundle.path)
    bundle.check_request(frame)
    encoded = bundle.schema.encode(frame)
    raw = bundle.booster.predict(encoded, raw_score=True)
    raw_onnx = onnx_raw_score(onnx_path, encoded)
    pd_lgb, pd_onnx = bundle.calibrator.predict(raw), bundle.calibrator.predict(raw_onnx)
    return {
        "rows": float(len(frame)),
        "max_abs_pd_diff": float(np.max(np.abs(pd_lgb - pd_onnx))),
        "mean_abs_pd_diff": float(np.mean(np.abs(pd_lgb - pd_onnx))),
        "max_abs_margin_diff": float(np.max(np.abs(raw - raw_onnx))),
        "grade_agreement": float(np.mean(bundle.grade(pd_lgb) == bundle.grade(pd_onnx))),
    }
