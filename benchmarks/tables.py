"""The Markdown tables of ``bench/report.md``, built with :mod:`herbi.common.markdown`.

A cell is a function of one table item (a row, or a row with a thread count and its figures):
a column's header and format sit on one line, and every table is built the same way.
"""

from __future__ import annotations

from collections.abc import Callable

from herbi.benchmarks.mcu.tables import boards_section, family_section, unknown_cost_table
from herbi.benchmarks.records import BenchReport, Row
from herbi.benchmarks.timing.latency import Timing
from herbi.common.markdown import NONE, Column, ms, pct, row, signed, table
from herbi.export.formats import FORMATS


def times(x: float | None) -> str:
    return NONE if x is None else f"{x:.2f}×"


def name(r: Row) -> str:
    if r.kind == "keras":
        return f"**{r.name}**"
    return r.name + (" (rejected at export)" if r.rejected_at_export else "")


def per_thread(report: BenchReport) -> list[tuple[Row, str, Timing]]:
    """(row, threads, timing) for every measured row and thread count."""
    return [(r, t, tm) for r in report.timed() for t, tm in r.timing.items()]


def change(r: Row) -> str:
    """Accuracy change against Keras on the test split with its paired 95% interval."""
    delta = signed(r.quality.accuracy_change_points)
    if r.kind == "keras":
        return delta
    low, high = r.quality.paired.interval_points  # of the drop, Keras minus artifact
    return f"{delta} [{-high:+.1f}, {-low:+.1f}]"


def summary_table(report: BenchReport) -> list[str]:
    """The at-a-glance table: one row per measured format, then the published reference."""
    threads = report.settings.threads
    one, many = str(threads[0]), str(threads[-1])
    batch = report.settings.large_batch

    def b1(r: Row, p99: bool) -> str:
        if r.browser:  # the page's own clock: per image in Chromium, no thread setting
            return f"{ms(r.browser.per_image_p90_ms if p99 else r.browser.per_image_ms)} (browser)"
        tflm = " (this host, TFLM ref. kernels)" if r.backend == "tflm" else ""
        timing = r.timing[one].batch1
        return ms(timing.p99_ms if p99 else timing.p50_ms) + tflm

    def timing(cell: Callable) -> Callable:
        return lambda r: cell(r) if r.timing else NONE

    columns: list[Column] = [
        ("format", name),
        ("size KB", lambda r: f"{r.size_kb:.1f}"),
        ("size vs Keras", lambda r: f"{r.size_ratio:.3f}×"),
        ("accuracy [95% CI]", lambda r: f"{pct(r.quality.scores.accuracy)} "
         f"[{100 * r.quality.scores.accuracy_ci95[0]:.1f}, "
         f"{100 * r.quality.scores.accuracy_ci95[1]:.1f}]"),
        ("Δ acc, points [95% CI]", change),
        ("agreement (parity images)", lambda r: NONE if r.quality.agreement_parity_images
         is None else f"{r.quality.agreement_parity_images:.4f}"),
        (f"p50 ms ({one} thr)", lambda r: b1(r, p99=False)),
        (f"p99 ms ({one} thr)", lambda r: b1(r, p99=True)),
        ("speed-up vs Keras", timing(lambda r: times(r.timing[one].speedup_vs_keras))),
        (f"images/s (batch {batch}, {many} thr)",
         timing(lambda r: f"{r.timing[many].throughput.images_per_s:.0f}")),
        ("cold start ms", lambda r: f"{r.browser.load_to_first_result_ms:.0f} (page load)"
         if r.browser else f"{r.cold_start.cold_start_ms:.0f}"),
    ]  # fmt: skip
    lines = table(columns, report.measured())
    published = report.published.test_accuracy
    if published:
        stage, acc = list(published.items())[-1]
        cells = [f"*study, published ({stage})*", NONE, NONE, f"*{pct(acc)}*"]
        lines.append(row(cells + [NONE] * (len(columns) - 4)))
    return lines


