"""The web process: receivers, API and UI. It imports `runner`, never the other way round."""
