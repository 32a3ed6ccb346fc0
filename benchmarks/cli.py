"""``herbi-bench``: what each exported format keeps and costs against the original Keras model.

    herbi-bench --run runs/latest                      # every format in runs/latest/export
    herbi-bench --run runs/latest --formats tflite-int8,onnx-int8 --threads 1,4
    herbi-bench --run runs/latest --quick              # seconds per format (tests)
    herbi-bench --openset data/animals --seeds 0,1,2 --epochs 40 --out runs/openset \
        --unknowns data/other-things                   # the open-set protocol (issue 20)

Writes ``<run>/bench/report.json``, ``report.md``, ``accuracy_vs_latency.png`` and
``size.png``; with ``--openset``, ``<out>/openset.json`` and ``openset.md`` (see
``herbi.benchmarks.openset``). Exit status: 0 every requested row measured; 1 an error (one
line, no traceback); 2 a usage error (click's); 3 at least one artifact failed (its row says
why, the report is still written).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from herbi.common.errors import BenchError, HerbiError
from herbi.common.legacy_keras import quiet_tensorflow
from herbi.common.log import Log
from herbi.common.options import keep_option, score_option
from herbi.common.run_folder import RunFolder
from herbi.runtime.unknown import DEFAULT_KEEP, DEFAULT_SCORE

if TYPE_CHECKING:
    from herbi.benchmarks.openset.folds import Protocol

EXIT_FAILED = 3
# Options of one mode only: the benchmark of a run, or the open-set protocol (--openset).
BENCH_ONLY = ("run_dir", "formats", "threads", "runs", "data", "quick")
OPENSET_ONLY = ("seeds", "epochs", "preset", "classes", "unknowns", "keep", "score", "out")


def parse_list(text: str, option: str) -> list[str]:
    """``a,b,c`` -> its items (duplicates dropped); an empty list is an error naming ``option``."""
    items = list(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    if not items:
        raise BenchError(f"{option}: give at least one value")
    return items


def parse_threads(text: str, cores: int) -> tuple[int, ...]:
    """``1,all`` -> (1, cores): thread counts in the order given, duplicates dropped."""
    counts: list[int] = []
    for part in parse_list(text, "--threads"):
        try:
            n = cores if part == "all" else int(part)
        except ValueError:
            n = 0
        if n < 1:
            raise BenchError(f"--threads: {part!r} is not a whole number >= 1 or 'all'")
        counts.append(n)
    return tuple(dict.fromkeys(counts))


def parse_formats(text: str, known: list[str]) -> tuple[list[str], bool]:
    """``all`` or comma-separated names -> (names, named explicitly); ``benchmark`` checks them."""
    return (list(known), False) if text.strip() == "all" else (parse_list(text, "--formats"), True)


def make_protocol(data: str, seeds: str, classes: str | None, **options) -> Protocol:
    """The protocol ``herbi-bench --openset`` asks for, every argument checked; ``options``
    are Protocol's remaining fields (epochs, preset, keep, score, unknowns, out)."""
    from herbi.benchmarks.openset.folds import Protocol, classes_of

    root = Path(data)
    if not root.is_dir():
        raise BenchError(f"--openset {data}: no such folder")
    known = classes_of(root)
    held = parse_list(classes, "--classes") if classes else known
    strange = [c for c in held if c not in known]
    if strange:
        raise BenchError(f"--classes: {strange[0]!r} is not a class of {root} ({', '.join(known)})")
    items = parse_list(seeds, "--seeds")
    try:
        numbers = tuple(int(s) for s in items)
    except ValueError:
        raise BenchError(f"--seeds {seeds!r}: give whole numbers, e.g. 0,1,2") from None
    for folder in options["unknowns"]:
        if not Path(folder).is_dir():
            raise BenchError(f"--unknowns {folder}: no such folder")
    unknowns = tuple(Path(u) for u in options.pop("unknowns"))
    out = Path(options.pop("out"))
    return Protocol(root, tuple(held), numbers, unknowns=unknowns, out=out, **options)


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option(
    "--run",
    "run_dir",
    default="runs/latest",
    help="Run folder: its model.keras, its export/ artifacts and its dataset are measured.",
)
@click.option(
    "--formats",
    default="all",
    help="'all' or comma-separated format names from the export registry.",
)
@click.option(
    "--threads",
    default="1,all",
    help="Thread counts to time at; 'all' = every CPU this process may use.",
)
@click.option(
    "--runs",
    type=click.IntRange(min=1),
    help="Least timed batch-1 calls per figure [default: 200, or 10 with --quick].",
)
@click.option(
    "--data", help="Measure on this dataset instead of the run's own (split the same way)."
)
@click.option("--quick", is_flag=True, help="A few runs per figure: seconds per format (tests).")
@click.option(
    "--openset",
    metavar="DATA_DIR",
    help="Run the open-set protocol on this image folder (train/<class>, test/<class>): hold "
    "each class out in turn, train on the others, measure float32 and int8 artifacts.",
)
@click.option("--seeds", default="0,1,2", help="--openset: training seeds.")
@click.option(
    "--epochs", type=click.IntRange(min=1), default=40, help="--openset: fixed epochs per training."
)
@click.option(
    "--preset",
    type=click.Choice(["full", "cpu", "smoke"]),
    help="--openset: herbi-train's preset [default: herbi-train's].",
)
@click.option("--classes", help="--openset: hold out only these classes, e.g. cat,dog.")
@click.option(
    "--unknowns",
    multiple=True,
    metavar="DIR",
    help="--openset: a folder of images of none of the classes, measured as unknowns (repeatable).",
)
@keep_option(DEFAULT_KEEP, "--openset: share of known images each unknown threshold keeps.")
@score_option(DEFAULT_SCORE, "--openset: the unknown score the artifacts compute.")
@click.option(
    "--out",
    default="runs/openset",
    help="--openset: folder for the runs, openset.json and openset.md (reused: resumes).",
)
def main(openset: str | None, **cli) -> None:
    """Benchmark a run's Keras model and exported artifacts; write <run>/bench/. With
    --openset, run the open-set protocol instead; write <out>/openset.md."""
    started = time.perf_counter()

    def log(message: str) -> None:
        click.echo(f"[{time.perf_counter() - started:6.1f}s] {message}", err=True)

    check_mode(click.get_current_context(), openset)
    quiet_tensorflow()  # before TensorFlow is first imported (the Keras reference, --openset)
    if openset is not None:
        openset_mode(openset, log, **{k: cli[k] for k in OPENSET_ONLY})
    else:
        bench_mode(**{k: cli[k] for k in BENCH_ONLY}, log=log)


