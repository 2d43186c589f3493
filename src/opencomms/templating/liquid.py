"""The Liquid environment every template of OpenComms is parsed and rendered in.

Strict: a variable missing from a recipient's `variables` raises instead of rendering as an
empty string, unless the template gives it a `default` (decision 10). Limited: templates come
from API callers, so loops, nesting, output size and namespaces are capped.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import liquid
from liquid.builtin.content import ContentNode
from liquid.builtin.expressions.filtered import FilteredExpression
from liquid.builtin.expressions.path import Path
from liquid.builtin.output import OutputNode
from liquid.exceptions import LiquidError, ResourceLimitError, UndefinedError

from opencomms.templating import budget

MAX_TEMPLATE_CHARS = 64 * 1024
MAX_LOOP_ITERATIONS = 10_000
MAX_MARKUP_CHARS = 4096
_CLOSING = {"{": "}}", "%": "%}"}


class _MeteredContext(liquid.RenderContext):
    """A render context that charges the render's budget for every node and loop.

    The engine asks each node's context for `disabled_tags` before rendering it: that read
    is the one hook every node passes through, so the budget's clock is checked there.
    """

    __slots__ = ("_disabled",)

    @property
    def disabled_tags(self) -> list[str]:
        budget.current().tick()
        return self._disabled

    @disabled_tags.setter
    def disabled_tags(self, value: list[str]) -> None:
        self._disabled = value

    def raise_for_loop_limit(self, length: int = 1) -> None:
        super().raise_for_loop_limit(length)
        budget.current().loop(length)


class _MeteredTemplate(liquid.BoundTemplate):
    context_class = _MeteredContext


class _SafeEnvironment(liquid.Environment):
    context_depth_limit = 10
    loop_iteration_limit = MAX_LOOP_ITERATIONS
    local_namespace_limit = 10_000
    output_stream_limit = budget.MAX_VALUE_CHARS
    block_nesting_limit = 20
    template_class = _MeteredTemplate

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        super().setup_tags_and_filters(extra=extra)
        self.filters = {name: budget.guard_filter(name, f) for name, f in self.filters.items()}


_ENV = _SafeEnvironment(undefined=liquid.StrictDefaultUndefined, autoescape=False)

# The engine's wording for its own limits, in the words an API caller reads.
_LIMIT_MESSAGES = {
    "loop iteration limit reached": f"loop limit reached (at most {MAX_LOOP_ITERATIONS:,}"
    " iterations per loop)",
    "output stream limit reached": f"output limit reached (at most {budget.MAX_VALUE_CHARS:,}"
    " bytes)",
    "local namespace limit reached": "assign limit reached (the assigned values are too big)",
}


class TemplateError(ValueError):
    """A template that does not parse, or a render that failed.

    `variable` names a missing variable (decision 10); `limit` is set when the render went
    past its budget (time, loops, value sizes), which is the template's fault, not the data's.
    """

    def __init__(self, message: str, *, variable: str | None = None, limit: bool = False) -> None:
        super().__init__(message)
        self.variable = variable
        self.limit = limit


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


@dataclass(frozen=True, slots=True)
class _Variable:
    name: str


def _plain_parts(template: liquid.BoundTemplate) -> list[str | _Variable] | None:
    """The template as text and bare `{{ name }}` outputs, or None if it uses more.

    Most personalization is just that, and joining strings is some twenty times cheaper than
    the engine's render; anything else (filters, tags, dotted paths) takes the engine.
    Whitespace control is already applied to the text nodes by the parser.
    """
    parts: list[str | _Variable] = []
    for node in template.nodes:
        if isinstance(node, ContentNode):
            parts.append(node.text)
            continue
        expression = getattr(node, "expression", None)
        if not isinstance(node, OutputNode) or not isinstance(expression, FilteredExpression):
            return None
        left = expression.left
        if expression.filters or not isinstance(left, Path) or len(left.path) != 1:
            return None
        if not isinstance(left.path[0], str):
            return None
        parts.append(_Variable(left.path[0]))
    return parts


@dataclass
class CompiledTemplate:
    """A template parsed once and rendered for many recipients."""

    source: str
    _template: liquid.BoundTemplate | None = field(default=None, repr=False)
    _parts: list[str | _Variable] | None = field(default=None, repr=False)

    @property
    def is_static(self) -> bool:
        return self._template is None

    def render(self, variables: Mapping[str, str]) -> str:
        if self._template is None:
            return self.source
        if self._parts is not None:
            joined = _join(self._parts, variables)
            if joined is not None:
                return joined
        try:
            with budget.metered():
                return self._template.render(**variables)
        except UndefinedError as error:
            raise TemplateError(_first_line(error), variable=_undefined_name(error)) from error
        except ResourceLimitError as error:
            raise TemplateError(_limit_message(error), limit=True) from error
        except LiquidError as error:
            raise TemplateError(_first_line(error)) from error

    @property
    def uses_engine(self) -> bool:
        """True when rendering runs the engine (tags, filters), not the plain-text join."""
        return self._template is not None and self._parts is None

    def variables(self) -> list[str]:
        """Names of the top-level variables the template refers to."""
        if self._template is None:
            return []
        return list(self._template.global_variables())


# Parsed templates kept by source: a client sends the same few templates over and over, and
# parsing one costs more than validating and storing a 1-recipient send. A compiled template
# is never changed after parsing, so one may serve every request and every thread. Only
# short sources are kept, so the cache stays small (at most 256 x 4 KiB of source).
_CACHED_CHARS = 4096
_CACHE_SIZE = 256


def compile_template(source: str) -> CompiledTemplate:
    """Parses `source`; text with no Liquid markup skips the engine altogether."""
    if "{" not in source:
        return CompiledTemplate(source)
    if len(source) <= _CACHED_CHARS:
        return _compile_cached(source)
    return _compile(source)


def _compile(source: str) -> CompiledTemplate:
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"template longer than {MAX_TEMPLATE_CHARS} characters")
    _check_markup_lengths(source)
    try:
        template = _ENV.from_string(source)
    except LiquidError as error:
        raise TemplateError(_first_line(error)) from error
    return CompiledTemplate(source, template, _plain_parts(template))


_compile_cached = lru_cache(maxsize=_CACHE_SIZE)(_compile)


def _check_markup_lengths(source: str) -> None:
    """Refuses any `{{ }}` or `{% %}` longer than MAX_MARKUP_CHARS, before the engine parses.

    The engine's lexer matches each markup with one regular-expression match, which holds
    the interpreter for about a millisecond per kilobyte: a single 64 KiB filter chain would
    stall every other thread (the event loop included) for 50-100 ms. No real template
    needs a single tag or output that long.
    """
    position = 0
    while True:
        start = source.find("{", position)
        if start < 0 or start + 1 >= len(source):
            return
        closing = _CLOSING.get(source[start + 1])
        if closing is None:
            position = start + 1
            continue
        end = source.find(closing, start + 2)
        if end < 0:
            return  # unterminated: the parser reports it
        if end - start > MAX_MARKUP_CHARS:
            raise TemplateError(
                f"markup limit reached (a tag or output over {MAX_MARKUP_CHARS:,} characters)",
                limit=True,
            )
        position = end + 2


def warm_up() -> None:
    """Parses and renders once, so the engine's lazy set-up does not land in a request."""
    compile_template("{% if a %}{{ a | append: 'b' | size }}{% endif %}").render({"a": "x"})


def _join(parts: list[str | _Variable], variables: Mapping[str, str]) -> str | None:
    """The plain template rendered, or None to let the engine handle an unusual value."""
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value = variables.get(part.name)
        if value is None:
            raise TemplateError(f"'{part.name}' is undefined", variable=part.name)
        if not isinstance(value, str):
            return None
        out.append(value)
    return "".join(out)


def _limit_message(error: ResourceLimitError) -> str:
    # The engine appends the template's line to the message: keep only what it says.
    text = _first_line(error).split(", on line")[0].strip()
    return _LIMIT_MESSAGES.get(text, text)


def _undefined_name(error: UndefinedError) -> str | None:
    # The message reads "'name' is undefined"; the name is what callers report.
    text = _first_line(error)
    if text.startswith("'") and "'" in text[1:]:
        return text[1 : text.index("'", 1)].split(".")[0].split("[")[0]
    return None
