"""Discrimination and calibration metrics for validation: those of :mod:`creditmodel.models.metrics`.

They live with the models (model search and segment comparison rank by AUC, and a stage never
imports from a stage to its right); validation reads them under this name as well.
"""

from creditmodel.models.metrics import auc, brier, gini, ks, performance

__all__ = ["auc", "brier", "gini", "ks", "performance"]
