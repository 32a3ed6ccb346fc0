"""``herbi-export``: a trained Keras model -> checked TFLite / ONNX artifacts + a report.

Exit status: 0 all artifacts accepted; 1 an error (one line, no traceback), including a
format whose conversion failed (the others are still built and reported); 2 a usage error
(click's); 3 at least one artifact rejected by the graph checks or the accuracy gate (its
files are kept as ``*.rejected`` and ``export_report.json`` says why).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

import click

from herbi.common.boards import limits
from herbi.common.errors import HerbiError
from herbi.common.legacy_keras import quiet_tensorflow
from herbi.common.options import keep_option, score_option
from herbi.export.calibration import CALIBRATION_IMAGES
from herbi.export.formats import FORMATS, select
from herbi.export.gate import GateOptions

if TYPE_CHECKING:
    from herbi.export.api import ExportOptions
    from herbi.export.report import ExportReport

EXIT_REJECTED = 3
TABLE_ROW = "{:<16} {:>8} {:>9} {:>8} {:>20} {:>5} {:>7} {:>9} {:>10}  {}"


def table(report: ExportReport) -> str:
    """The per-artifact summary printed after export: the gate's evidence (validation accuracy,
    the paired drop with its 95% interval and p-value, agreement on the parity images), then
    the test split, which is only reported (Keras' own test accuracy is on the last line)."""
    cols = ("format", "size KB", "val Keras", "val art.", "drop [95% CI]", "p", "agree",
            "test art.", "test agree", "status")  # fmt: skip
    rows = [cols]
    for name, a in report.artifacts.items():
        size = f"{a.size_kb:.1f}" if a.size_kb is not None else "-"
        nums = ("-",) * 7
        if a.gate:
            g = a.gate.paired_val
            lo, hi = g.interval_points
            nums = (f"{a.val.accuracy_keras:.3f}", f"{a.val.accuracy_artifact:.3f}",
                    f"{g.drop_points:+.1f} [{lo:+.1f}, {hi:+.1f}]", f"{g.p_value:.2g}",
                    f"{a.gate.agreement.agreement:.4f}", f"{a.test.accuracy_artifact:.3f}",
                    f"{a.test.agreement:.3f}")  # fmt: skip
        rows.append((name, size, *nums, a.status))
    lines = [TABLE_ROW.format(*row) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    if report.keras:
        lines.append(f"Keras test accuracy {report.keras.test_accuracy:.3f}")
    lines.append(f"agree: on {report.gate.parity_images}; drop and p: paired, validation")
    return "\n".join(line.rstrip() for line in lines)


def export_options(
    family: str,
    quantize: str | None,
    qat: bool,
    fits: str | None,
    max_arena: str | None,
    max_flash: str | None,
    **options: object,
) -> ExportOptions:
    """The options click parsed, checked, as one value: click names its keywords after the
    fields of ExportOptions and GateOptions, so each goes where its name says."""
    from herbi.export.api import ExportOptions

    formats = select(family, quantize, qat)
    gate = GateOptions(**{f.name: options.pop(f.name) for f in fields(GateOptions)})
    device = limits(fits, max_arena, max_flash)
    return ExportOptions(formats, gate_options=gate, limits=device, **options)


def gate_option(flag: str, help: str, field: str = "") -> Callable:
    """An option of the gate: its keyword is the GateOptions field of its name, its default
    and type that field's."""
    field = field or flag[2:].replace("-", "_")
    default = getattr(GateOptions(), field)
    return click.option(flag, field, type=type(default), default=default, help=help)


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--model", "model_path", required=True, help="Run folder or .keras file.")
@click.option(
    "--format",
    "family",
    default="tflite",
    help=f"tflite, onnx, all, or one registry name ({', '.join(FORMATS)}).",
)
@click.option(
    "--quantize",
    help="int8|float16|dynamic|none (tflite, default int8) or none|int8 (onnx, default none).",
)
@click.option("--qat", is_flag=True, help="Quantization-aware training, then int8 TFLite.")
@click.option("--out", "out_dir", help="Output folder [default: <run>/export].")
@click.option("--data", help="Dataset to split and compare on (needed for a .keras file).")
@click.option(
    "--calibration-size",
    type=int,
    default=CALIBRATION_IMAGES,
    help="Stratified train images used to calibrate int8 ranges.",
)
@click.option("--qat-epochs", type=int, default=3)
@click.option("--check/--no-check", "parity_check", default=True, help="Parity check and gate.")
@gate_option(
    "--min-agreement",
    "Refuse below this agreement with Keras on the parity images (validation + train).",
)
@gate_option(
    "--max-drop", "Accuracy points on validation; refuses only a statistically significant drop."
)
@gate_option("--alpha", "Significance level of the exact McNemar test that --max-drop needs.")
@gate_option("--hard-limit", "Refuse when the drop's 95% upper bound exceeds this many points.")
@gate_option(
    "--parity-train-images",
    "Train images (not the calibration ones) added to validation for agreement.",
    "train_images",
)
@click.option(
    "--reduce-range",
    type=click.Choice(["auto", "on", "off"]),
    default="auto",
    help="ONNX int8: 7-bit weights for CPUs without VNNI; auto decides from this machine's CPU.",
)
@click.option(
    "--max-arena",
    help="Microcontroller formats: refuse a tensor arena (measured + margin) above this, e.g. 256KB.",
)
@click.option(
    "--max-flash",
    help="Microcontroller formats: refuse a model array above this many bytes, e.g. 1MB.",
)
@click.option(
    "--fits",
    metavar="BOARD",
    help="Microcontroller formats: refuse what does not fit BOARD (e.g. stm32l432kc), its SRAM and flash less a reserve for TFLM and the application (herbi.common.boards); with --max-arena/--max-flash the tighter limit counts.",
)
@score_option(
    None, "The unknown score every artifact computes [default: the run's, else cos_proto]."
)
@keep_option(
    None,
    "Share of known-class images each artifact's unknown threshold keeps, guaranteed by "
    "split-conformal calibration on validation images [default: the run's, else 0.95].",
)
@click.option("--debug-quant", is_flag=True, help="Per-layer int8 error table as CSV.")
@click.option("--verbose", is_flag=True, help="Show TensorFlow's informational start-up lines.")
def main(model_path: str, out_dir: str | None, data: str | None, verbose: bool, **cli) -> None:
    """Export a trained model to deployable artifacts and prove each still does its job."""
    quiet_tensorflow(verbose)  # before TensorFlow is first imported
    try:
        options = export_options(**cli)
        from herbi.common.run_folder import EXPORT_REPORT
        from herbi.export.api import check_writable, export_model
        from herbi.export.source import default_out, load_source, locate

        locate(model_path, data)
        out = default_out(model_path) if out_dir is None else Path(out_dir)
        check_writable(out)  # before minutes of loading and converting
        source = load_source(model_path, data)
        report = export_model(source, out, options, log=lambda msg: click.echo(msg, err=True))
    except HerbiError as e:
        raise click.ClickException(str(e)) from None
    click.echo(table(report))
    click.echo(f"report: {out}/{EXPORT_REPORT}")
    for name in report.names("failed"):
        click.echo(f"Error: {report.artifacts[name].reasons[0]}", err=True)
    if report.names("failed"):
        sys.exit(1)
    if report.names("rejected"):
        click.echo(f"rejected: {', '.join(report.names('rejected'))}", err=True)
        sys.exit(EXIT_REJECTED)
