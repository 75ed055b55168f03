"""The parity and speedup report (``python -m keydnn report``): env stamp, parity, speedup, rendering."""
