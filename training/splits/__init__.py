"""Patient-grouped, multi-label stratified splits (the `split` stage) and their leakage guards.

- grouped: patient-level label counts, iterative stratification + local-search repair, roles
  (temporal, internal_test, fold0..k), the seed's patient KFold for comparison;
- report: per role and pattern balance, fold prevalence spread, pattern-pair coverage;
- guards: patient/video in two roles, temporal leakage, near-duplicate videos (perceptual hash);
- stage: `luskit split` (params.yaml `split:`) -> artifacts/splits/.
"""
