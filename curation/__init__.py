"""Curation: ingest, de-identification, clip extraction and the synthetic demo source."""
