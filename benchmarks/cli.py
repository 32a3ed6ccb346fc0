"""``herbi-bench``: what each exported format keeps and costs against the original Keras model.

    herbi-bench --run runs/latest                      # every format in runs/latest/export
    herbi-bench --run runs/latest --formats tflite-int8,onnx-int8 --threads 1,4
    herbi-bench --run runs/latest --quick              # seconds per format (tests)

Writes ``<run>/bench/report.json``, ``report.md``, ``accuracy_vs_latency.png`` and
``size.png``. Exit status: 0 every requested row measured; 1 an error (one line, no
traceback); 2 a usage error (click's); 3 at least one artifact failed (its row says why, the
report is still written).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from herbi.common.errors import BenchError, HerbiError
from herbi.common.run_folder import RunFolder

EXIT_FAILED = 3


def parse_threads(text: str, cores: int) -> tuple[int, ...]:
    """``1,all`` -> (1, cores): thread counts in the order given, duplicates dropped."""
    counts: list[int] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            n = cores if part == "all" else int(part)
        except ValueError:
            n = 0
        if n < 1:
            raise BenchError(f"--threads: {part!r} is not a whole number >= 1 or 'all'")
        counts.append(n)
    if not counts:
        raise BenchError("--threads: give at least one thread count")
    return tuple(dict.fromkeys(counts))


def parse_formats(text: str, known: list[str]) -> tuple[list[str], bool]:
    """``all`` or comma-separated names -> (names, named explicitly); ``benchmark`` checks them."""
    if text.strip() == "all":
        return list(known), False
    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise BenchError("--formats: give at least one format")
    return list(dict.fromkeys(names)), True


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--run",
    "run_dir",
    default="runs/latest",
    show_default=True,
    help="Run folder: its model.keras, its export/ artifacts and its dataset are measured.",
)
@click.option(
    "--formats",
    default="all",
    show_default=True,
    help="'all' or comma-separated format names from the export registry.",
)
@click.option(
    "--threads",
    default="1,all",
    show_default=True,
    help="Thread counts to time at; 'all' = every CPU this process may use.",
)
@click.option(
    "--runs",
    type=click.IntRange(min=1),
    default=None,
    help="Least timed batch-1 calls per figure [default: 200, or 10 with --quick].",
)
@click.option(
    "--data",
    default=None,
    help="Measure on this dataset instead of the run's own (split the same way).",
)
@click.option("--quick", is_flag=True, help="A few runs per figure: seconds per format (tests).")
def main(
    run_dir: str, formats: str, threads: str, runs: int | None, data: str | None, quick: bool
) -> None:
    """Benchmark a run's Keras model and exported artifacts; write <run>/bench/."""
    started = time.perf_counter()

    def log(message: str) -> None:
        click.echo(f"[{time.perf_counter() - started:6.1f}s] {message}", err=True)

    # Imported here so that --help answers without loading scikit-learn and TensorFlow.
    from herbi.benchmarks.machine import usable_cores
    from herbi.benchmarks.measure import Settings, benchmark
    from herbi.benchmarks.report import REPORT_MD, write_report
    from herbi.benchmarks.tables import findings, summary_table
    from herbi.export.formats import FORMATS

    out = RunFolder(Path(run_dir)).bench
    try:
        names, named = parse_formats(formats, list(FORMATS))
        settings = Settings.make(parse_threads(threads, usable_cores()), runs, quick)
        report = benchmark(run_dir, names, settings, required=named, data=data, log=log)
        write_report(report, out)
    except HerbiError as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"{e.filename or out}: {e.strerror or e}") from None
    click.echo(report["dataset"]["label"])
    click.echo("\n".join([*summary_table(report), *findings(report)]))
    click.echo(f"report: {out / REPORT_MD}")
    if report["failed"]:
        click.echo(f"failed: {', '.join(report['failed'])}", err=True)
        sys.exit(EXIT_FAILED)
