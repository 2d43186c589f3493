"""The Liquid environment every template of OpenComms is parsed and rendered in.

Strict: a variable missing from a recipient's `variables` raises instead of rendering as an
empty string, unless the template gives it a `default` (decision 10). Limited: templates come
from API callers, so loops, nesting, output size and namespaces are capped.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

import liquid
from liquid.builtin.content import ContentNode
from liquid.builtin.expressions.filtered import FilteredExpression
from liquid.builtin.expressions.path import Path
from liquid.builtin.output import OutputNode
from liquid.exceptions import LiquidError, UndefinedError

MAX_TEMPLATE_CHARS = 64 * 1024


class _SafeEnvironment(liquid.Environment):
    context_depth_limit = 10
    loop_iteration_limit = 10_000
    local_namespace_limit = 10_000
    output_stream_limit = 256 * 1024
    block_nesting_limit = 20


_ENV = _SafeEnvironment(undefined=liquid.StrictDefaultUndefined, autoescape=False)


class TemplateError(ValueError):
    """A template that does not parse, or a render that failed."""

    def __init__(self, message: str, *, variable: str | None = None) -> None:
        super().__init__(message)
        self.variable = variable


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
            return self._template.render(**variables)
        except UndefinedError as error:
            raise TemplateError(_first_line(error), variable=_undefined_name(error)) from error
        except LiquidError as error:
            raise TemplateError(_first_line(error)) from error

    def variables(self) -> list[str]:
        """Names of the top-level variables the template refers to."""
        if self._template is None:
            return []
        return list(self._template.global_variables())


def compile_template(source: str) -> CompiledTemplate:
    """Parses `source`; text with no Liquid markup skips the engine altogether."""
    if "{" not in source:
        return CompiledTemplate(source)
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"template longer than {MAX_TEMPLATE_CHARS} characters")
    try:
        template = _ENV.from_string(source)
    except LiquidError as error:
        raise TemplateError(_first_line(error)) from error
    return CompiledTemplate(source, template, _plain_parts(template))


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


def _undefined_name(error: UndefinedError) -> str | None:
    # The message reads "'name' is undefined"; the name is what callers report.
    text = _first_line(error)
    if text.startswith("'") and "'" in text[1:]:
        return text[1 : text.index("'", 1)].split(".")[0].split("[")[0]
    return None
