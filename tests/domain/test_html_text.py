"""The text part derived from an HTML body."""

import pytest

from opencomms.domain.html_text import html_to_text


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<html><body>Hey, <br/><br/>Cake</b></body></html>", "Hey,\n\nCake"),
        ("<p>One</p><p>Two</p>", "One\n\nTwo"),
        ("<h1>Deal!</h1><p>Check our <a href='https://x.io/o'>offers</a>.</p>",
         "Deal!\n\nCheck our offers (https://x.io/o)."),
        ("<a href='https://x.io'>https://x.io</a>", "https://x.io"),
        ("<a href='mailto:a@b.io'>a@b.io</a> <a href='#top'>top</a>", "a@b.io top"),
        ("<ul><li>one</li><li>two &amp; three</li></ul>", "- one\n- two & three"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a | b\nc"),
        ("<head><title>T</title><style>p{}</style></head><script>x()</script><p>Caf&eacute;</p>",
         "Café"),
        ("<p>  lots   of\n\n space  </p>", "lots of space"),
        ("<img src='cid:logo' alt='Our logo'> Hi", "Our logo Hi"),
        ("Plain text, no tags", "Plain text, no tags"),
        ("<p>unclosed <b>bold", "unclosed bold"),
        ("", ""),
    ],
)  # fmt: skip
def test_html_becomes_readable_text(html: str, text: str) -> None:
    assert html_to_text(html) == text