def latency_table(report: BenchReport) -> list[str]:
    batch = report.settings.large_batch
    columns: list[Column] = [
        ("format", lambda i: i[0].name),
        ("threads", lambda i: i[1]),
        ("p50 ms", lambda i: ms(i[2].batch1.p50_ms)),
        ("p90 ms", lambda i: ms(i[2].batch1.p90_ms)),
        ("p99 ms", lambda i: ms(i[2].batch1.p99_ms)),
        ("runs", lambda i: str(i[2].batch1.runs)),
        (f"images/s (batch {batch})", lambda i: f"{i[2].throughput.images_per_s:.0f}"),
        ("GMAC/s batch 1", lambda i: f"{i[2].gmacs_batch1:.2f}"),
        (f"GMAC/s batch {batch}", lambda i: f"{i[2].gmacs_large_batch:.2f}"),
        ("speed-up vs Keras", lambda i: times(i[2].speedup_vs_keras)),
    ]
    return table(columns, per_thread(report))


def overhead_table(report: BenchReport) -> list[str]:
    columns: list[Column] = [
        ("format", lambda i: i[0].name),
        ("threads", lambda i: i[1]),
        ("classify p50 ms", lambda i: ms(i[2].classify.p50_ms)),
        ("bare engine call p50 ms", lambda i: ms(i[2].bare.p50_ms)),
        ("herbi overhead µs", lambda i: f"{1e3 * i[2].overhead_ms:.0f}"),
        ("same output", lambda i: "yes" if i[2].bare_output_matches else "**no**"),
    ]
    overheads = [(r, t, tm.overhead) for r, t, tm in per_thread(report) if tm.overhead]
    return table(columns, overheads)


def cold_table(report: BenchReport) -> list[str]:
    columns: list[Column] = [
        ("format", lambda r: r.name),
        ("cold start ms", lambda r: f"{r.cold_start.cold_start_ms:.0f}"),
        ("python start", lambda r: f"{r.cold_start.interpreter_start_ms:.0f}"),
        ("import", lambda r: f"{r.cold_start.import_ms:.0f}"),
        ("load", lambda r: f"{r.cold_start.load_ms:.0f}"),
        ("first prediction", lambda r: f"{r.cold_start.first_prediction_ms:.0f}"),
        ("peak RSS MB", lambda r: f"{r.cold_start.peak_rss_mb:.0f}"),
        ("TensorFlow in timing process", lambda r: "yes" if r.tensorflow_imported else "no"),
    ]
    return table(columns, report.timed())


def browser_table(report: BenchReport) -> list[str]:
    """Web pages in headless Chromium: what a phone downloads, and the page's own clock."""
    columns: list[Column] = [
        ("format", lambda r: r.name),
        ("download KB (gzipped)", lambda r: f"{r.browser.download_bytes / 1024:.0f} "
         f"({r.browser.download_gzip_bytes / 1024:.0f})"),
        ("model KB", lambda r: f"{r.browser.download_parts['model'][0] / 1024:.0f}"),
        ("model ready ms", lambda r: f"{r.browser.model_ready_ms:.0f}"),
        ("load to first result ms", lambda r: f"{r.browser.load_to_first_result_ms:.0f}"),
        ("first image ms", lambda r: f"{r.browser.first_image_ms:.1f}"),
        ("per image ms, median (p90)",
         lambda r: f"{r.browser.per_image_ms:.2f} ({r.browser.per_image_p90_ms:.2f})"),
        ("images", lambda r: str(r.browser.images)),
        ("browser", lambda r: r.browser.browser),
    ]  # fmt: skip
    return table(columns, [r for r in report.measured() if r.browser], optional=True)


def quality_table(report: BenchReport) -> list[str]:
    def f1(cls: str) -> Callable:
        return lambda r: (f"{r.quality.scores.per_class[cls].f1:.3f} "
                          f"({signed(r.quality.per_class_f1_change_points[cls])})")  # fmt: skip

    columns: list[Column] = [
        ("format", lambda r: r.name),
        ("macro F1 (Δ points)",
         lambda r: f"{r.quality.scores.macro_f1:.3f} ({signed(r.quality.macro_f1_change_points)})"),
        *[(cls, f1(cls)) for cls in report.dataset.class_names],
        ("max |Δp|", lambda r: f"{r.quality.max_prob_diff:.4f}"),
        ("mean |Δp|", lambda r: f"{r.quality.mean_prob_diff:.5f}"),
        ("agreement counting ties",
         lambda r: f"{r.quality.agreement_tie_aware:.3f} ({r.quality.tied_images} tied)"),
    ]  # fmt: skip
    return table(columns, report.measured())


