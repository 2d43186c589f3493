"""The Liquid environment every template of OpenComms is parsed and rendered in.

Strict: a variable missing from a recipient's `variables` raises instead of rendering as an
empty string, unless the template gives it a `default` (decision 10). Limited: templates come
from API callers, so loops, nesting, output size and namespaces are capped.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

import liquid
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


@dataclass
class CompiledTemplate:
    """A template parsed once and rendered for many recipients."""

    source: str
    _template: liquid.BoundTemplate | None = field(default=None, repr=False)

    @property
    def is_static(self) -> bool:
        return self._template is None

    def render(self, variables: Mapping[str, str]) -> str:
        if self._template is None:
            return self.source
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
        return CompiledTemplate(source, _ENV.from_string(source))
    except LiquidError as error:
        raise TemplateError(_first_line(error)) from error


def _undefined_name(error: UndefinedError) -> str | None:
    # The message reads "'name' is undefined"; the name is what callers report.
    text = _first_line(error)
    if text.startswith("'") and "'" in text[1:]:
        return text[1 : text.index("'", 1)].split(".")[0].split("[")[0]
    return None
