"""herbi.common: what train, export and benchmarks share, and nothing heavier than NumPy.

Atomic files and JSON (:mod:`files`), the one error family (:mod:`errors`), the run folder's
layout (:mod:`run_folder`), the CPU facts every figure is labelled with (:mod:`cpu`), package
versions and git commit (:mod:`provenance`) and the Keras 2 bootstrap (:mod:`legacy_keras`).
``herbi.runtime`` stays standalone and imports none of it.
"""
