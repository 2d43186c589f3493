"""Every render is bounded: CPU time, loop iterations, and the size of every value."""

import time
import tracemalloc

import pytest

from opencomms.dispatch.render import ContentTemplate, RenderError
from opencomms.domain import errors
from opencomms.templating import TemplateError, compile_template
from opencomms.templating.budget import MAX_VALUE_CHARS

X4000 = "x" * 4000
APPEND_BOMB = "{% assign s = '" + X4000 + "' %}{{ s" + " | append: s" * 300 + " | size }}"
REPLACE_BOMB = "{% assign s = 'xx' %}{{ s" + " | replace: 'x', 'xxxxxxxx'" * 100 + " | size }}"
# Many small tags instead of one long output: each step doubles the value.
ASSIGN_BOMB = "{% assign s = 'xxxxxxxx' %}" + "{% assign s = s | append: s %}" * 2000


def render_failure(source: str, variables: dict[str, str] | None = None) -> TemplateError:
    template = compile_template(source)
    with pytest.raises(TemplateError) as raised:
        template.render(variables or {})
    return raised.value


@pytest.mark.parametrize(
    ("source", "says"),
    [
        (APPEND_BOMB, "value size limit reached"),
        (REPLACE_BOMB, "value size limit reached"),
        (ASSIGN_BOMB, "limit reached"),
        ("{{ v | append: v | append: v | append: v | append: v }}", "value size limit reached"),
        ("{{ (1..100000000) | join: 'xxxxxxxx' }}", "value size limit reached"),
        ("{% assign n = 99999999 %}" + "{% assign n = n | times: n %}" * 30, "number too large"),
        ("{{ 'now' | date: '%999999999Y' }}", "date formats with a width"),
        ("{% for i in (1..100000) %}{% for j in (1..100000) %}x{% endfor %}{% endfor %}", "loop"),
        ("{% for i in (1..20000) %}x{% endfor %}", "loop limit reached"),
        # Each loop is within the per-loop cap; together they are not (or take too long).
        ("{% for i in (1..10000) %}{% endfor %}" * 20, "limit reached"),
        ("{% for i in (1..10000) %}{% if 1 == 1 %}{% endif %}{% endfor %}" * 20, "limit reached"),
        ("{% capture c %}" + "{{ v }}" * 2 + "{% endcapture %}{{ c }}", "limit reached"),
    ],
)
def test_budget_breakers_fail_fast_with_small_memory(source: str, says: str) -> None:
    variables = {"v": "y" * (MAX_VALUE_CHARS // 2 + 1)}
    template = compile_template(source)  # parsing is bounded by the template's length
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(TemplateError) as raised:
            template.render(variables)
        error = raised.value
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert error.limit
    assert says in str(error)
    assert "variable" not in str(error)
    assert elapsed < 1.0
    assert peak < 16 * 1024 * 1024  # a handful of values at the cap, never the bomb's gigabytes


def test_one_huge_tag_or_output_is_refused_before_parsing() -> None:
    source = "{{ s" + " | append: s" * 5000 + " }}"
    start = time.perf_counter()
    with pytest.raises(TemplateError) as raised:
        compile_template(source)
    assert time.perf_counter() - start < 0.05
    assert raised.value.limit
    assert "markup limit reached" in str(raised.value)


def test_loop_limit_reads_as_a_loop_limit() -> None:
    error = render_failure("{% for i in (1..20000) %}{{ i }}{% endfor %}")
    assert str(error).startswith("loop limit reached")
    assert error.variable is None


def test_ordinary_templates_still_render() -> None:
    template = compile_template(
        "{% assign greeting = 'Hi ' | append: name | upcase %}{{ greeting }}"
        "{% for i in (1..3) %} {{ i | times: 2 }}{% endfor %}"
        " {{ 'a,b' | split: ',' | join: '+' }} {{ name | replace: 'a', 'aa' }}"
    )
    assert template.render({"name": "ada"}) == "HI ADA 2 4 6 a+b aadaa"


def test_missing_variables_are_still_told_apart_from_limits() -> None:
    error = render_failure("{{ name | append: '!' }}")
    assert error.variable == "name"
    assert not error.limit


def test_only_the_recipient_whose_data_breaks_the_budget_fails() -> None:
    content = ContentTemplate({"text": "{{ v | append: v | size }}"})
    fine, bomb = content.render_each([{"v": "ok"}, {"v": "y" * MAX_VALUE_CHARS}])
    assert fine == {"text": "4"}
    assert isinstance(bomb, RenderError)
    assert bomb.code == errors.RENDER_LIMIT
    assert "value size limit reached" in bomb.message


async def test_costly_content_renders_off_the_event_loop() -> None:
    plain = ContentTemplate({"text": "Hi {{ name }}"})
    costly = ContentTemplate({"text": "Hi {{ name | upcase }}"})
    assert not plain.costly
    assert costly.costly
    assert await costly.render_all([{"name": "ada"}]) == [{"text": "Hi ADA"}]
    assert await plain.render_all([{"name": "ada"}]) == [{"text": "Hi ada"}]
