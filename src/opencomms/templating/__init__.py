"""Liquid personalization: a strict, resource-limited environment."""

from opencomms.templating.liquid import (
    CompiledTemplate,
    TemplateError,
    compile_template,
    warm_up,
)

__all__ = ["CompiledTemplate", "TemplateError", "compile_template", "warm_up"]
