"""Fill the committed ``config.pbtxt`` templates: every key exactly once, nothing left over.

``string.Template.substitute`` raises on a missing key; this module also rejects keys the
template does not use, so a typo in the build step cannot go unnoticed.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from string import Template


class TemplateError(ValueError):
    """A template and its values do not match (missing, unknown or malformed keys)."""


def template_keys(text: str) -> set[str]:
    """Return the ``${key}`` names a template uses.

    Raises:
        TemplateError: the template holds a malformed placeholder.

    """
    template = Template(text)
    if not template.is_valid():
        raise TemplateError("malformed placeholder (only ${name} keys and $$ are allowed)")
    return set(template.get_identifiers())


def fill_template(text: str, values: Mapping[str, object], source: str = "template") -> str:
    """Return ``text`` with every ``${key}`` replaced by ``str(values[key])``.

    Raises:
        TemplateError: a key of the template has no value, a value has no key, or a
            placeholder is malformed; the message names the template and the keys.

    """
    try:
        keys = template_keys(text)
    except TemplateError as exc:
        raise TemplateError(f"{source}: {exc}") from None
    missing = sorted(keys - set(values))
    unknown = sorted(set(values) - keys)
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"no value for {', '.join(missing)}")
        if unknown:
            problems.append(f"values for keys it does not use: {', '.join(unknown)}")
        raise TemplateError(f"{source}: {'; '.join(problems)}")
    return Template(text).substitute({key: str(value) for key, value in values.items()})


def fill_model(template_dir: Path, output_dir: Path, values: Mapping[str, object]) -> Path:
    """Copy one model folder and write its filled ``config.pbtxt``.

    Returns:
        ``output_dir``.

    """
    config = template_dir / "config.pbtxt"
    if not config.is_file():
        raise FileNotFoundError(f"no config.pbtxt template in {template_dir}")
    if output_dir.exists():
        shutil.rmtree(output_dir)
    shutil.copytree(
        template_dir, output_dir, ignore=shutil.ignore_patterns("__pycache__", "config.pbtxt")
    )
    filled = fill_template(config.read_text(encoding="utf-8"), values, str(config))
    (output_dir / "config.pbtxt").write_text(filled, encoding="utf-8")
    return output_dir
