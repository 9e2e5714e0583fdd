"""Strom's engine and everything that runs work. Headless: no web framework here."""

__version__ = "0.1.0"
