"""From typed words to the structures a route can segment: ``Vocabulary.resolve("lt hipocampus")``.

A vocabulary is built from label tables (``{value: name}``: an atlas's names, or a trained model's class
names). Each name becomes an :class:`Entry`: a canonical, side-free key (``medseg.text.words``), a side
("left", "right" or None) and the label values that make it. Users' words are reduced the same way, then
looked up: curated synonyms, groups (one object made of several structures), and, failing an exact key, a
fuzzy match (rapidfuzz) for typos. Failures are one-line MedsegErrors: an unknown name lists the closest
known names, an ambiguous one lists the choices.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from medseg.errors import MedsegError
from medseg.text import words as W

FUZZY_ACCEPT = 80  # rapidfuzz ratio (0..100) a typo must reach to be taken as the name
FUZZY_TIE = 3  # candidates within this many points of the best one make the name ambiguous
SIDES = ("left", "right")


@dataclass(frozen=True)
class Entry:
    """One structure of a label table.

    Attributes:
        key: canonical side-free key (``"caudate"``, ``"frontal pole"``, ``"anterior cingulate division"``).
        display: side-free name to show (``"caudate"``, ``"insular cortex"``).
        side: "left", "right" or None (a midline / whole structure).
        values: the label values of the table that make this structure.
        source: the table's label name(s) it came from (``"Left_Caudate"``).
    """

    key: str
    display: str
    side: str | None
    values: tuple[int, ...]
    source: str

    @property
    def name(self) -> str:
        return f"{self.side} {self.display}" if self.side else self.display


@dataclass(frozen=True)
class Resolved:
    """What a text prompt asks for.

    Attributes:
        text: the user's words.
        name: what it was understood as (``"left hippocampus"``, ``"both lentiform nucleus"``).
        parts: the (key, side) pairs it joins; one object, the union of their masks.
        how: "exact", "synonym", "group" or "typo (<score>)".
    """

    text: str
    name: str
    parts: tuple[tuple[str, str | None], ...]
    how: str


def _rapidfuzz():
    try:
        from rapidfuzz import fuzz, process
    except ImportError:
        raise MedsegError("matching misspelt names needs rapidfuzz: pip install 'medseg[text]'") from None
    return fuzz, process


def _abbreviation(part: str, following: int) -> bool:
    """Neuromorphometrics-style abbreviations ("ACgG", "AIns", "FRP") ahead of the spelled-out name."""
    return following > 0 and len(part) >= 2 and part[0].isupper() and any(c.isupper() for c in part[1:])


def entry_words(label: str) -> tuple[str | None, list[str], list[str]]:
    """(side, words, aliases) of an atlas label name; parentheses and leading abbreviations are aliases."""
    plain = re.sub(r"\([^)]*\)", " ", label)
    side, rest = W.split_side(plain)
    parts = [p for p in re.split(r"[_\s]+", plain) if p and W.tokens(p) and W.tokens(p)[0] not in
             (W.LEFT_WORDS | W.RIGHT_WORDS)]
    aliases = []
    if parts and _abbreviation(parts[0], len(parts) - 1):
        aliases.append(parts[0].lower())
        rest = [w for w in rest if w != parts[0].lower()]
    return side, rest, aliases


def canonical(words_key: str) -> str:
    """The canonical key of a key: a synonym's target key, else itself."""
    return _SYNONYM_KEYS.get(words_key, words_key)


def _k(text: str) -> str:
    return W.key(W.tokens(text))


_SYNONYM_KEYS = {_k(a): _k(b) for a, b in W.SYNONYMS.items()}
_SYNONYM_DISPLAY = {_k(b): b for b in W.SYNONYMS.values()}
_GROUP_KEYS = {_k(g): (g, tuple(_k(p) for p in parts)) for g, parts in W.GROUPS.items()}
_NOT_BRAIN = {_k(n) for n in W.NOT_BRAIN}


