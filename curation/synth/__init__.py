"""Synthetic ICU lung-ultrasound study generator (the demo data source)."""
