"""The Liquid environment is strict and bounded."""

import pytest

from opencomms.templating import TemplateError, compile_template


def test_renders_and_defaults() -> None:
    template = compile_template("Hi {{ name | default: 'there' }}, {{ code }}")
    assert template.render({"code": "42"}) == "Hi there, 42"
    assert template.render({"name": "Ada", "code": "1"}) == "Hi Ada, 1"


def test_missing_variables_raise_with_their_name() -> None:
    with pytest.raises(TemplateError) as raised:
        compile_template("{% if vip %}{{ code }}{% endif %}").render({"vip": "yes"})
    assert raised.value.variable == "code"


def test_text_without_markup_skips_the_engine() -> None:
    assert compile_template("plain text").is_static
    assert not compile_template("{{ x }}").is_static


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in (1..100000) %}{% for j in (1..100000) %}x{% endfor %}{% endfor %}",
        "{% for i in (1..300000) %}xxxxxxxxxx{% endfor %}",
    ],
)
def test_runaway_templates_are_stopped(source: str) -> None:
    with pytest.raises(TemplateError):
        compile_template(source).render({})


def test_syntax_errors_are_reported() -> None:
    with pytest.raises(TemplateError):
        compile_template("{{ name ")
    with pytest.raises(TemplateError):
        compile_template("{% include 'secrets' %}").render({})
