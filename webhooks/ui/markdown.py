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

    def no_referrer(state) -> None:
        for token in state.tokens:
            for child in token.children or ():
                if child.type == "link_open":
                    child.attrSet("rel", "nofollow noopener noreferrer")

    parser.core.ruler.push("no_referrer", no_referrer)
    return parser


def to_html(text: str | None) -> Markup:
    return Markup(_parser().render(text)) if text else Markup("")