def check_mode(ctx: click.Context, openset: str | None) -> None:
    """An option of the other mode is a usage error naming it, not silently ignored."""
    other = BENCH_ONLY if openset is not None else OPENSET_ONLY
    for name in other:
        if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE:
            flag = next(p.opts[0] for p in ctx.command.params if p.name == name)
            raise click.UsageError(
                f"{flag}: {'not with --openset' if openset else 'only with --openset'}"
            )


def openset_mode(data: str, log: Log, **options: object) -> None:
    """The open-set protocol; one line per error, no traceback."""
    from herbi.benchmarks.openset.protocol import run_protocol
    from herbi.benchmarks.openset.report import OPENSET_MD

    try:
        protocol = make_protocol(data, **options)
        run_protocol(protocol, log)
    except HerbiError as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"{e.filename or options['out']}: {e.strerror or e}") from None
    click.echo((protocol.out / OPENSET_MD).read_text())
    click.echo(f"report: {protocol.out / OPENSET_MD}")


def bench_mode(
    run_dir: str,
    formats: str,
    threads: str,
    runs: int | None,
    data: str | None,
    quick: bool,
    log: Log,
) -> None:
    """Benchmark a run's artifacts (the default mode)."""
    # Imported here so that --help answers without loading scikit-learn and TensorFlow.
    from herbi.benchmarks.measure import benchmark
    from herbi.benchmarks.records import Settings
    from herbi.benchmarks.report import REPORT_MD, write_report
    from herbi.benchmarks.tables import findings, summary_table
    from herbi.benchmarks.timing.machine import usable_cores
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
    click.echo(report.dataset.label)
    click.echo("\n".join([*summary_table(report), *findings(report)]))
    click.echo(f"report: {out / REPORT_MD}")
    if report.failed:
        click.echo(f"failed: {', '.join(report.failed)}", err=True)
        sys.exit(EXIT_FAILED)
