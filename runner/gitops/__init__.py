"""How repositories start runs: intake of events, matching triggers, trust, ChatOps, gates and reporting."""