class Vocabulary:
    """The names one route serves, and how typed words resolve to them.

    Args:
        tables: label tables ``{value: name}`` (merged; names equal after normalising are one entry).
        scope: what the vocabulary covers, for messages ("brain structures of the MNI152 atlas route").
    """

    def __init__(self, tables: Iterable[Mapping[int, str]], scope: str = "known structures") -> None:
        self.scope = scope
        found: dict[tuple[str, str | None], Entry] = {}
        self._aliases: dict[str, str] = {}
        for table in tables:
            for value, label in table.items():
                side, words, aliases = entry_words(label)
                key = canonical(W.key(words))
                if not key:
                    continue
                if side == "both":
                    side = None
                display = _SYNONYM_DISPLAY.get(key, " ".join(words))
                old = found.get((key, side))
                if old is not None:
                    found[(key, side)] = Entry(key, old.display, side, old.values + (int(value),),
                                               f"{old.source}+{label}")
                else:
                    found[(key, side)] = Entry(key, display, side, (int(value),), label)
                for alias in aliases:
                    self._aliases.setdefault(alias, key)
        self.entries = found
        self.keys = {key for key, _ in found}
        self._sides = {key: {s for k, s in found if k == key} for key in self.keys}

    def __len__(self) -> int:
        return len(self.entries)

    def names(self) -> list[str]:
        """Every structure as it can be asked for ("left caudate", "brainstem"), sorted."""
        return sorted(e.name for e in self.entries.values())

    def groups(self) -> list[str]:
        """The group names this vocabulary can serve (all their members are known)."""
        return sorted(g for g, parts in _GROUP_KEYS.values() if all(p in self.keys for p in parts))

    def entry(self, key: str, side: str | None) -> Entry:
        return self.entries[(key, side)]

    # ----- resolution -----------------------------------------------------------------------------------
    def resolve(self, text: str) -> Resolved:
        """What ``text`` names.

        Raises:
            MedsegError: empty text; a side without a structure; a name it cannot resolve (lists the
                closest known names); an ambiguous name (lists the choices); a side the structure lacks.
        """
        if not isinstance(text, str) or not text.strip():
            raise MedsegError("empty text prompt: name a structure, e.g. --text 'left hippocampus'")
        if len(text) > 200:
            raise MedsegError(f"text prompt of {len(text)} characters; name one structure (at most 200)")
        side, words = W.split_side(text)
        key = W.key(words)
        if not key:
            raise MedsegError(f"text prompt {text!r} gives a side but no structure, e.g. 'left caudate'")
        keys, display, how = self._lookup(text, key)
        return self._with_side(text, keys, display, side, how)

    def _lookup(self, text: str, key: str) -> tuple[tuple[str, ...], str, str]:
        """(keys, display, how) for a side-free key."""
        if key in _GROUP_KEYS and all(p in self.keys for p in _GROUP_KEYS[key][1]):
            return _GROUP_KEYS[key][1], _GROUP_KEYS[key][0], "group"
        direct = canonical(self._aliases.get(key, key))
        if direct in self.keys:
            return (direct,), self._display(direct), "exact" if direct == key else "synonym"
        subset = self._containing(key)
        if len(subset) == 1:
            return (subset[0],), self._display(subset[0]), "partial"
        if key in _NOT_BRAIN:
            raise MedsegError(f"text prompt {text!r}: no route for this scan serves it; it offers {self.scope} "
                              f"(see `medseg structures SCAN`)")
        if len(subset) > 1:
            raise MedsegError(f"text prompt {text!r} is ambiguous: it could be {self._choices(subset)}")
        return self._fuzzy(text, key)

    def _containing(self, key: str) -> list[str]:
        """Known keys holding every word of ``key`` (``"cingulate"`` -> its anterior and posterior divisions)."""
        wanted = set(key.split())
        return sorted(k for k in self.keys if wanted <= set(k.split()))

    def _fuzzy(self, text: str, key: str) -> tuple[tuple[str, ...], str, str]:
        fuzz, process = _rapidfuzz()

        targets = self._phrases()
        found = process.extract(key, list(targets), scorer=fuzz.ratio, limit=8)
        if not found or found[0][1] < FUZZY_ACCEPT:
            raise MedsegError(f"text prompt {text!r} names no structure this scan's routes know; "
                              f"closest: {self._closest(key)}")
        best = found[0][1]
        near = {targets[phrase] for phrase, score, _ in found if score >= best - FUZZY_TIE}
        if len(near) > 1:
            raise MedsegError(f"text prompt {text!r} is ambiguous: it could be "
                              f"{self._choices([n for nk in sorted(near) for n in nk])}")
        keys = near.pop()
        display = _GROUP_KEYS[keys[0]][0] if keys[0] in _GROUP_KEYS else self._display(keys[0])
        if keys[0] in _GROUP_KEYS:
            keys = _GROUP_KEYS[keys[0]][1]
        return keys, display, f"typo ({best:.0f})"

    def _phrases(self) -> dict[str, tuple[str, ...]]:
        """Every phrase the fuzzy matcher may land on -> the key(s) it stands for (a group: its own key)."""
        out: dict[str, tuple[str, ...]] = {k: (k,) for k in self.keys}
        out.update({a: (k,) for a, k in _SYNONYM_KEYS.items() if k in self.keys and len(a) > 3})
        out.update({a: (k,) for a, k in self._aliases.items() if len(a) > 3})
        out.update({g: (g,) for g, (_, parts) in _GROUP_KEYS.items() if all(p in self.keys for p in parts)})
        return out

    def _closest(self, key: str, limit: int = 3) -> str:
        fuzz, process = _rapidfuzz()

        names = {e.display: e.key for e in self.entries.values()}
        found = process.extract(key, list(names), scorer=fuzz.WRatio, limit=limit)
        return ", ".join(repr(n) for n, _, _ in found) if found else "none"

    def _display(self, key: str) -> str:
        return next(e.display for (k, _), e in self.entries.items() if k == key)

    def _choices(self, keys: Iterable[str]) -> str:
        shown = []
        for key in keys:
            sides = sorted(s for s in self._sides.get(key, {None}) if s)
            display = self._display(key) if key in self.keys else key
            shown += [f"{s} {display}" for s in sides] or [display]
        text = ", ".join(repr(s) for s in shown[:8])
        return text + (f" (and {len(shown) - 8} more)" if len(shown) > 8 else "")

    def _with_side(self, text: str, keys: tuple[str, ...], display: str, side: str | None, how: str) -> Resolved:
        lateral = [k for k in keys if self._sides[k] & set(SIDES)]
        if lateral and side is None:
            raise MedsegError(f"text prompt {text!r} is ambiguous: say 'left {display}', 'right {display}' "
                              f"or 'both {display}'")
        if not lateral and side is not None:
            raise MedsegError(f"text prompt {text!r}: {display!r} has no {side} side here; ask for {display!r}")
        sides = (side,) if side in SIDES else SIDES if side == "both" else (None,)
        parts = tuple((k, s if k in lateral else None) for s in sides for k in keys)
        parts = tuple(p for p in dict.fromkeys(parts) if p in self.entries)
        name = f"{side} {display}" if side else display
        return Resolved(text, name, parts, how)
