"""English number normalisation: digits, currency, ordinals and years spelled out as words.

Examples: "3.5" -> "three point five", "2nd" -> "second", "$3.50" -> "three dollars, fifty cents",
"1,000" -> "one thousand", "£2" -> "two pounds", "1984" -> "nineteen eighty-four", "2005" -> "two thousand five".
"""

from __future__ import annotations

import functools
import re


@functools.cache
def _engine():
    """inflect's engine, made on first use: importing inflect takes ~2.6 s, which every command that never
    spells a number (synthesis of a text without digits, a resumed run with cached data) would pay."""
    import inflect

    return inflect.engine()


# Thousands grouping only ("1,000", "12,345,678"), so a list such as "1,2,3" keeps its commas.
_THOUSANDS_RE = re.compile(r"(?<![\d,])\d{1,3}(?:,\d{3})+(?![\d,])")
_POUNDS_RE = re.compile(r"£(\d+)(?:\.(\d+))?")
_DOLLARS_RE = re.compile(r"\$(\d+)(?:\.(\d+))?")
_EUROS_RE = re.compile(r"€(\d+)(?:\.(\d+))?")
_PERCENT_RE = re.compile(r"(\d+(?:\.\d+)?)\s?%")
_DECIMAL_RE = re.compile(r"(\d*)\.(\d+)")
_ORDINAL_RE = re.compile(r"(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_NUMBER_RE = re.compile(r"\d+")


def _cardinal(n: int) -> str:
    # andword="" gives American "one hundred five" rather than "one hundred and five".
    return _engine().number_to_words(n, andword="")


def _digits(s: str) -> str:
    return " ".join(_cardinal(int(c)) for c in s)


def _year(n: int) -> str:
    """Read 1000 <= n <= 2999 the way years are spoken."""
    if n % 1000 == 0:
        return _cardinal(n)  # "two thousand"
    if 2000 < n < 2010:
        return f"two thousand {_cardinal(n % 100)}"
    hi, lo = divmod(n, 100)
    if lo == 0:
        return f"{_cardinal(hi)} hundred"  # "nineteen hundred"
    if lo < 10:
        return f"{_cardinal(hi)} oh {_cardinal(lo)}"  # "nineteen oh five"
    return f"{_cardinal(hi)} {_cardinal(lo)}"


def _integer(s: str) -> str:
    if len(s) > 1 and s.startswith("0"):
        return _digits(s)  # "007", zip codes: read digit by digit
    n = int(s)
    if 1000 <= n <= 2999 and len(s) == 4:
        return _year(n)
    return _cardinal(n)


def _money(whole: str, frac: str | None, unit: tuple[str, str], sub: tuple[str, str]) -> str:
    units = int(whole)
    # Two fractional digits are the minor unit; "$3.5" means fifty cents, not five.
    cents = int((frac + "00")[:2]) if frac else 0
    parts = []
    if units or not cents:
        parts.append(f"{_cardinal(units)} {unit[0] if units == 1 else unit[1]}")
    if cents:
        parts.append(f"{_cardinal(cents)} {sub[0] if cents == 1 else sub[1]}")
    return ", ".join(parts)


def normalize_numbers(text: str) -> str:
    """Spell out every number in `text` as English words; other characters are left untouched."""
    text = _THOUSANDS_RE.sub(lambda m: m.group(0).replace(",", ""), text)
    text = _POUNDS_RE.sub(lambda m: _money(m.group(1), m.group(2), ("pound", "pounds"), ("penny", "pence")), text)
    text = _DOLLARS_RE.sub(lambda m: _money(m.group(1), m.group(2), ("dollar", "dollars"), ("cent", "cents")), text)
    text = _EUROS_RE.sub(lambda m: _money(m.group(1), m.group(2), ("euro", "euros"), ("cent", "cents")), text)
    text = _PERCENT_RE.sub(lambda m: f"{m.group(1)} percent", text)
    text = _DECIMAL_RE.sub(lambda m: f"{_cardinal(int(m.group(1) or 0))} point {_digits(m.group(2))}", text)
    text = _ORDINAL_RE.sub(lambda m: _engine().ordinal(_cardinal(int(m.group(1)))), text)
    return _NUMBER_RE.sub(lambda m: _integer(m.group(0)), text)
