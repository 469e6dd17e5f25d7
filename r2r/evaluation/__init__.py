"""Evaluation: `r2r evaluate` (inputs: what is paired with what; run: the metrics over them; results: the one reader
and writer of the evaluate JSON; table: evaluate-table), and `r2r ablate` (variants through translate-dataset and
evaluate). Metric arithmetic lives in `r2r.metrics`; pages that show results live in `r2r.pages`.
"""
