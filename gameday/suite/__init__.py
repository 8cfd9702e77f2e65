"""`gameday suite`: many experiments run as one, with one report, one score and one exit code.

`spec` reads and checks a suite file, `runner` runs its experiments on one lab (or on AWS),
restoring what each one changed before the next (`restore`), `score` turns the runs'
summary.json files into the resilience score (docs/resilience-score.md), `report` writes the
suite's summary.json, junit.xml and report, `trend` reads earlier suites for the baseline and
`gameday history`.
"""
