"""Common microcontroller boards and whether a TFLite Micro model fits them: one table.

Which memory counts:

- ``sram_bytes``: on-chip SRAM that one tensor arena can occupy. TFLite Micro needs the arena
  as one contiguous buffer, so this is the largest contiguous on-chip block: the whole SRAM on
  every chip here except the STM32H743, whose 1 MB of RAM is split into blocks (the largest is
  the 512 KB AXI SRAM). External PSRAM/SDRAM is not counted.
- ``flash_bytes``: the flash the program runs from: the chip's internal flash, or, for a chip
  without one (RP2040, ESP32-S3), the flash on the named board or module.

Figures are the datasheet's, in bytes (KB = 1024 bytes). Fitting is necessary, not
sufficient: the stack, the application, TFLM's code and (ESP32-S3) the OS, Wi-Fi and cache
need their share of the same SRAM and flash.
"""

from __future__ import annotations

from dataclasses import dataclass

KB = 1024


@dataclass(frozen=True)
class Board:
    """One microcontroller (on a named board or module where the flash is off-chip)."""

    name: str
    core: str
    sram_bytes: int
    flash_bytes: int
    source: str


BOARDS: tuple[Board, ...] = (
    Board(
        name="nRF52840 (e.g. Arduino Nano 33 BLE Sense)",
        core="Cortex-M4F, 64 MHz",
        sram_bytes=256 * KB,
        flash_bytes=1024 * KB,
        source="https://www.nordicsemi.com/Products/nRF52840",
    ),
    Board(
        name="STM32F746NG (32F746GDISCOVERY)",
        core="Cortex-M7, 216 MHz",
        sram_bytes=320 * KB,
        flash_bytes=1024 * KB,
        source="https://www.st.com/en/microcontrollers-microprocessors/stm32f746ng.html",
    ),
    Board(
        name="RP2040 (Raspberry Pi Pico)",
        core="2x Cortex-M0+, 133 MHz",
        sram_bytes=264 * KB,
        flash_bytes=2048 * KB,
        source="https://datasheets.raspberrypi.com/pico/pico-datasheet.pdf",
    ),
    Board(
        name="ESP32-S3 (ESP32-S3-WROOM-1-N8)",
        core="2x Xtensa LX7, 240 MHz",
        sram_bytes=512 * KB,
        flash_bytes=8192 * KB,
        source=(
            "https://www.espressif.com/sites/default/files/documentation/"
            "esp32-s3-wroom-1_wroom-1u_datasheet_en.pdf"
        ),
    ),
    Board(
        name="STM32H743ZI",
        core="Cortex-M7, 480 MHz",
        sram_bytes=512 * KB,
        flash_bytes=2048 * KB,
        source="https://www.st.com/en/microcontrollers-microprocessors/stm32h743zi.html",
    ),
)


def _kb(n: int) -> str:
    return f"{n / KB:,.1f} KB"


def fits(arena_bytes: int, flash_bytes: int) -> list[tuple[Board, bool, str]]:
    """For every board: whether the arena fits its SRAM and the model its flash, and why.

    Pass the arena the device reserves (``kHerbiTensorArenaSize``, measured + margin) and
    the model array's bytes.
    """
    rows = []
    for board in BOARDS:
        arena_ok = arena_bytes <= board.sram_bytes
        flash_ok = flash_bytes <= board.flash_bytes
        why = (
            f"arena {_kb(arena_bytes)} {'<=' if arena_ok else '>'} {_kb(board.sram_bytes)} "
            f"SRAM ({arena_bytes / board.sram_bytes:.0%}); model {_kb(flash_bytes)} "
            f"{'<=' if flash_ok else '>'} {_kb(board.flash_bytes)} flash "
            f"({flash_bytes / board.flash_bytes:.0%})"
        )
        rows.append((board, arena_ok and flash_ok, why))
    return rows
