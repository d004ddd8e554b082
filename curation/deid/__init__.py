"""De-identification (the PHI boundary): pixel masks (masking), metadata-free H.264 (encode), the
evidence it worked (proof) and the `deidentify` stage (stage)."""
