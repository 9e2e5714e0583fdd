"""Load and validate `.strom/*.yaml` workflow definitions.

Names are imported on first use, so importing the model (as the engine does) does not load the
YAML parser, the cron library or the validators.
"""

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:  # the exports; each is imported on first use (runner/lazy.py)
    from .loader import STROM_DIR, LoadResult, find_files, load_texts, load_workspace
    from .model import (
        ABSENT,
        Action,
        ActionType,
        Backoff,
        CatchUp,
        Concurrency,
        Connection,
        ConnectionType,
        Hook,
        Hooks,
        HttpMethod,
        InputField,
        InputType,
        Language,
        Location,
        NotifyEvent,
        Retry,
        Runner,
        Step,
        Task,
        Trigger,
        TriggerType,
        WebhookMode,
        Workspace,
    )
    from .payloads import (
        AgentPayload,
        ApprovalPayload,
        ContainerPayload,
        HttpPayload,
        NotifyPayload,
        Payload,
        ScriptPayload,
        TaskPayload,
    )
    from .problems import Problem, Severity

__getattr__, __dir__, __all__ = lazy_exports(__name__)
