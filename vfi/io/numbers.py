"""Numbers a user types (options, lists, ``FRAME=SEED``): ASCII decimal numbers only.

Python's ``int`` and ``float`` also read other scripts' digits (``"٣"`` is 3), underscores (``"1_000"``),
``"nan"`` and ``"inf"``. Both parsers here are argparse types too: their sentence follows the option's name.
"""

from __future__ import annotations

import argparse
import math
import re

_WHOLE = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


class NumberError(ValueError, argparse.ArgumentTypeError):
    """Not a number in ASCII digits: a ``ValueError`` whose message argparse prints after the option's name."""


def parse_whole(text: str) -> int:
    """A whole number written in ASCII digits (``"12"``, `` 3 ``); anything else (``"²"``, ``"-1"``, ``"1e3"``)
    raises :class:`NumberError`."""
    text = text.strip()
    try:
        if _WHOLE.fullmatch(text):
            return int(text)
    except ValueError:  # more digits than int() reads
        pass
    raise NumberError(f"expected a whole number in digits 0-9 (e.g. 3), got {text!r}")


def parse_decimal(text: str) -> float:
    """A finite decimal number in ASCII (``"0.5"``, ``"-2"``, ``"1e-4"``); ``"nan"``, ``"inf"``, ``"1e999"``,
    ``"1_0"`` or other scripts' digits raise :class:`NumberError`."""
    text = text.strip()
    if _DECIMAL.fullmatch(text) and math.isfinite(number := float(text)):
        return number
    raise NumberError(f"expected a finite decimal number in digits 0-9 (e.g. 0.5), got {text!r}")
