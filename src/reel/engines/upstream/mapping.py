"""Request mapping as data: the models file says which upstream field gets which value.

Each upstream has an ``input`` table: upstream field name → template. A template is

- a literal (number, boolean, string without braces, list): sent as is;
- ``"{name}"``, exactly one placeholder: the variable's own value and type (``"{width}"`` → 832);
  a variable with no value (``image_url`` for text-to-video) drops the field;
- a string with placeholders and text (``"{width}x{height}"``): formatted into a string;
- ``{from = "aspect", map = {landscape = "16:9", portrait = "9:16"}}``: looked up by the
  variable's value; ``default`` is used for values not in ``map``;
- any other table: a nested object, rendered field by field.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from reel.engines.base import EngineConfigError, GenerationRequest

_ONE_PLACEHOLDER: Final = re.compile(r"^\{([a-z_]+)\}$")

#: Variables a template may use, and what they mean (documented in docs/upstreams.md).
VARIABLES: Final = (
    "prompt",
    "mode",
    "aspect",
    "width",
    "height",
    "size",
    "duration",
    "seconds",
    "fps",
    "num_frames",
    "seed",
    "image_url",
    "task_id",
)


class MappingError(EngineConfigError):
    """An ``input`` template cannot be rendered (unknown variable, unmapped value)."""


@dataclass(frozen=True, slots=True)
class _Missing:
    """Marks a field whose variable has no value; the field is left out."""


MISSING: Final = _Missing()


def variables(
    req: GenerationRequest, *, fps: int, image_url: str | None
) -> dict[str, object | None]:
    aspect = "landscape" if req.width >= req.height else "portrait"
    duration = round(req.duration_s)
    return {
        "prompt": req.prompt,
        "mode": str(req.mode),
        "aspect": aspect,
        "width": req.width,
        "height": req.height,
        "size": f"{req.width}x{req.height}",
        "duration": duration,
        "seconds": str(duration),
        "fps": fps,
        "num_frames": round(req.duration_s * fps),
        "seed": req.seed,
        "image_url": image_url,
        "task_id": req.task_id,
    }


def check_templates(templates: Mapping[str, object]) -> None:
    """Refuse unknown variables and malformed lookups at load time, not on a task."""
    for field, template in templates.items():
        _check(template, f"input.{field}")


def _check(template: object, where: str) -> None:
    if isinstance(template, str):
        for _, name, spec, conversion in string.Formatter().parse(template):
            if name is None:
                continue
            if name not in VARIABLES or spec or conversion:
                raise MappingError(
                    f"{where}: unknown placeholder {{{name}}}; known: {', '.join(VARIABLES)}"
                )
    elif isinstance(template, Mapping):
        if "from" in template:
            unknown = set(template) - {"from", "map", "default"}
            if template["from"] not in VARIABLES or unknown:
                raise MappingError(
                    f"{where}: a lookup is {{from = VARIABLE, map = {{...}}, default = ...}}"
                )
            if not isinstance(template.get("map", {}), Mapping):
                raise MappingError(f"{where}.map must be a table")
        else:
            for key, value in template.items():
                _check(value, f"{where}.{key}")
    elif isinstance(template, list):
        for i, value in enumerate(template):
            _check(value, f"{where}[{i}]")


def render(
    templates: Mapping[str, object], values: Mapping[str, object | None]
) -> dict[str, object]:
    """The upstream's input object for one request."""
    out: dict[str, object] = {}
    for field, template in templates.items():
        value = _render(template, values, field)
        if value is not MISSING:
            out[field] = value
    return out


def _render(template: object, values: Mapping[str, object | None], where: str) -> object:
    if isinstance(template, str):
        whole = _ONE_PLACEHOLDER.match(template)
        if whole:
            value = values.get(whole.group(1))
            return MISSING if value is None else value
        if "{" not in template:
            return template
        if any(
            values.get(name) is None for _, name, _, _ in string.Formatter().parse(template) if name
        ):
            return MISSING
        return template.format_map(values)
    if isinstance(template, Mapping):
        if "from" in template:
            return _lookup(template, values, where)
        nested = {k: _render(v, values, f"{where}.{k}") for k, v in template.items()}
        return {k: v for k, v in nested.items() if v is not MISSING}
    if isinstance(template, list):
        items = [_render(v, values, where) for v in template]
        return [v for v in items if v is not MISSING]
    return template


def _lookup(
    template: Mapping[str, object], values: Mapping[str, object | None], where: str
) -> object:
    value = values.get(str(template["from"]))
    if value is None:
        return MISSING
    table = template.get("map", {})
    assert isinstance(table, Mapping)
    key = str(value)
    if key in table:
        return table[key]
    if "default" in template:
        return template["default"]
    raise MappingError(f"input.{where}: no mapping for {template['from']} = {key!r}")
