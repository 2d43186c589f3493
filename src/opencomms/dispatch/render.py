"""Personalizing an operation's content: parsed once per operation, rendered per recipient."""

import asyncio
import sys
from collections.abc import Mapping
from concurrent.futures import Executor
from typing import Any

from opencomms.domain import errors
from opencomms.domain.send import MAX_TEXT, string_leaves
from opencomms.templating import CompiledTemplate, TemplateError, compile_template


class RenderError(Exception):
    """This recipient's content cannot be produced; the message fails for good."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _compile(value: Any) -> Any:
    """The content with every templated string replaced by its parsed template."""
    if isinstance(value, str):
        template = compile_template(value)
        return value if template.is_static else template
    if isinstance(value, dict):
        return {key: _compile(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_compile(item) for item in value]
    return value


def _render(node: Any, variables: Mapping[str, str]) -> Any:
    if isinstance(node, CompiledTemplate):
        return node.render(variables)
    if isinstance(node, dict):
        return {key: _render(item, variables) for key, item in node.items()}
    if isinstance(node, list):
        return [_render(item, variables) for item in node]
    return node


def _uses_engine(node: Any) -> bool:
    if isinstance(node, CompiledTemplate):
        return node.uses_engine
    if isinstance(node, dict):
        return any(_uses_engine(item) for item in node.values())
    if isinstance(node, list):
        return any(_uses_engine(item) for item in node)
    return False


class ContentTemplate:
    """An operation's content, ready to render for each of its recipients."""

    def __init__(self, content: dict[str, Any], text_limit: int | None = MAX_TEXT) -> None:
        self.text_limit = text_limit
        # Accept-time checks parse every template, so this only fails for rows written by
        # something else; then each recipient fails with the reason instead of the worker.
        self._broken: TemplateError | None = None
        self.costly = False  # renders take the engine: up to its budget (50 ms) each
        try:
            self._tree = _compile(content)
            self.costly = _uses_engine(self._tree)
        except TemplateError as error:
            self._broken = error

    def render_each(
        self, recipients: list[Mapping[str, str]]
    ) -> list[dict[str, Any] | RenderError]:
        """Each recipient's content, or why it cannot be produced."""
        results: list[dict[str, Any] | RenderError] = []
        for variables in recipients:
            try:
                results.append(self.render(variables))
            except RenderError as error:
                results.append(error)
        return results

    async def render_all(
        self, recipients: list[Mapping[str, str]], executor: Executor | None = None
    ) -> list[dict[str, Any] | RenderError]:
        """`render_each`, on a thread (`executor`'s, else the loop's default) when the engine
        runs: it must not hold the event loop. Each render keeps to its own budget (the
        render thread's CPU time, templating/budget.py), so a recipient past it fails alone."""
        if not self.costly:
            return self.render_each(recipients)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, self.render_each, recipients)

    def render(self, variables: Mapping[str, str]) -> dict[str, Any]:
        if self._broken is not None:
            raise RenderError(errors.RENDER_FAILED, f"Invalid Liquid template: {self._broken}")
        try:
            rendered: dict[str, Any] = _render(self._tree, variables)
        except TemplateError as error:
            if error.limit:
                message = f"Liquid rendering went past its budget: {error}"
                raise RenderError(errors.RENDER_LIMIT, message) from error
            raise RenderError(errors.RENDER_FAILED, f"Liquid rendering failed: {error}") from error
        if self.text_limit is not None:
            _check_text_length(rendered, self.text_limit)
        return rendered


def _check_text_length(rendered: dict[str, Any], limit: int) -> None:
    for path, value in string_leaves(rendered, "$.content"):
        # Accept-time checks saw only the template; the limit applies to what is sent.
        if path.endswith(".text") and "suggestions" not in path and len(value) > limit:
            raise RenderError(
                errors.BODY_TOO_LONG,
                f"The rendered text exceeds the {limit} character limit"
                f" ({len(value)} characters) at {path}",
            )


# The GIL's switch interval while a render thread runs: a thread that only computes keeps the
# GIL until another has waited this long for it. The event loop and the database driver's
# thread hand the GIL to each other dozens of times per batch, so at Python's default (5 ms)
# one tenant's heavy templates made every other tenant's database round trip wait up to
# 5 ms, each: 200 plain messages took 0.8 s instead of 0.1 s beside them.
_SWITCH_INTERVAL = 0.0005


def share_the_gil() -> None:
    """Makes a thread rendering heavy templates give the GIL up within half a millisecond."""
    sys.setswitchinterval(min(sys.getswitchinterval(), _SWITCH_INTERVAL))
