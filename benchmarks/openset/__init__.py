"""The open-set protocol (``herbi-bench --openset``): hold each class out, train, score unknowns."""
