"""Models: the scoring models (LightGBM, scorecard), calibration, the master scale, and PDModel composing them.

Names are imported on first use, so importing one model does not load the others' libraries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from creditmodel._lazy import lazy_attributes

_WHERE = {
    "PDModel": "creditmodel.models.pd_model",
    "LightGBMPD": "creditmodel.models.gbm",
    "ScorecardPD": "creditmodel.models.scorecard",
    "PDCalibrator": "creditmodel.models.calibration",
    "PD_FLOOR": "creditmodel.models.calibration",
    "long_run_average": "creditmodel.models.calibration",
    "MasterScale": "creditmodel.models.master_scale",
    "Explanation": "creditmodel.models.explanation",
    "reason_codes": "creditmodel.models.explanation",
}

__all__ = [  # the same names as _WHERE, spelled out for linters
    "PDModel", "LightGBMPD", "ScorecardPD", "PDCalibrator", "PD_FLOOR", "long_run_average", "MasterScale",
    "Explanation", "reason_codes",
]

__getattr__, __dir__ = lazy_attributes(__name__, _WHERE)

if TYPE_CHECKING:
    from creditmodel.models.calibration import PD_FLOOR, PDCalibrator, long_run_average
    from creditmodel.models.explanation import Explanation, reason_codes
    from creditmodel.models.gbm import LightGBMPD
    from creditmodel.models.master_scale import MasterScale
    from creditmodel.models.pd_model import PDModel
    from creditmodel.models.scorecard import ScorecardPD
