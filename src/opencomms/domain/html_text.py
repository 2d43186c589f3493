"""A readable plain-text version of an HTML email body, for the text/plain part.

Built on the standard library's tokenizing HTML parser, so entities, comments, scripts and
broken markup are handled the way browsers tokenize them. The output keeps what a reader
needs: paragraphs and line breaks, list items, link targets, and the words.
"""

from html.parser import HTMLParser

_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "div", "dl", "dt", "dd", "fieldset",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hr", "main", "nav", "ol", "p", "pre", "section", "table", "tr", "ul",
    }
)  # fmt: skip
_SKIPPED = frozenset({"head", "script", "style", "template", "title", "noscript"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})


class _TextBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.chunks: list[str] = []  # the current line's text, whitespace not yet collapsed
        self.skipping = 0
        self.preformatted = 0
        self.links: list[tuple[str | None, int]] = []  # href, where its text starts

    def _flush(self, blank: bool = False) -> None:
        line = " ".join("".join(self.chunks).split())
        self.chunks = []
        if line:
            self.lines.append(line)
        if blank and self.lines and self.lines[-1] != "":
            self.lines.append("")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skipping += 1
        elif tag == "br":
            if "".join(self.chunks).strip():
                self._flush()
            elif self.lines and self.lines[-1] != "":
                self.lines.append("")  # a second <br> in a row: a blank line
        elif tag == "li":
            self._flush()
            self.chunks.append("- ")
        elif tag in ("td", "th"):
            if "".join(self.chunks).strip():
                self.chunks.append(" | ")
        elif tag == "a":
            self.links.append((dict(attrs).get("href"), len(self.chunks)))
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.chunks.append(f" {alt} ")
        elif tag in _BLOCKS:
            self._flush(blank=tag in ("p", "table", "ul", "ol") or tag in _HEADINGS)
            if tag == "pre":
                self.preformatted += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in ("br", "img", "hr"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            text = " ".join("".join(self.chunks[start:]).split())
            if href and not href.startswith(("#", "cid:")) and href not in (text, f"mailto:{text}"):
                self.chunks.append(f" ({href.removeprefix('mailto:')})")
        elif tag in _BLOCKS:
            if tag == "pre":
                self.preformatted = max(0, self.preformatted - 1)
            self._flush(blank=tag in ("p", "table", "ul", "ol") or tag in _HEADINGS)

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.preformatted:
            first, *rest = data.split("\n")
            self.chunks.append(first)
            for line in rest:
                self._flush()
                self.chunks.append(line)
            return
        self.chunks.append(data)


def html_to_text(html: str) -> str:
    """The text a reader would see in the HTML, with its paragraphs and links."""
    builder = _TextBuilder()
    builder.feed(html)
    builder.close()
    builder._flush()
    while builder.lines and builder.lines[-1] == "":
        builder.lines.pop()
    return "\n".join(builder.lines)
