"""herbi.benchmarks: what each exported format keeps and costs against the original Keras model
(``herbi-bench``, :mod:`herbi.benchmarks.cli`)."""
