"""Strom's processes: the web server, the worker, the scheduler and its loops, and `strom up`.

They run the library in `runner/runs/`; nothing below this package imports it.
"""
