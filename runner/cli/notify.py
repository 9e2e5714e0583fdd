"""`strom notify test CHANNEL`: send a test message to a configured channel, URL by URL."""

from __future__ import annotations

import click

from .service import _config, config_option

__all__ = ["notify_command"]


@click.group("notify")
def notify_command():
    """Notification channels of the server configuration."""


@notify_command.command("test")
@click.argument("channel")
@click.option("--message", default="Strom can reach this channel.", show_default=True, help="The text to send.")
@config_option
def test_command(channel, message, config_path):
    """Send a test message to CHANNEL and report each URL's result (exit 1 if any failed)."""
    from ..notify.send import Message, deliver
    from ..suggestions import suggest

    settings = _config(config_path).notifications
    if channel not in settings.channels:
        hint = suggest(channel, settings.channels)
        known = ", ".join(sorted(settings.channels)) or "none: add notifications.channels to the configuration"
        raise click.ClickException(f"no channel {channel!r}" + (f"; {hint}" if hint else "") + f" (channels: {known})")
    title = f"Strom test message ({channel})"
    results = deliver(
        settings.channels[channel],
        Message(title, f"**{message}**", message, "info"),
        timeout=settings.timeout,
        attempts=1,
    )
    for result in results:
        mark = click.style("✓ sent", fg="green") if result.ok else click.style("✗ failed", fg="red")
        click.echo(f"{mark}  {result.target}" + (f"\n    {result.error}" if result.error else ""))
    if not results:
        raise click.ClickException(f"channel {channel!r} has no URLs")
    if not all(r.ok for r in results):
        raise SystemExit(1)
