"""Tests of ``paper_repro.data``."""
