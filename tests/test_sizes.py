"""The fast recipe's size family: its table's invariants, which member ``--fits`` picks for a
board, the board limits herbi-export checks, and the per-board latency estimates' arithmetic.

The tests that convert or train are marked slow; the rest read tables and build Keras nets.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from herbi.benchmarks.mcu.latency import PUBLISHED, RESNET8_MACS, estimates
from herbi.benchmarks.mcu.tables import family_table, flash_estimate, smallest_board
from herbi.common.boards import (
    BOARDS,
    FLASH_RESERVE,
    KB,
    SRAM_RESERVE,
    Footprint,
    Limits,
    board,
    limits,
)
from herbi.common.errors import HerbiError
from herbi.train.recipes.fast import DEFAULT_SIZE, HPARAMS, SIZES
from herbi.train.sizes import largest_fitting

LARGEST = max(BOARDS, key=lambda b: (b.sram_bytes, b.flash_bytes))


def options(**given):
    from herbi.train.pipeline import TrainOptions

    fixed = dict(data_path=None, recipe_name="fast", preset="smoke", epochs_text=None,
                 budget_text=None, seed=0, out=None, resume=False, strategy_name="default",
                 precision="float32", val_fraction=0.1, coarse=11)  # fmt: skip
    return TrainOptions(**{**fixed, **given})


def test_family_grows_in_every_cost_and_the_smallest_fits_a_small_board():
    members = list(SIZES.values())
    for cost in ("params", "macs", "flash_bytes", "declared_arena_bytes"):
        values = [getattr(m if cost == "params" else m.footprint, cost) for m in members]
        assert values == sorted(set(values)), cost  # smallest first, strictly growing
    smallest = members[0].footprint
    assert smallest.flash_bytes <= 128 * KB and smallest.declared_arena_bytes <= 40 * KB
    assert SIZES[DEFAULT_SIZE].hparams() == {k: HPARAMS[k] for k in ("widths", "residual")}
    assert list(SIZES)[-1] == DEFAULT_SIZE  # the model herbi always trained is the largest


def test_recorded_parameters_and_macs_are_the_networks():
    from herbi.train.complexity import model_macs
    from herbi.train.recipes.fast import fast_net

    for member in SIZES.values():
        model = fast_net(5, {**HPARAMS, **member.hparams()})
        assert model.count_params() == member.params
        assert model_macs(model) == member.footprint.macs


def test_board_limits_keep_the_stated_reserves():
    nrf = board("NRF52832")  # any case
    assert (nrf.model_arena, nrf.model_flash) == (64 * KB - SRAM_RESERVE, 512 * KB - FLASH_RESERVE)
    assert limits("nrf52832", None, None) == Limits(nrf.model_arena, nrf.model_flash)
    assert limits("nrf52832", "40KB", "1MB") == Limits(40 * KB, nrf.model_flash)  # the tighter
    assert limits(None, None, "100000") == Limits(None, 100_000)  # None: no limit
    with pytest.raises(HerbiError) as error:
        board("arduino-uno")
    message = str(error.value)
    assert "\n" not in message and message.startswith("unknown board 'arduino-uno'; known: ")
    assert all(b.key in message for b in BOARDS)
    assert len({b.key for b in BOARDS}) == len(BOARDS)
    assert all(b.source.startswith("https://") for b in BOARDS)


def test_fits_picks_the_largest_member_that_fits():
    from herbi.train.pipeline import choose_size
    from herbi.train.recipes import RECIPES

    fast, said = RECIPES["fast"], []
    assert (
        choose_size(options(fits="stm32l432kc"), fast, said.append) == "s"
    )  # 64 KB SRAM, 256 KB flash
    assert choose_size(options(fits=LARGEST.key), fast, said.append) == "l"
    assert choose_size(options(max_arena="36KB"), fast, said.append) == "xs"
    assert choose_size(options(fits="nrf52832", max_flash="100KB"), fast, said.append) == "xs"
    assert choose_size(options(size="m"), fast, said.append) == "m"
    assert choose_size(options(), fast, said.append) is None  # the recipe's default
    assert said[0].startswith("herbi-train: size s, the largest that fits stm32l432kc: arena ")
    f = SIZES["s"].footprint
    assert largest_fitting(SIZES, Limits(f.declared_arena_bytes, f.flash_bytes)) == "s"
    assert largest_fitting(SIZES, Limits(f.declared_arena_bytes - 1, f.flash_bytes)) == "xs"
    assert largest_fitting(SIZES, Limits()) == "l"


@pytest.mark.parametrize(
    ("given", "option", "said"),
    [
        ({"fits": "nope"}, "--fits", "unknown board 'nope'; known: samd21g18, "),
        ({"fits": "samd21g18"}, "--fits", "no size fits"),  # 32 KB SRAM: 16 KB for the arena
        ({"fits": "nrf52832", "size": "xs"}, "--fits", "not both"),
        ({"size": "xxl"}, "--size", "'xxl'; choose from xs, s, m, l"),
        ({"max_flash": "lots"}, "--max-flash", "not a size"),
        ({"fits": "nrf52832", "recipe_name": "reference"}, "--fits", "has one size"),
        ({"size": "xs", "recipe_name": "reference"}, "--size", "'xs'; recipe reference has one"),
    ],
)
def test_size_options_refused_with_the_option_named(given, option, said):
    from herbi.train.pipeline import OptionError, choose_size
    from herbi.train.recipes import RECIPES

    with pytest.raises(OptionError) as error:
        opts = options(**given)
        choose_size(opts, RECIPES[opts.recipe_name], print)
    assert error.value.option == option and said in str(error.value)


def test_unknown_board_is_one_line_listing_the_known(tmp_path):
    from click.testing import CliRunner

    from herbi.export.cli import main as export
    from herbi.train.cli import main as train

    result = CliRunner().invoke(train, ["--recipe", "fast", "--fits", "nope"])
    assert result.exit_code == 2  # click's usage error
    line = next(x for x in result.output.splitlines() if "unknown board" in x)
    assert "Invalid value for --fits" in line and all(b.key in line for b in BOARDS)
    result = CliRunner().invoke(export, ["--model", str(tmp_path), "--format", "tflm",
                                         "--fits", "nope"])  # fmt: skip
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {line.split(': ', 2)[2]}"]


def test_latency_estimate_is_macs_times_cycles_per_mac_over_the_clock():
    reference = next(p for p in PUBLISHED if p.tflm and p.core == "Cortex-M4")
    assert reference.cycles_per_mac == pytest.approx(120e6 / (1.420 * RESNET8_MACS))
    assert reference.cycles_per_mac == pytest.approx(6.76, abs=0.01)
    nrf = board("nrf52832")  # Cortex-M4 at 64 MHz
    found = estimates(25_000_000, nrf)
    assert [e.basis.core for e in found] == ["Cortex-M4"] * 3
    assert found[0].basis is reference  # slowest first: TFLM
    for e in found:
        assert e.ms == pytest.approx(25e6 * e.basis.cycles_per_mac / 64e6 * 1e3)
    assert estimates(25_000_000, board("esp32-s3")) == []  # no published figure, no estimate
    assert all(
        p.source.startswith("https://github.com/mlcommons/tiny_results_v") for p in PUBLISHED
    )
    for p in PUBLISHED:  # every cited result is for a core some board has
        assert any(b.core == p.core for b in BOARDS)


def test_bench_renders_the_family_and_per_board_estimates():
    from herbi.benchmarks.tables import microcontroller_tables

    lines = family_table(SIZES)
    assert len(lines) == 2 + len(SIZES) and all("% ± " in x for x in lines[2:])  # all measured
    assert smallest_board(SIZES["l"]) is not None
    assert "model array 97.7 KB + TFLite Micro 22–48 KB = 120–146 KB" in flash_estimate(100_000)
    f = SIZES["xs"].footprint
    footprint = SimpleNamespace(flash_bytes=f.flash_bytes, declared_arena_bytes=f.declared_arena_bytes,
                                arena_bytes=f.arena_bytes, macs=f.macs, ops=("CONV_2D",))  # fmt: skip
    row = SimpleNamespace(status="ok", name="tflm-int8", footprint=footprint, unknown_cost=None,
                          quality=SimpleNamespace(scores=SimpleNamespace(accuracy=0.7), agreement=1.0))  # fmt: skip
    text = "\n".join(microcontroller_tables([row]))
    assert (
        "**estimate**" in text
        and "tiny_results_v0.5/blob/HEAD/closed/reference/results/Nucleo-L4R5ZI" in text
    )
    assert "no published figure for this core" in text  # the ESP32-S3's Xtensa
    assert "to be measured" not in text


@pytest.mark.slow
@pytest.mark.parametrize(
    ("limit", "size"),
    [
        # --fits and --max-arena/--max-flash on the small members, where the limits bite (the
        # largest board's pick is test_fits_picks_the_largest_member_that_fits; training and
        # exporting l here too cost the suite half a minute on an AVX2-only CPU).
        (["--fits", "stm32l432kc"], "s"),  # 64 KB SRAM, 256 KB flash
        (["--max-arena", "40KB", "--max-flash", "128KB"], "xs"),  # the smallest's promise
    ],
)
def test_fits_then_export_passes_the_same_limits(limit, size, animals5, tmp_path):
    """herbi-train with the limits (one smoke epoch), then herbi-export --format tflm with the
    same limits: the member picked passes them, at the footprint its table row records."""
    import json

    from click.testing import CliRunner

    from herbi.export.cli import main as export
    from herbi.train.cli import main as train

    run, out = tmp_path / "run", tmp_path / "export"
    args = ["--data", str(animals5), "--recipe", "fast", "--preset", "smoke", "--epochs", "1"]
    result = CliRunner().invoke(train, [*args, *limit, "--out", str(run)])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "manifest.json").read_text())["config"]["size"] == size
    assert f"herbi-train: size {size}, the largest that fits" in result.output
    result = CliRunner().invoke(export, ["--model", str(run), "--format", "tflm", "--no-check",
                                         "--out", str(out), *limit])  # fmt: skip
    assert result.exit_code == 0, result.output  # a limit exceeded would exit 3 (rejected)
    footprint = json.loads((out / "tflm-int8" / "footprint.json").read_text())
    asked = limits(*(dict(zip(limit[::2], limit[1::2], strict=True)).get(o)
                     for o in ("--fits", "--max-arena", "--max-flash")))  # fmt: skip
    assert asked.admits(Footprint(**footprint))
    recorded = SIZES[size].footprint
    assert abs(footprint["declared_arena_bytes"] - recorded.declared_arena_bytes) <= 64
    assert abs(footprint["flash_bytes"] - recorded.flash_bytes) <= 256


def test_a_recorded_accuracy_reaches_the_table_and_the_plot(tmp_path, monkeypatch):
    from dataclasses import replace

    from herbi.benchmarks.mcu import tables
    from herbi.benchmarks.plots import plot_family

    monkeypatch.setitem(SIZES, "xs", replace(SIZES["xs"], accuracy=(0.70, 0.02)))
    monkeypatch.setitem(SIZES, "s", replace(SIZES["s"], accuracy=None))
    assert list(tables.family_measured()) == ["xs", "m", "l"]
    assert "70.0% ± 2.0" in family_table(SIZES)[2] and "to be measured" in family_table(SIZES)[3]
    plot_family(tables.family_measured(), tmp_path / tables.FAMILY_PNG)
    assert (tmp_path / tables.FAMILY_PNG).stat().st_size > 0
