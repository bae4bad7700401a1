"""Regulatory numbers the models respect, defined once for the models, the configuration and refits.

A base module (imports nothing of creditmodel), so the configuration can use it without importing a stage.
"""

PD_FLOOR = 0.0005  # 0.05%: the floor on a calibrated PD (and on a grade's assigned PD) for retail and corporate exposures

__all__ = ["PD_FLOOR"]
