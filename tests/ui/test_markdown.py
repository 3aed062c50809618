"""Descriptions as Markdown: images become links (no fetch from another host), `$` stays money,
code stays as written."""

from __future__ import annotations

from portal.ui.components.markdown import safe_markdown


def test_images_become_links_and_dollars_stay_money() -> None:
    text = "From $5 to $10. ![logo](https://example.com/logo.png) ![ref][logo]\n\n[logo]: https://example.com/x.png"
    rendered = safe_markdown(text)
    assert "![" not in rendered  # no image: the browser fetches nothing from example.com
    assert "[logo](https://example.com/logo.png)" in rendered  # still a link to follow
    assert r"From \$5 to \$10." in rendered  # not a LaTeX formula


def test_code_is_left_as_written() -> None:
    assert safe_markdown("Set `$HOME` and `![x](y)`.") == "Set `$HOME` and `![x](y)`."
    assert safe_markdown("```\nprice = $5\n```") == "```\nprice = $5\n```"
