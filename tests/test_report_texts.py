"""The printed report's words: every text its templates ask for exists in English and French, those of the report
(``r``) in ``records.report_texts`` and those it shares with the dashboard (``t``) in ``clinician_ui.i18n``."""

from __future__ import annotations

import re
from pathlib import Path

from clinician_ui.i18n import TEXTS
from records.report_texts import REPORT_TEXTS, report_text

TEMPLATES = Path(__file__).resolve().parent.parent / "records" / "templates"
LITERAL = re.compile(r"""\b(r|t)\(\s*["']([a-z0-9_.]+)["']\s*[,)]""")
DYNAMIC = re.compile(r"""\b(r|t)\(\s*["']([a-z0-9_.]+\.)["']\s*[~+]""")
# the keys a template builds from a value, with every value it can take
DYNAMIC_KEYS = {
    "treatment.": ("diet", "metformin", "insulin"),
    "device.": ("meter", "app", "cgm"),
    "slot.": ("fasting", "breakfast", "lunch", "dinner", "other"),
    "severity.": ("urgent", "warning", "info"),
    "alert.reason.": ("delivered", "cleared"),
    "treatment.meal.": ("breakfast", "lunch", "dinner"),
}


def _asked() -> set[tuple[str, str]]:
    asked: set[tuple[str, str]] = set()
    for path in TEMPLATES.glob("*.html"):
        source = path.read_text()
        asked |= set(LITERAL.findall(source))
        for function, prefix in DYNAMIC.findall(source):
            assert prefix in DYNAMIC_KEYS or function == "r", f"{path.name}: dynamic key {prefix!r} not listed here"
            asked |= {(function, prefix + value) for value in DYNAMIC_KEYS.get(prefix, ())}
    return asked


def test_every_text_the_report_asks_for_exists_in_both_languages() -> None:
    asked = _asked()
    assert len(asked) > 50
    missing = sorted(key for function, key in asked if key not in (REPORT_TEXTS if function == "r" else TEXTS))
    assert missing == []
    for key in (key for function, key in asked if function == "r"):
        english, french = REPORT_TEXTS[key]
        assert english and french


def test_the_report_texts_have_the_same_placeholders_in_both_languages() -> None:
    for key, (english, french) in REPORT_TEXTS.items():
        assert set(re.findall(r"{(\w+)}", english)) == set(re.findall(r"{(\w+)}", french)), key
    assert report_text("report.period", "fr", start="1 nov.", end="14 nov.") == "Période : du 1 nov. au 14 nov."
