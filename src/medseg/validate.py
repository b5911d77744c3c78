"""One place that checks numbers from users: the command line's options and the public API's arguments.

Every check raises a one-line MedsegError naming the option or field, the value and what would work,
e.g. ``--lr nan: must be a positive finite number, e.g. 1e-4``. Booleans are refused where numbers go
(``isinstance(True, int)`` is True in Python), and so are NaN and infinities.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable

from medseg.errors import MedsegError

INT_MAX = 2**31 - 1  # the largest count or index any option takes (numpy and torch index with int32/64)
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)
_SPECIAL = re.compile(r"[+-]?(nan|inf|infinity)", re.IGNORECASE)


def _g(bound: float) -> str:
    """A bound as people write it: 2147483647, 1, 0.5, 1e-06."""
    return str(int(bound)) if float(bound).is_integer() and abs(bound) < 1e16 else f"{bound:g}"


def _want(*, minimum: float | None, maximum: float | None, positive: bool, integer: bool, below: float | None,
          example: object | None) -> str:
    """'must be a whole number from 1 to 2147483647, e.g. 4' and the like."""
    kind = "whole number" if integer else "finite number"
    if positive and integer and minimum is None:
        minimum, positive = 1, False
    if positive:
        kind = f"positive {kind}"
    if minimum is not None and maximum is not None:
        text = f"a {kind} from {_g(minimum)} to {_g(maximum)}"
    elif minimum is not None and below is not None:
        text = f"a {kind} from {_g(minimum)} up to (not including) {_g(below)}"
    elif minimum is not None:
        text = f"a {kind} >= {_g(minimum)}" if minimum != 0 else f"a non-negative {kind}"
    elif maximum is not None:
        text = f"a {kind} <= {_g(maximum)}"
    else:
        text = f"a {kind}"
    return f"must be {text}" + ("" if example is None else f", e.g. {example}")


def number(value: object, name: str, *, minimum: float | None = None, maximum: float | None = None,
           positive: bool = False, integer: bool = False, below: float | None = None,
           example: object | None = None, shown: str | None = None) -> float | int:
    """``value`` as a checked number (an int with ``integer``), or a one-line MedsegError.

    Args:
        value: the user's value: an int or float (numpy scalars too); never a bool or a string.
        name: the option or field it came from, e.g. "--lr" or "TrainConfig.lr".
        minimum, maximum: inclusive bounds; ``below``: exclusive upper bound.
        positive: must be > 0. integer: must be a whole number (2.0 is taken as 2).
        example: a value that would work, quoted in the message.
        shown: how the message shows the value (default: the value itself).
    """
    integer_max = maximum if maximum is not None else (INT_MAX if integer else None)
    want = _want(minimum=minimum, maximum=integer_max, positive=positive, integer=integer, below=below,
                 example=example)
    if shown is None:
        shown = repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise MedsegError(f"{name} {shown}: not a number; {want}")
    value = int(value) if isinstance(value, numbers.Integral) else float(value)
    if isinstance(value, float) and (not math.isfinite(value) or (integer and not value.is_integer())):
        raise MedsegError(f"{name} {shown}: {want}")
    value = int(value) if integer else value
    low_ok = (minimum is None or value >= minimum) and (not positive or value > 0)
    high_ok = (integer_max is None or value <= integer_max) and (below is None or value < below)
    if not (low_ok and high_ok):
        raise MedsegError(f"{name} {shown}: {want}")
    return value


def parse_number(text: str, name: str, **rules) -> float | int:
    """A number written in ``text`` (ASCII digits, as 3, -2.5 or 1e-4), checked like ``number``."""
    stripped = text.strip()
    integer = rules.get("integer", False)
    shown = text if text.isprintable() and text == stripped else repr(text)
    if _SPECIAL.fullmatch(stripped):  # nan, inf, -Infinity: refused by number() as not finite
        return number(float(stripped), name, shown=shown, **rules)
    if not (_INTEGER if integer else _DECIMAL).fullmatch(stripped):
        want = _want(minimum=rules.get("minimum"), maximum=rules.get("maximum", INT_MAX if integer else None),
                     positive=rules.get("positive", False), integer=integer, below=rules.get("below"),
                     example=rules.get("example"))
        what = "not a whole number" if integer and _DECIMAL.fullmatch(stripped) else "not a number"
        raise MedsegError(f"{name} {text!r}: {what}; {want}")
    return number(int(stripped) if integer else float(stripped), name, shown=shown, **rules)


def option(name: str, **rules) -> Callable[[str], float | int]:
    """An argparse ``type=`` for option ``name``: parses and checks its text with ``parse_number``."""

    def convert(text: str) -> float | int:
        return parse_number(text, name, **rules)

    convert.__name__ = name.lstrip("-").replace("-", "_")
    return convert


def whole(name: str, minimum: int = 0, maximum: int = INT_MAX, **rules) -> Callable[[str], int]:
    """An argparse ``type=`` for an option taking a whole number from ``minimum`` to ``maximum``."""
    return option(name, integer=True, minimum=minimum, maximum=maximum, **rules)


def coordinates(values: object, name: str, count: int | tuple[int, ...]) -> list[float]:
    """A list of ``count`` finite numbers (no bools), e.g. a box's four corners."""
    counts = (count,) if isinstance(count, int) else count
    items = list(values) if isinstance(values, (list, tuple)) else None
    if items is None or len(items) not in counts:
        raise MedsegError(f"{name}: expected a list of {' or '.join(map(str, counts))} numbers, got {values!r}")
    return [float(number(v, name)) for v in items]
