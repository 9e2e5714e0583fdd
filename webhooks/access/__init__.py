"""Who is calling: API tokens and their roles, and the web UI's signed-in sessions."""