def findings(report: BenchReport) -> list[str]:
    """What this machine says in words: the fastest artifact export accepted, and each int8
    format's speed-up over its float32 partner (it depends on the CPU: VNNI makes int8 fast)."""
    one = str(report.settings.threads[0])
    cpu = report.machine.cpu_label
    rows = {r.name: r for r in report.timed() if r.kind == "artifact"}
    p50 = {n: r.timing[one].batch1.p50_ms for n, r in rows.items()}
    lines = []
    accepted = [n for n, r in rows.items() if not r.rejected_at_export]
    if accepted:
        best = min(accepted, key=p50.get)
        lines.append(f"Fastest artifact that passed export's gate on {cpu}: **{best}**, "
                     f"{ms(p50[best])} ms p50 at {one} thread(s).")  # fmt: skip
    float32 = {f.family: f.name for f in FORMATS.values() if f.quantize == "none"}
    for fmt in FORMATS.values():
        int8, partner = rows.get(fmt.name), rows.get(float32.get(fmt.family, ""))
        if fmt.quantize != "int8" or int8 is None or partner is None:
            continue
        speedup = {t: partner.timing[t].batch1.p50_ms / int8.timing[t].batch1.p50_ms
                   for t in int8.timing if t in partner.timing}  # fmt: skip
        said = ", ".join(f"{x:.2f}x at {t} thread(s)" for t, x in speedup.items())
        lines.append(f"{fmt.name} against {partner.name} (batch-1 p50): {said}.")
        if min(speedup.values()) < 1.05:
            lines[-1] += (f" On this CPU int8 buys size here ({int8.size_kb:.0f} against "
                          f"{partner.size_kb:.0f} KB), not speed.")  # fmt: skip
    return lines


def microcontroller_tables(rows: list[Row]) -> list[str]:
    """Microcontroller artifacts among measured ``rows``: flash, arena and MACs, which common
    boards they fit with an estimated latency on each, and the fast recipe's size family."""
    rows = [r for r in rows if r.footprint]
    columns: list[Column] = [
        ("format", lambda r: r.name),
        ("flash KB (model array)", lambda r: f"{r.footprint.flash_bytes / 1024:.1f}"),
        ("arena KB, declared (measured)", lambda r: f"{r.footprint.declared_arena_bytes / 1024:.1f}"
         f" ({r.footprint.arena_bytes / 1024:.1f})"),
        ("MACs per image", lambda r: f"{r.footprint.macs / 1e6:.1f}M"),
        ("ops", lambda r: ", ".join(r.footprint.ops)),
        ("accuracy", lambda r: pct(r.quality.scores.accuracy)),
        ("agreement", lambda r: f"{r.quality.agreement:.3f}"),
    ]  # fmt: skip
    lines = table(columns, rows, optional=True)
    lines += unknown_cost_table([(r.name, r.unknown_cost) for r in rows if r.unknown_cost])
    for r in rows:
        lines += boards_section(r.name, r.footprint)
    return lines + (family_section() if rows else [])


def engine_graph_table(report: BenchReport) -> list[str]:
    """Int8 ONNX artifacts: how much of the classifier the engines really run in int8, and
    the unknown score's few ops on one feature vector, apart."""

    def fit(pick: Callable) -> Callable:
        return lambda r: "{0.supported}/{0.nodes} in {0.partitions}, {0.verdict}".format(
            pick(r.engine_graph.mobile)
        )

    columns: list[Column] = [
        ("format", lambda r: r.name),
        ("int8 coverage", lambda r: f"{pct(r.engine_graph.census.coverage)}"),
        ("int8 / float compute ops", lambda r: f"{r.engine_graph.census.int8} / "
         f"{r.engine_graph.census.float}"),
        ("Transpose", lambda r: str(r.engine_graph.census.count("Transpose"))),
        ("unknown score ops", lambda r: ", ".join(
            f"{op} {n}" for op, n in r.engine_graph.census.score_ops.items()) or "-"),
        ("NNAPI nodes, partitions", fit(lambda m: m.nnapi)),
        ("CoreML nodes, partitions", fit(lambda m: m.coreml)),
    ]  # fmt: skip
    return table(columns, [r for r in report.measured() if r.engine_graph], optional=True)
