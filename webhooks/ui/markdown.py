"""Markdown written by steps (their summaries), as HTML a page may show: CommonMark and tables, raw HTML
escaped, only http(s), mailto and relative links (markdown-it's link check), links opened without a referrer."""

from __future__ import annotations

from functools import cache

from markupsafe import Markup

__all__ = ["to_html"]


@cache
def _parser():
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    default = parser.renderer.rules.get("link_open")

    def link_open(tokens, idx, options, env):
        tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
        return default(tokens, idx, options, env) if default else parser.renderer.renderToken(tokens, idx, options, env)

    parser.renderer.rules["link_open"] = link_open
    return parser


def to_html(text: str | None) -> Markup:
    return Markup(_parser().render(text)) if text else Markup("")
