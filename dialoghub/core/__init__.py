"""Shared infrastructure below every stage: paths, the Hub environment, hardware, processes, provenance, recipe
parsing, files."""
