"""Common microcontroller boards, what of their memory a model may take, and whether it fits.

One footprint type, one "no limit" (None) and one fit rule (:class:`Limits`), which
``herbi-train --fits``, ``herbi-export`` and the bench's board table all apply.

Which memory counts:

- ``sram_bytes``: on-chip SRAM that one tensor arena can occupy. TFLite Micro needs the arena
  as one contiguous buffer, so this is the largest contiguous on-chip block: the whole SRAM on
  most chips here; the STM32H743's largest block is its 512 KB AXI SRAM, the STM32U575's its
  768 KB of SRAM1-3 (SRAM4 sits apart), the RA8D1's its 896 KB of user SRAM (the other
  128 KB are tightly coupled memory). External PSRAM/SDRAM is not counted.
- ``flash_bytes``: the non-volatile memory the program runs from: the chip's internal flash
  (RRAM on the nRF54L05), or, for a chip without one (RP2040, RP2350, ESP32-S3), the flash on
  the named board or module.

Figures are the datasheet's (``source``), in bytes (KB = 1024 bytes). The model does not get
all of it: :data:`FLASH_RESERVE` and :data:`SRAM_RESERVE` are kept for the rest of the program
(``Board.model_flash`` and ``Board.model_arena`` are what is left).
"""

from __future__ import annotations

from dataclasses import dataclass

from herbi.common.errors import HerbiError
from herbi.common.units import parse_size

KB = 1024

# Flash that TFLite Micro's interpreter and kernels take beside the model array, as a range:
# TFLM's own figure is 16 KB for its core runtime on a Cortex-M3 and 22 KB with a keyword-
# spotting model's ops (https://www.tensorflow.org/lite/microcontrollers); herbi's models need
# about ten ops, and CMSIS-NN's optimized kernels are larger than the reference ones, so up to
# 48 KB. A stated range, not a measurement of a build.
TFLM_FLASH = (22 * KB, 48 * KB)
# Flash kept for everything but the model array: TFLM at the top of its range, plus 32 KB for
# the application (start-up code, HAL, C library, a sensor driver). A stated allowance: a
# radio stack (e.g. a BLE SoftDevice, 100-150 KB) comes on top.
FLASH_RESERVE = TFLM_FLASH[1] + 32 * KB
# SRAM kept beside the tensor arena: the main stack (8 KB), the interpreter and op resolver
# objects and TFLM's globals (~2 KB on a 32-bit core), the application's buffers (a 32x32 RGB
# frame is 3 KB) and HAL state. A stated allowance, not a measurement; an RTOS or a radio
# stack comes on top.
SRAM_RESERVE = 16 * KB
# 25% on top of the measured arena: room for optimized kernels' scratch buffers (CMSIS-NN's
# convolutions ask for about 2 * kernel_h * kernel_w * in_channels bytes each) and the arena
# start's 16-byte alignment. A stated allowance, not a measurement.
ARENA_MARGIN = 0.25


@dataclass(frozen=True)
class Footprint:
    """What an int8 model costs on a microcontroller (the shapes decide, not the weights):
    measured by TFLite Micro's reference kernels on this 64-bit host (herbi.export.tflm; a
    32-bit core's persistent arena part is a little smaller), or recorded for a recipe's size
    (herbi.train.sizes; then without the arena's parts, ops and version)."""

    macs: int  # per image (measured: the .tflite's ops; recorded: the Keras classifier's)
    flash_bytes: int  # the int8 .tflite: the model array in flash, TFLM's own code not counted
    arena_bytes: int  # arena_head + arena_tail: what the recording allocator used
    declared_arena_bytes: int  # kHerbiTensorArenaSize: measured + margin, a multiple of 16
    arena_head: int | None = None  # non-persistent: activations' plan and kernel scratch
    arena_tail: int | None = None  # persistent: tensor/node structs and per-op data
    ops: tuple[str, ...] = ()  # the distinct builtin ops, sorted (one resolver entry each)
    tflm_version: str | None = None  # the tflite-micro package that measured it
    arena_margin: float = ARENA_MARGIN


