"""Timing engines: worker processes timing one model alone, the machine they ran on, the browser."""
