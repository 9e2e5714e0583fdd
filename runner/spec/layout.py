"""Where workflow files live in a workspace (a module of its own: importing it loads nothing else)."""

__all__ = ["STROEM_DIR", "STROM_DIR", "WORKFLOW_DIRS", "WORKFLOW_SUFFIXES", "is_stroem_file"]

STROM_DIR = ".strom"
STROEM_DIR = ".workflows"  # Strøm's: read as well, with Strøm's leniency (runner/spec/problems.py, loader.py)
WORKFLOW_DIRS = (STROM_DIR, STROEM_DIR)
WORKFLOW_SUFFIXES = (".yaml", ".yml")


def is_stroem_file(path: str) -> bool:
    """Whether a workflow file (its path in the workspace) is one of Strøm's `.workflows/`."""
    return path.startswith(STROEM_DIR + "/")
