"""herbi.common: what train, export and benchmarks share, and nothing heavier than NumPy.

``herbi.runtime`` stays standalone and imports none of it.
"""
