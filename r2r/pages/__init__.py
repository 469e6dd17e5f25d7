"""Pages for people: `r2r report` (source next to each method), `r2r study-page` (a pairwise preference page),
`r2r study-results` (its votes counted), their HTML template and the pictures they copy. Read evaluate results through
`r2r.evaluation.results`; compute no metric.
"""