@dataclass(frozen=True)
class Limits:
    """The memory a model may take, in bytes: the declared tensor arena (one SRAM block) and
    the model array (flash); None: no limit."""

    max_arena: int | None = None
    max_flash: int | None = None

    def arena_fits(self, footprint: Footprint) -> bool:
        """The arena compared is the declared one: what the device reserves."""
        return self.max_arena is None or footprint.declared_arena_bytes <= self.max_arena

    def flash_fits(self, footprint: Footprint) -> bool:
        return self.max_flash is None or footprint.flash_bytes <= self.max_flash

    def admits(self, footprint: Footprint) -> bool:
        return self.arena_fits(footprint) and self.flash_fits(footprint)

    def problems(self, footprint: Footprint) -> list[str]:
        """One line per limit ``footprint`` exceeds, naming its option (empty: it fits)."""
        reasons = []
        if not self.arena_fits(footprint):
            reasons.append(
                f"tensor arena {footprint.declared_arena_bytes:,} bytes "
                f"({footprint.arena_bytes:,} measured + {footprint.arena_margin:.0%} margin) "
                f"exceeds --max-arena {self.max_arena:,} bytes"
            )
        if not self.flash_fits(footprint):
            reasons.append(
                f"model array {footprint.flash_bytes:,} bytes exceeds --max-flash "
                f"{self.max_flash:,} bytes (TFLM's own code not counted)"
            )
        return reasons


@dataclass(frozen=True)
class Board:
    """One microcontroller (on a named board or module where the flash is off-chip).

    ``key`` is what ``--fits`` takes; ``core`` names the CPU core type alone (the latency
    estimates look up published figures by it), ``clock_mhz`` its top clock.
    """

    key: str
    name: str
    core: str
    clock_mhz: int
    sram_bytes: int
    flash_bytes: int
    source: str

    @property
    def model_arena(self) -> int:
        """The tensor arena the model may declare: the SRAM block less :data:`SRAM_RESERVE`."""
        return max(self.sram_bytes - SRAM_RESERVE, 0)

    @property
    def model_flash(self) -> int:
        """The model array's share of flash: the flash less :data:`FLASH_RESERVE`."""
        return max(self.flash_bytes - FLASH_RESERVE, 0)

    @property
    def limits(self) -> Limits:
        """What the model may take: SRAM and flash less the reserves."""
        return Limits(self.model_arena, self.model_flash)


def _st(part: str) -> str:
    return f"https://www.st.com/en/microcontrollers-microprocessors/{part}.html"


