"""Where workflow files live in a workspace (a module of its own: importing it loads nothing else)."""

__all__ = ["STROM_DIR", "WORKFLOW_SUFFIXES"]

STROM_DIR = ".strom"
WORKFLOW_SUFFIXES = (".yaml", ".yml")
