"""Notifications through Apprise: channels from the server configuration, rules from `.strom/`,
default messages, and delivery off the runs' path."""
