"""Evaluation of trained models: metrics with patient-bootstrap CIs, DeLong comparisons, calibration,
video pooling, label-error ranking, figures and the comparison report (the `evaluate` stage)."""
