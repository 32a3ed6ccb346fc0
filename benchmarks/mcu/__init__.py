"""Microcontroller estimates: per-board latency from MLPerf Tiny, flash, the unknown score's cost."""
