"""Load and validate `.strom/*.yaml` workflow definitions.

Names are imported on first use, so importing the model (as the engine does) does not load the
YAML parser, the cron library or the validators.
"""
from importlib import import_module

_EXPORTS = {
    "STROM_DIR": "loader", "LoadResult": "loader", "find_files": "loader", "load_texts": "loader",
    "load_workspace": "loader", "Problem": "problems", "Severity": "problems",
    **{name: "model" for name in (
        "ABSENT", "Action", "ActionType", "Connection", "ConnectionType", "Hook", "Hooks", "InputField",
        "InputType", "Language", "Location", "Retry", "Runner", "Step", "Task", "Trigger", "TriggerType",
        "Workspace")},
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
