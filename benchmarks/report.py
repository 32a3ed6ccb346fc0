"""Write ``bench/report.json``, ``bench/report.md`` and the plots from the report dict.

``report.md`` opens with one model-zoo table (size, accuracy with its 95% interval,
agreement, batch-1 latency, throughput, cold start, and the speed-up and size ratio against
the Keras original), states what data and machine the figures come from, and sets the
study's published accuracy beside them as a reference row that is marked as not measured
here. The detailed tables follow: latency per thread count, runtime overhead, cold start and
memory, per-class F1.
"""

from __future__ import annotations

from pathlib import Path

from herbi.benchmarks.plots import plot_accuracy_latency, plot_sizes
from herbi.train.files import write_json, write_text

REPORT_JSON, REPORT_MD = "report.json", "report.md"
ACCURACY_PNG, SIZE_PNG = "accuracy_vs_latency.png", "size.png"


def _ms(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _signed(x: float) -> str:
    return f"{x:+.1f}"


def _name(row: dict) -> str:
    if row["kind"] == "keras":
        return f"**{row['name']}**"
    return row["name"] + (" (rejected at export)" if row.get("rejected_at_export") else "")


def _reasons(reasons: list[str], shown: int = 3) -> str:
    more = f"; and {len(reasons) - shown} more" if len(reasons) > shown else ""
    return "; ".join(reasons[:shown]) + more


def measured(report: dict) -> list[dict]:
    return [r for r in report["rows"].values() if r["status"] == "ok"]


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def summary_table(report: dict) -> list[str]:
    """The at-a-glance table: one row per measured format, then the published reference."""
    threads = report["settings"]["threads"]
    one, many = str(threads[0]), str(threads[-1])
    batch = report["settings"]["large_batch"]
    headers = [
        "format",
        "size KB",
        "size vs Keras",
        "accuracy [95% CI]",
        "Δ acc (points)",
        "agreement",
        f"p50 ms ({one} thr)",
        f"p99 ms ({one} thr)",
        "speed-up vs Keras",
        f"images/s (batch {batch}, {many} thr)",
        "cold start ms",
    ]
    rows = []
    for r in measured(report):
        q, t1, tn = r["quality"], r["timing"][one], r["timing"][many]
        lo, hi = q["accuracy_ci95"]
        speedup = t1.get("speedup_vs_keras")
        rows.append(
            [
                _name(r),
                f"{r['size_kb']:.1f}",
                f"{r['size_ratio']:.3f}×",
                f"{_pct(q['accuracy'])} [{100 * lo:.1f}, {100 * hi:.1f}]",
                _signed(q["accuracy_change_points"]),
                f"{q['agreement']:.3f}",
                _ms(t1["batch1"]["p50_ms"]),
                _ms(t1["batch1"]["p99_ms"]),
                f"{speedup:.2f}×" if speedup is not None else "—",
                f"{tn['throughput']['images_per_s']:.0f}",
                f"{r['cold_start']['cold_start_ms']:.0f}",
            ]
        )
    published = report["published"]["test_accuracy"]
    if published:
        stage, acc = list(published.items())[-1]
        rows.append(
            [
                f"*study, published ({stage})*",
                "—",
                "—",
                f"*{_pct(acc)}*",
                "—",
                "—",
                "—",
                "—",
                "—",
                "—",
                "—",
            ]
        )
    return table(headers, rows)


def latency_table(report: dict) -> list[str]:
    batch = report["settings"]["large_batch"]
    rows = []
    for r in measured(report):
        for t, tm in r["timing"].items():
            b1, tp = tm["batch1"], tm["throughput"]
            speedup = tm.get("speedup_vs_keras")
            rows.append(
                [
                    r["name"],
                    t,
                    _ms(b1["p50_ms"]),
                    _ms(b1["p90_ms"]),
                    _ms(b1["p99_ms"]),
                    str(b1["runs"]),
                    f"{tp['images_per_s']:.0f}",
                    f"{tm['gmacs_batch1']:.2f}",
                    f"{tm['gmacs_large_batch']:.2f}",
                    f"{speedup:.2f}×" if speedup is not None else "—",
                ]
            )
    headers = [
        "format",
        "threads",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "runs",
        f"images/s (batch {batch})",
        "GMAC/s batch 1",
        f"GMAC/s batch {batch}",
        "speed-up vs Keras",
    ]
    return table(headers, rows)


def overhead_table(report: dict) -> list[str]:
    rows = []
    for r in measured(report):
        for t, tm in r["timing"].items():
            if "overhead" not in tm:
                continue
            o = tm["overhead"]
            rows.append(
                [
                    r["name"],
                    t,
                    _ms(o["classify"]["p50_ms"]),
                    _ms(o["bare"]["p50_ms"]),
                    f"{1e3 * o['overhead_ms']:.0f}",
                    "yes" if o["bare_output_matches"] else "**no**",
                ]
            )
    headers = [
        "format",
        "threads",
        "classify p50 ms",
        "bare engine call p50 ms",
        "herbi overhead µs",
        "same output",
    ]
    return table(headers, rows)


def cold_table(report: dict) -> list[str]:
    rows = []
    for r in measured(report):
        c = r["cold_start"]
        rows.append(
            [
                r["name"],
                f"{c['cold_start_ms']:.0f}",
                f"{c['interpreter_start_ms']:.0f}",
                f"{c['import_ms']:.0f}",
                f"{c['load_ms']:.0f}",
                f"{c['first_prediction_ms']:.0f}",
                f"{c['peak_rss_mb']:.0f}",
                "yes" if r.get("tensorflow_imported") else "no",
            ]
        )
    headers = [
        "format",
        "cold start ms",
        "python start",
        "import",
        "load",
        "first prediction",
        "peak RSS MB",
        "TensorFlow in timing process",
    ]
    return table(headers, rows)


def quality_table(report: dict) -> list[str]:
    classes = report["dataset"]["class_names"]
    rows = []
    for r in measured(report):
        q = r["quality"]
        per = [
            f"{q['per_class_f1'][c]:.3f} ({_signed(q['per_class_f1_change_points'][c])})"
            for c in classes
        ]
        rows.append(
            [
                r["name"],
                f"{q['macro_f1']:.3f} ({_signed(q['macro_f1_change_points'])})",
                *per,
                f"{q['max_prob_diff']:.4f}",
                f"{q['mean_prob_diff']:.5f}",
                f"{q['agreement_tie_aware']:.3f} ({q['tied_images']} tied)",
            ]
        )
    headers = [
        "format",
        "macro F1 (Δ points)",
        *classes,
        "max |Δp|",
        "mean |Δp|",
        "agreement counting ties",
    ]
    return table(headers, rows)


def render(report: dict) -> str:
    m, ds, s = report["machine"], report["dataset"], report["settings"]
    cx = report["model_complexity"]
    keras = report["rows"]["keras"]
    packages = ", ".join(f"{k} {v}" for k, v in report["packages"].items())
    lines = [
        f"# herbi benchmark: {Path(report['run']).name}",
        "",
        f"- **Data: {ds['label']}** — {ds['split']} split, {ds['images']} images; "
        f"fingerprint `{ds['fingerprint'][:16]}…`"
        + ("" if ds["same_as_run"] else " (**not** the data the run was trained on)"),
        f"- Model: `{report['model']}` — {cx['params']:,} parameters, "
        f"{cx['macs_per_image'] / 1e6:.1f}M multiply-accumulates per image, "
        f"{cx['weights_bytes'] / 1024:.1f} KB of float32 weights"
        + (f" (the .keras file: {keras['size_kb']:.1f} KB)" if "size_kb" in keras else ""),
        f"- Machine: {m['cpu']}, {m['usable_cpus']} usable CPU(s) of {m['logical_cpus']} "
        f"({m['physical_cores'] or '?'} physical cores, nominal {m['cpu_mhz'] or '?'} MHz), "
        f"{m['architecture']}; ISA: {', '.join(m['isa']) or 'none detected'}",
        f"- Load average (1/5/15 min) at start {m['load_average_start']}, "
        f"at end {m['load_average_end']}: figures measured beside other busy processes are noisy",
        f"- Packages: {packages}",
        *(
            [
                f"- **Changed in the run folder while measured: "
                f"{', '.join(report['changed_during_run'])}** — the figures are of the copies "
                "taken at the start (sha256 in report.json), not of the files there now"
            ]
            if report["changed_during_run"]
            else []
        ),
        f"- Created {report['created']} by `{report['command']}`"
        + (" — **--quick: too few runs for stable figures**" if s["quick"] else ""),
        "",
        "## Summary",
        "",
        *summary_table(report),
        "",
        f"Latency is batch 1 through `Classifier.predict_proba` (uint8 pixels in, "
        f"probabilities out) for artifacts; the Keras rows time `model(x)` and "
        f"`model.predict(x)` on the same pixels scaled by 1/255. Speed-up is the Keras "
        f"direct call's p50 over the row's, at the same thread count. Cold start is a fresh "
        f"process (python start, import, load, one image classified), median of "
        f"{s['cold_start_repeats']}. The *study, published* row is "
        f"{report['published']['note']}.",
        "",
        "## Latency and throughput",
        "",
        *latency_table(report),
        "",
        f"Each batch-1 figure: {s['batch1_budget']['warmup']} warm-up calls, then at least "
        f"{s['batch1_budget']['runs']} timed calls and {s['batch1_budget']['seconds']} s; "
        f"each timing process imports no TensorFlow (artifacts) and runs alone.",
        "",
        "## herbi.runtime overhead",
        "",
        *overhead_table(report),
        "",
        "`classify` on one preloaded uint8 image (conversion, checks, invoke, dequantization, "
        "ranking) against the engine's own call (LiteRT `set_tensor/invoke/get_tensor`, ONNX "
        "Runtime `session.run`) on the already prepared input tensor, same thread count, the two "
        "timed in alternation so that other load on the machine hits both alike.",
        "",
        "## Cold start and memory",
        "",
        *cold_table(report),
        "",
        "## Quality per class (F1, change against Keras in points)",
        "",
        *quality_table(report),
        "",
        "Agreement is plain argmax agreement with Keras; *counting ties* also accepts an image "
        "whose Keras class is among the artifact's tied top classes (an int8 softmax has "
        "1/256 resolution, so close classes can come out equal), as export's gate does.",
        "",
        f"![accuracy vs latency]({ACCURACY_PNG})",
        f"![size per format]({SIZE_PNG})",
    ]
    rejected = [r for r in measured(report) if r.get("rejected_at_export")]
    if rejected:
        lines += ["", "## Rejected at export (measured here, not for deployment)", ""]
        lines += [f"- **{r['name']}**: {_reasons(r['rejected_at_export'])}" for r in rejected]
    problems = [r for r in report["rows"].values() if r["status"] != "ok"]
    if problems:
        lines += ["", "## Not measured", ""]
        lines += [f"- **{r['name']}** ({r['status']}): {r['error']}" for r in problems]
    return "\n".join(lines) + "\n"


def write_report(report: dict, out_dir: Path) -> list[Path]:
    """All files of ``<run>/bench/``, each written atomically; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = measured(report)
    paths = [
        write_json(out_dir / REPORT_JSON, report),
        write_text(out_dir / REPORT_MD, render(report)),
    ]
    threads = str(report["settings"]["threads"][0])
    label = report["dataset"]["label"]
    plot_accuracy_latency(rows, threads, out_dir / ACCURACY_PNG, label)
    plot_sizes(rows, out_dir / SIZE_PNG, label)
    return [*paths, out_dir / ACCURACY_PNG, out_dir / SIZE_PNG]
