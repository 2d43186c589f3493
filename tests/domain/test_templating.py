"""The Liquid environment is strict and bounded."""

import liquid
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from liquid.exceptions import UndefinedError

from opencomms.templating import TemplateError, compile_template

liquid_engine = liquid.Environment(undefined=liquid.StrictDefaultUndefined)


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


def test_filters_and_tags_still_take_the_engine() -> None:
    template = compile_template("{{ name | upcase }}{% if vip %}!{% endif %}")
    assert template.render({"name": "ada", "vip": "y"}) == "ADA!"


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


_NAMES = st.sampled_from(["name", "code", "city"])
_TEXT = st.text(alphabet=st.characters(blacklist_characters="{}%"), max_size=8)
_OUTPUT = st.builds(
    lambda name, left, right: "{{" + left + " " + name + " " + right + "}}",
    _NAMES,
    st.sampled_from(["", "-"]),
    st.sampled_from(["", "-"]),
)


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.one_of(_TEXT, _OUTPUT), max_size=6),
    values=st.dictionaries(_NAMES, st.text(max_size=6)),
)
def test_plain_templates_render_as_the_engine_does(
    pieces: list[str], values: dict[str, str]
) -> None:
    source = "".join(pieces)
    compiled = compile_template(source)
    try:
        expected: str | None = liquid_engine.from_string(source).render(**values)
    except UndefinedError:
        expected = None
    if expected is None:
        with pytest.raises(TemplateError):
            compiled.render(values)
    else:
        assert compiled.render(values) == expected