BOARDS: tuple[Board, ...] = (
    # Boards with 32-128 KB of SRAM and 256-512 KB of flash.
    Board("samd21g18", "ATSAMD21G18 (e.g. Arduino Zero)", "Cortex-M0+", 48, 32 * KB,
          256 * KB, "https://www.microchip.com/en-us/product/atsamd21g18"),
    Board("stm32l432kc", "STM32L432KC (NUCLEO-L432KC)", "Cortex-M4", 80, 64 * KB, 256 * KB,
          _st("stm32l432kc")),
    Board("nrf52832", "nRF52832", "Cortex-M4", 64, 64 * KB, 512 * KB,
          "https://www.nordicsemi.com/Products/nRF52832"),
    Board("stm32f401re", "STM32F401RE (NUCLEO-F401RE)", "Cortex-M4", 84, 96 * KB, 512 * KB,
          _st("stm32f401re")),
    Board("nrf54l05", "nRF54L05", "Cortex-M33", 128, 96 * KB, 500 * KB,
          "https://www.nordicsemi.com/Products/nRF54L05"),
    Board("stm32g0b1re", "STM32G0B1RE (NUCLEO-G0B1RE, MLPerf Tiny)", "Cortex-M0+", 64,
          144 * KB, 512 * KB, _st("stm32g0b1re")),
    # Larger boards, with MLPerf Tiny's reference board (STM32L4R5ZI) and others its results use.
    Board("nrf52840", "nRF52840 (e.g. Arduino Nano 33 BLE Sense)", "Cortex-M4", 64, 256 * KB,
          1024 * KB, "https://www.nordicsemi.com/Products/nRF52840"),
    Board("rp2040", "RP2040 (Raspberry Pi Pico)", "Cortex-M0+", 133, 264 * KB, 2048 * KB,
          "https://datasheets.raspberrypi.com/pico/pico-datasheet.pdf"),
    Board("stm32f746ng", "STM32F746NG (32F746GDISCOVERY, MLPerf Tiny)", "Cortex-M7", 216,
          320 * KB, 1024 * KB, _st("stm32f746ng")),
    Board("esp32-s3", "ESP32-S3 (ESP32-S3-WROOM-1-N8)", "Xtensa LX7", 240, 512 * KB,
          8192 * KB, "https://www.espressif.com/sites/default/files/documentation/"
          "esp32-s3-wroom-1_wroom-1u_datasheet_en.pdf"),
    Board("stm32h743zi", "STM32H743ZI", "Cortex-M7", 480, 512 * KB, 2048 * KB,
          _st("stm32h743zi")),
    Board("nrf5340", "nRF5340 application core (nRF5340 DK, MLPerf Tiny)", "Cortex-M33", 128,
          512 * KB, 1024 * KB, "https://www.nordicsemi.com/Products/nRF5340"),
    Board("rp2350", "RP2350 (Raspberry Pi Pico 2)", "Cortex-M33", 150, 520 * KB, 4096 * KB,
          "https://datasheets.raspberrypi.com/rp2350/rp2350-datasheet.pdf"),
    Board("stm32l4r5zi", "STM32L4R5ZI (NUCLEO-L4R5ZI, MLPerf Tiny reference)", "Cortex-M4",
          120, 640 * KB, 2048 * KB, _st("stm32l4r5zi")),
    Board("stm32u575zi", "STM32U575ZI (NUCLEO-U575ZI-Q, MLPerf Tiny)", "Cortex-M33", 160,
          768 * KB, 2048 * KB, _st("stm32u575zi")),
    Board("ra8d1", "RA8D1 (EK-RA8D1, MLPerf Tiny)", "Cortex-M85", 480, 896 * KB, 2048 * KB,
          "https://www.renesas.com/en/products/ra8d1"),
)  # fmt: skip


def board(key: str) -> Board:
    """The board ``key`` names (any case); an unknown one is a one-line error listing all."""
    found = {b.key: b for b in BOARDS}.get(key.lower())
    if found is None:
        raise HerbiError(f"unknown board {key!r}; known: {', '.join(b.key for b in BOARDS)}")
    return found


def _kb(n: int) -> str:
    return f"{n / KB:,.1f} KB"


def board_fits(footprint: Footprint) -> list[tuple[Board, bool, str]]:
    """For every board: whether ``footprint`` fits its memory less the reserves, and why."""
    rows = []
    for b in BOARDS:
        arena, flash = footprint.declared_arena_bytes, footprint.flash_bytes
        arena_ok, flash_ok = b.limits.arena_fits(footprint), b.limits.flash_fits(footprint)
        why = (
            f"arena {_kb(arena)} {'<=' if arena_ok else '>'} {_kb(b.model_arena)} "
            f"({_kb(b.sram_bytes)} SRAM less {_kb(SRAM_RESERVE)}); model {_kb(flash)} "
            f"{'<=' if flash_ok else '>'} {_kb(b.model_flash)} "
            f"({_kb(b.flash_bytes)} flash less {_kb(FLASH_RESERVE)})"
        )
        rows.append((b, arena_ok and flash_ok, why))
    return rows


def limit_text(limit: int | None) -> str:
    return "no limit" if limit is None else f"{limit:,} bytes"


def _tighter(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def limits(fits: str | None, max_arena: str | None, max_flash: str | None) -> Limits:
    """The limits that ``--fits BOARD`` (the board's memory less the reserves), ``--max-arena``
    and ``--max-flash`` (as written, e.g. ``48KB``) set together: the tighter of each."""
    base = Limits() if fits is None else board(fits).limits
    arena = None if max_arena is None else parse_size(max_arena, "--max-arena")
    flash = None if max_flash is None else parse_size(max_flash, "--max-flash")
    return Limits(_tighter(base.max_arena, arena), _tighter(base.max_flash, flash))
