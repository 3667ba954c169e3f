"""Regenerate ``qlint/frameworks/celery_settings.py`` from an installed Celery.

The catalog asks for the old->new setting-name map to be generated from
``celery/app/defaults.py`` rather than typed by hand. Run with Celery installed:

    python scripts/generate_celery_settings.py
"""

from __future__ import annotations

import pprint
from pathlib import Path

import celery
from celery.app import defaults

OUT = Path(__file__).resolve().parents[1] / "qlint" / "frameworks" / "celery_settings.py"


def render() -> str:
    new_keys = sorted(defaults.DEFAULTS)
    old_to_new = dict(sorted(defaults._TO_NEW_KEY.items()))
    body = [
        f'"""Celery setting names, generated from celery {celery.__version__} by scripts/generate_celery_settings.py.',
        "",
        "Do not edit by hand: regenerate instead.",
        '"""',
        "",
        f'CELERY_VERSION = "{celery.__version__}"',
        "",
        "SETTINGS = frozenset(" + pprint.pformat(new_keys, width=100, compact=True) + ")",
        "",
        "OLD_TO_NEW = " + pprint.pformat(old_to_new, width=100, sort_dicts=True),
        "",
    ]
    return "\n".join(body)


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")
