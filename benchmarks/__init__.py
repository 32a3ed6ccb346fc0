"""herbi.benchmarks: what each exported format keeps and costs against the original Keras model.

``herbi-bench --run RUN_DIR`` measures every artifact in ``RUN_DIR/export`` and the Keras model
it came from on the same test split and the same machine in one run, and writes
``RUN_DIR/bench/report.{json,md}`` and two plots. Artifacts are timed in fresh worker processes
that import herbi.runtime and never TensorFlow, whose thread pools would inflate the figures.
"""
