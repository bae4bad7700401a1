"""creditmodel: a research kit for probability-of-default models of small and micro enterprises.

Stages, each a sub-package, data flowing left to right only::

    data -> features -> models -> validation -> tracking -> export -> pricing

What an analyst imports sits here (imported on first use, so ``import creditmodel`` stays light)::

    from creditmodel import PDModel, LightGBMPD, MasterScale, build_config, run_pipeline, load_bundle
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from creditmodel._lazy import lazy_attributes

__version__ = "0.1.0"

_WHERE = {
    "PDModel": "creditmodel.models.pd_model",
    "LightGBMPD": "creditmodel.models.gbm",
    "ScorecardPD": "creditmodel.models.scorecard",
    "PDCalibrator": "creditmodel.models.calibration",
    "MasterScale": "creditmodel.models.master_scale",
    "long_run_average": "creditmodel.models.calibration",
    "FeatureSchema": "creditmodel.features.matrix",
    "build_config": "creditmodel.config",
    "load_config": "creditmodel.config",
    "RunConfig": "creditmodel.config",
    "generate_world": "creditmodel.data.synthetic",
    "run_pipeline": "creditmodel.pipeline",
    "train_models": "creditmodel.pipeline",
    "load_bundle": "creditmodel.export.bundle",
    "write_bundle": "creditmodel.export.bundle",
    "price_with_bundle": "creditmodel.pricing.engine",
    "CreditModelError": "creditmodel.exceptions",
}

__all__ = [  # the same names as _WHERE, spelled out for linters
    "__version__", "PDModel", "LightGBMPD", "ScorecardPD", "PDCalibrator", "MasterScale", "long_run_average",
    "FeatureSchema", "build_config", "load_config", "RunConfig", "generate_world", "run_pipeline",
    "train_models", "load_bundle", "write_bundle", "price_with_bundle", "CreditModelError",
]

__getattr__, __dir__ = lazy_attributes(__name__, _WHERE)

if TYPE_CHECKING:
    from creditmodel.config import RunConfig, build_config, load_config
    from creditmodel.data.synthetic import generate_world
    from creditmodel.exceptions import CreditModelError
    from creditmodel.export.bundle import load_bundle, write_bundle
    from creditmodel.features.matrix import FeatureSchema
    from creditmodel.models.calibration import PDCalibrator, long_run_average
    from creditmodel.models.gbm import LightGBMPD
    from creditmodel.models.master_scale import MasterScale
    from creditmodel.models.pd_model import PDModel
    from creditmodel.models.scorecard import ScorecardPD
    from creditmodel.pipeline import run_pipeline, train_models
    from creditmodel.pricing.engine import price_with_bundle
