"""Write ``bench/report.json``, ``bench/report.md`` and the plots from the report."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from herbi.benchmarks import tables
from herbi.benchmarks.mcu.tables import FAMILY_PNG, family_measured
from herbi.benchmarks.plots import plot_accuracy_latency, plot_family, plot_sizes
from herbi.benchmarks.records import BenchReport
from herbi.common.files import write_json, write_text

REPORT_JSON, REPORT_MD = "report.json", "report.md"
ACCURACY_PNG, SIZE_PNG = "accuracy_vs_latency.png", "size.png"


def section(title: str, table: list[str], note: str = "") -> list[str]:
    """A ``## title`` section with its table and a note under it; nothing without a table."""
    return [f"## {title}", "", *table, "", *([note, ""] if note else [])] if table else []


def header(report: BenchReport) -> list[str]:
    """The title and what the figures come from: data, model, machine, load, packages."""
    m, ds, s, cx = report.machine, report.dataset, report.settings, report.model_complexity
    packages = ", ".join(f"{k} {v}" for k, v in report.packages.items())
    changed = [f"- **Changed in the run folder while measured: "
               f"{', '.join(report.changed_during_run)}** — the figures are of the copies taken "
               "at the start (sha256 in report.json), not of the files there now"]  # fmt: skip
    return [
        f"# herbi benchmark: {Path(report.run).name}",
        "",
        f"- **Data: {ds.label}** — {ds.split} split, {ds.images} images; "
        f"fingerprint `{ds.fingerprint[:16]}…`"
        + ("" if ds.same_as_run else " (**not** the data the run was trained on)"),
        f"- Model: `{report.model}` — {cx.params:,} parameters, "
        f"{cx.macs_per_image / 1e6:.1f}M multiply-accumulates per image, "
        f"{cx.weights_bytes / 1024:.1f} KB of float32 weights (the .keras file: "
        f"{report.rows['keras'].size_kb:.1f} KB)",
        f"- Machine: {m.cpu_label}, {m.usable_cpus} usable CPU(s) of {m.logical_cpus} "
        f"({m.physical_cores or '?'} physical cores, nominal {m.cpu_mhz or '?'} MHz), "
        f"{m.architecture}; ISA: {', '.join(m.isa) or 'none detected'}",
        f"- Load average (1/5/15 min) at start {m.load_average_start}, "
        f"at end {m.load_average_end}: figures measured beside other busy processes are noisy",
        f"- Packages: {packages}",
        *(changed if report.changed_during_run else []),
        f"- Created {report.created} by `{report.command}`"
        + (" — **--quick: too few runs for stable figures**" if s.quick else ""),
        "",
    ]


def render(report: BenchReport) -> str:
    s = report.settings
    lines = [
        *header(report),
        *section("Summary", tables.summary_table(report)),
        *[f"- {line}" for line in tables.findings(report)],
        "",
        f"Agreement is tie-aware top-class agreement with Keras on {report.parity_images}, the "
        "images export's gate judged; Δ acc is on the test split, with the 95% interval of the "
        "paired difference (Tango score interval; exact McNemar p in report.json).",
        "",
        f"Latency is batch 1 through `Classifier.predict_proba` (uint8 pixels in, "
        f"probabilities out) for artifacts; the Keras rows time `model(x)` and "
        f"`model.predict(x)` on the same pixels scaled by 1/255. Speed-up is the Keras "
        f"direct call's p50 over the row's, at the same thread count. Cold start is a fresh "
        f"process (python start, import, load, one image classified), median of "
        f"{s.cold_start_repeats}. The *study, published* row is "
        f"{report.published.note}.",
        "",
        *details(report),
        f"![accuracy vs latency]({ACCURACY_PNG})",
        f"![size per format]({SIZE_PNG})",
    ]
    rejected = [r for r in report.measured() if r.rejected_at_export]
    if rejected:
        lines += ["", "## Rejected at export (measured here, not for deployment)", ""]
        for r in rejected:
            more = len(r.rejected_at_export) - 3
            tail = f"; and {more} more" if more > 0 else ""
            lines.append(f"- **{r.name}**: {'; '.join(r.rejected_at_export[:3])}{tail}")
    problems = [r for r in report.rows.values() if r.status != "ok"]
    if problems:
        lines += ["", "## Not measured", ""]
        lines += [f"- **{r.name}** ({r.status}): {r.error}" for r in problems]
    return "\n".join(lines) + "\n"


def details(report: BenchReport) -> list[str]:
    """The detailed tables, each with a note on how it was measured."""
    s = report.settings
    return [
        *section(
            "Latency and throughput",
            tables.latency_table(report),
            f"Each batch-1 figure: {s.batch1_budget.warmup} warm-up calls, then at least "
            f"{s.batch1_budget.runs} timed calls and {s.batch1_budget.seconds} s; "
            f"each timing process imports no TensorFlow (artifacts) and runs alone.",
        ),
        *section(
            "herbi.runtime overhead",
            tables.overhead_table(report),
            "`classify` on one preloaded uint8 image (conversion, checks, invoke, dequantization, "
            "ranking) against the engine's own call (LiteRT `set_tensor/invoke/get_tensor`, ONNX "
            "Runtime `session.run`) on the already prepared input tensor, same thread count, the "
            "two timed in alternation so that other load on the machine hits both alike.",
        ),
        *section(
            "In the browser",
            tables.browser_table(report),
            "A cold page load in a fresh headless Chromium profile served from 127.0.0.1 (no "
            "network time; the download column is what a network carries), the images chosen "
            "through the page's file input; times are the page's `performance.now()`, real "
            "time. The model runs in onnxruntime-web's WebAssembly backend on this CPU.",
        ),
        *section(
            "What the engines run of the int8 ONNX models",
            tables.engine_graph_table(report),
            "Coverage: the share of compute ops in ONNX Runtime's optimized graph (this CPU, the "
            "runtime's session options) that run as int8 kernels; float ops between quantized "
            "ones mean the model converts formats instead of computing in int8. NNAPI and CoreML: "
            "ONNX Runtime's mobile usability checker on the model as it is (nodes taken, "
            "partitions, verdict).",
        ),
        *section(
            "On a microcontroller",
            tables.microcontroller_tables(report.measured()),
            "Flash counts the model array only (TFLite Micro's interpreter and kernels add tens "
            "of KB, depending on the target and compiler); the arena is what TFLM's recording "
            "allocator measured plus the stated margin. The latency of a `tflm` row elsewhere "
            "in this report is a host figure: TFLite Micro's reference kernels on this "
            "machine's CPU, **not** a microcontroller's; the per-board latencies here are "
            "estimates from published MLPerf Tiny results (herbi.benchmarks.mcu.latency).",
        ),
        *section("Cold start and memory", tables.cold_table(report)),
        *section(
            "Quality per class (F1, change against Keras in points)",
            tables.quality_table(report),
            "Agreement is plain argmax agreement with Keras; *counting ties* also accepts an image "
            "whose Keras class is among the artifact's tied top classes (an int8 softmax has "
            "1/256 resolution, so close classes can come out equal), as export's gate does.",
        ),
    ]


def write_report(report: BenchReport, out_dir: Path) -> None:
    """All files of ``<run>/bench/``, each written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / REPORT_JSON, asdict(report))
    write_text(out_dir / REPORT_MD, render(report))
    rows, label = report.timed(), report.dataset.label
    plot_accuracy_latency(rows, str(report.settings.threads[0]), out_dir / ACCURACY_PNG, label)
    plot_sizes(rows, out_dir / SIZE_PNG, label)
    if family_measured():
        plot_family(family_measured(), out_dir / FAMILY_PNG)
