"""Load and validate `.strom/*.yaml` workflow definitions.

Names are imported on first use, so importing the model (as the engine does) does not load the
YAML parser, the cron library or the validators.
"""
from ..lazy import lazy_exports

_EXPORTS = {
    "STROM_DIR": "loader", "LoadResult": "loader", "find_files": "loader", "load_texts": "loader",
    "load_workspace": "loader", "Problem": "problems", "Severity": "problems",
    **{name: "model" for name in (
        "ABSENT", "Action", "ActionType", "Connection", "ConnectionType", "Hook", "Hooks", "InputField",
        "InputType", "Language", "Location", "Retry", "Runner", "Step", "Task", "Trigger", "TriggerType",
        "Workspace")},
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
