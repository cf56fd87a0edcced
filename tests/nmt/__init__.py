"""NMT tests (methods.nmt, theory.nmt, paper_repro.experiments.nmt)."""
