"""The main job end to end on synthetic data (`spider demo`, what `make demo` runs).

An orchestrator at the top of the import graph: it drives every other package through the
`spider` command line, and nothing imports it.
"""
