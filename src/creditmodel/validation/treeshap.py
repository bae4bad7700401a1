"""The tabulated TreeSHAP now lives beside the models (:mod:`creditmodel.models.treeshap`), where scoring
and export can use it; re-exported here for code that imported it from validation."""

from creditmodel.models.treeshap import TreeShap, explainer, shap_values  # noqa: F401

__all__ = ["TreeShap", "explainer", "shap_values"]
