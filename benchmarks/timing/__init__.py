"""Timing engines: worker processes that time a model alone, the machine they ran on, the browser."""
