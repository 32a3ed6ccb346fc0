"""Microcontroller estimates: per-board latency (MLPerf Tiny), flash, the unknown score's cost."""
