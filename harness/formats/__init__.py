"""Writers of plain values that run and compare share: SVG charts, JUnit XML.

Formatting only: these modules take frozen values and return text, and know
nothing of configs, guests, runs or comparisons (they import harness.model,
harness.errors, harness.atomic, harness.results and the standard library,
never harness.run, harness.compare, harness.config or harness.machine), so
a report written by `run` and one written by `compare` read the same.
"""
