"""The minors policy: refuse prompts that depict or steer towards a person under 18.

Pure (no I/O, no clock), so the studio, the operator's admission webhook and the
operator's last check before submitting to ComfyUI all apply the very same rule.
Check the **composed** prompt (:func:`warmpool.operator.decisions.prompts.compose`:
muse template + user prompt), not its pieces: ``"{prompt}-year-old {name}"`` with the
prompt ``"12"`` is only visible once composed.

Text is normalised before matching, into a few *views*, and a match in any view refuses:

- Unicode NFKC (full-width ``ｃｈｉｌｄ``, ligatures, circled and styled letters), case
  folding, format characters removed (zero-width space/joiner, soft hyphen, bidi marks),
  accents and other combining marks removed (``chíld``, ``c̷hild``);
- look-alike letters of other scripts mapped to the Latin letter they imitate (Cyrillic
  ``сһіld``, Greek ``κid``; the letters of Unicode's confusables table that imitate
  a–z), and leetspeak inside words (``ch1ld``, ``t33n``, ``k!d``);
- letters spread out by spaces or punctuation joined (``c h i l d``, ``c.h.i.l.d``,
  ``ch-ild``), and a letter repeated three times or more read as one or two
  (``chiiiild``, ``teeeen``; "Kidd" stays a name);
- spelled-out ages (``twelve-year-old``, ``aged fifteen``) and ages in a few other
  languages (``12 años``, ``12 ans``, ``12 Jahre``, ``12 лет``, ``12歳``, ``12岁``);
- terms in a few other languages (Spanish, French, German, Italian, Portuguese,
  Russian, Japanese, Chinese).

Every term matches as a whole word (no "tween" in "between", no "infant" in
"infantry", no "minor" in "minority"), except CJK terms, which have no word breaks.

Negative prompts are checked for steering *away from adults*: "adult", "mature",
"grown-up", "over 18", ... in the negative prompt refuse when the image shows a person
(a muse, or a person word in the positive prompt). Terms such as "child" in a negative
prompt keep children out and are fine.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "ADULT_STEERING",
    "DEFAULT_TERMS",
    "Refusal",
    "check_prompt",
    "check_text",
    "normalise",
]

DEFAULT_TERMS: tuple[str, ...] = (
    # English
    "child", "children", "childlike", "childish body", "kid", "kids", "kiddie", "kiddo",
    "minor", "minors", "underage", "under age", "under-age", "under 18", "teen", "teens",
    "teenage", "teenaged", "teenager", "teenagers", "preteen", "preteens", "pre teen",
    "tween", "tweens", "adolescent", "adolescents", "juvenile", "juveniles", "youngster",
    "schoolgirl", "schoolgirls", "schoolboy", "schoolboys", "school girl", "school boy",
    "loli", "lolis", "lolita", "shota", "shotacon", "lolicon", "toddler", "toddlers",
    "infant", "infants", "baby girl", "baby boy", "jailbait", "little girl", "little girls",
    "little boy", "little boys", "young girl", "young girls", "young boy", "young boys",
    "elementary school", "primary school", "middle school", "junior high", "high schooler",
    "prepubescent", "pubescent", "barely legal",
    # Spanish, Portuguese
    "niña", "niñas", "niño", "niños", "menor de edad", "menores de edad", "colegiala",
    "adolescente", "adolescentes", "criança", "crianças", "menina", "meninas",
    "menor de idade",
    # French
    "enfant", "enfants", "fillette", "fillettes", "mineure", "mineures", "écolière",
    "collégienne",
    # German
    "minderjährig", "minderjährige", "schulmädchen", "jugendliche",
    # Italian
    "bambina", "bambine", "bambino", "bambini", "minorenne", "ragazzina", "ragazzino",
    # Russian
    "ребенок", "ребёнок", "дети", "девочка", "мальчик", "школьница", "школьник",
    "малолетка", "несовершеннолетняя", "несовершеннолетний", "подросток",
    # Japanese, Chinese (no word breaks: matched anywhere)
    "子供", "子ども", "幼女", "幼児", "女児", "男児", "児童", "小学生", "中学生", "ロリコン",
    "儿童", "萝莉", "未成年", "初中生", "小女孩", "小男孩",
)  # fmt: skip

#: In a negative prompt, these push the image away from adults.
ADULT_STEERING: tuple[str, ...] = (
    "adult", "adults", "adult body", "adult face", "mature", "mature body", "grown up",
    "grownup", "grown woman", "grown man", "over 18", "18+", "of age", "legal age", "milf",
    "adulte", "adultes", "adulto", "adulta", "erwachsen", "erwachsene", "взрослый",
    "взрослая", "成人", "大人",
)  # fmt: skip

#: A person in the positive prompt (then an adult-steering negative prompt refuses).
PERSON_WORDS: tuple[str, ...] = (
    "girl", "girls", "boy", "boys", "woman", "women", "man", "men", "lady", "ladies",
    "guy", "guys", "person", "people", "female", "male", "character", "model", "portrait",
    "body", "figure", "she", "he", "her", "him", "face", "selfie", "nude", "naked",
    "waifu", "idol", "student", "pupil", "cheerleader", "1girl", "1boy", "2girls",
)  # fmt: skip

ADULT_AGE = 18

_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20,
    "uno": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7,
    "ocho": 8, "nueve": 9, "diez": 10, "once": 11, "doce": 12, "trece": 13, "catorce": 14,
    "quince": 15, "dieciseis": 16, "diecisiete": 17,
    "douze": 12, "treize": 13, "quatorze": 14, "quinze": 15, "seize": 16,
    "zwolf": 12, "dreizehn": 13, "vierzehn": 14, "funfzehn": 15, "sechzehn": 16,
    "siebzehn": 17,
}  # fmt: skip

#: Letters of other scripts (and symbols) that imitate a-z, after NFKC and case folding
#: (a subset of Unicode's confusables.txt: the look-alikes of the Latin small letters).
_CONFUSABLES = str.maketrans(
    {
        # Cyrillic
        "а": "a", "в": "b", "г": "r", "е": "e", "ё": "e", "з": "3", "и": "u", "і": "i",
        "ї": "i", "ј": "j", "к": "k", "л": "n", "м": "m", "н": "h", "о": "o", "п": "n",
        "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "һ": "h", "ԁ": "d",
        "ԛ": "q", "ԝ": "w", "ь": "b", "ӏ": "l", "ɩ": "i", "ʟ": "l",
        # Greek
        "α": "a", "β": "b", "γ": "y", "δ": "d", "ε": "e", "η": "n", "ι": "i", "κ": "k",
        "ν": "v", "ο": "o", "ρ": "p", "σ": "o", "ς": "c", "τ": "t", "υ": "u", "χ": "x",
        "ω": "w", "ϲ": "c", "ϳ": "j",
        # Latin look-alikes and symbols
        "ı": "i", "ȷ": "j", "ℓ": "l", "ſ": "s", "ß": "ss", "æ": "ae", "œ": "oe", "ø": "o",
        "đ": "d", "ħ": "h", "ł": "l", "ŀ": "l", "ɡ": "g", "ɑ": "a", "ɪ": "i", "ʏ": "y",
        "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ɢ": "g", "ʜ": "h", "ᴊ": "j",
        "ᴋ": "k", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r", "ᴛ": "t", "ᴜ": "u",
        "ᴠ": "v", "ᴡ": "w", "ᴢ": "z",
    }
)  # fmt: skip
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
     "@": "a", "$": "s", "!": "i", "|": "l", "€": "e", "+": "t"}
)  # fmt: skip
_LEET_WORD = re.compile(r"[a-z0-9@$!|€+]*[a-z][a-z0-9@$!|€+]*|[0-9@$!|€+]+[a-z][a-z0-9@$!|€+]*")
_SPREAD = re.compile(r"(?<![a-z])[a-z](?:[^a-z0-9\n]{1,3}[a-z](?![a-z])){2,}")
_INNER_PUNCT = re.compile(r"(?<=[a-z])[.\-_*'`~^:;·•/\\]+(?=[a-z])")
_RUN = re.compile(r"([a-z])\1{2,}")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


@dataclass(frozen=True)
class Refusal:
    """Why a text was refused: the matched words (normalised) and where."""

    match: str
    where: str = "prompt"

    @property
    def message(self) -> str:
        if self.where == "negative":
            return (
                f"refused by the content policy: {self.match!r} in the negative prompt "
                "steers the image away from adults; only adults may be depicted"
            )
        return (
            f"refused by the content policy: {self.match!r} suggests a person under 18; "
            "only adults may be depicted"
        )


def _fold(text: str) -> str:
    """NFKC, case folding, no format characters, no combining marks."""
    text = unicodedata.normalize("NFKC", text).casefold()
    decomposed = unicodedata.normalize("NFD", text)
    kept = "".join(c for c in decomposed if unicodedata.category(c) not in ("Mn", "Me", "Cf"))
    return unicodedata.normalize("NFC", kept)


def normalise(text: str) -> str:
    """The text folded and with look-alike letters mapped to Latin (digits kept)."""
    return _fold(text).translate(_CONFUSABLES)


def _leet(text: str) -> str:
    return _LEET_WORD.sub(lambda m: m.group(0).translate(_LEET), text)


def _join(m: re.Match[str]) -> str:
    """A run of single letters joined; also without its first or last letter, which may
    be a word of its own ("a c h i l d")."""
    letters = re.sub(r"[^a-z]", "", m.group(0))
    return f"{letters} {letters[1:]} {letters[:-1]}"


def _views(text: str) -> tuple[str, ...]:
    """The texts the terms are matched in (see the module docstring)."""
    folded = _fold(text)
    latin = folded.translate(_CONFUSABLES)
    leet = _leet(latin)
    joined = _SPREAD.sub(_join, leet)
    tight = _INNER_PUNCT.sub("", joined)
    once, twice = _RUN.sub(r"\1", tight), _RUN.sub(r"\1\1", tight)  # "chiiild", "teeeen"
    return folded, latin, leet, joined, tight, once, twice


_TOKEN = re.compile(r"[^\W\d_]+|\d+")  # letter runs and digit runs: "2kids" → 2, kids
_PLAIN = re.compile(r"[\w\s\-.]+")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


@dataclass(frozen=True)
class _Index:
    """Terms ready to match without one big regex (Python's re tries every alternative at
    every position: too slow for a 4,000-character prompt in seven views). One-word terms
    are a set looked up per token, several-word terms tuples looked up per run of tokens
    (so "school girl", "school-girl" and "schoolgirl" all match, each a whole word), CJK
    terms substrings, and the few with other characters ("18+") a small regex."""

    words: frozenset[str]
    phrases: frozenset[tuple[str, ...]]
    lengths: tuple[int, ...]
    cjk: tuple[str, ...]
    others: re.Pattern[str] | None

    def search(self, view: str) -> str | None:
        tokens = _tokens(view)
        for token in tokens:
            if token in self.words:
                return token
        for n in self.lengths:
            for k in range(len(tokens) - n + 1):
                if (run := tuple(tokens[k : k + n])) in self.phrases:
                    return " ".join(run)
        for term in self.cjk:
            if term in view:
                return term
        if self.others is not None and (m := self.others.search(view)):
            return m.group(0)
        return None


@lru_cache(maxsize=16)
def _compiled(terms: tuple[str, ...]) -> _Index | None:
    words: set[str] = set()
    phrases: set[tuple[str, ...]] = set()
    cjk: list[str] = []
    others: list[str] = []
    for term in {_fold(t.strip()) for t in terms if t.strip()}:
        parts = tuple(_tokens(term))
        if _CJK.search(term):
            cjk.append(term)
        elif not _PLAIN.fullmatch(term):
            body = re.escape(term)
            others.append(rf"(?<![^\W_]){body}" if term[0].isalnum() else body)
        elif len(parts) == 1:
            words.add(parts[0])
        elif parts:
            phrases.add(parts)
            if all(p.isalpha() for p in parts):
                words.add("".join(parts))  # "schoolgirl" for "school girl"
    if not (words or phrases or cjk or others):
        return None
    return _Index(
        frozenset(words),
        frozenset(phrases),
        tuple(sorted({len(p) for p in phrases})),
        tuple(sorted(cjk)),
        re.compile("|".join(others)) if others else None,
    )


_NUMBER = "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True))
_N = rf"(\d{{1,3}}|{_NUMBER})"
_AGES = re.compile(
    rf"(?<![\w.,]){_N}\s*[-\s]?\s*(?:years?|yrs?|yr)\s*[-\s]?\s*old\b"
    rf"|(?<![\w.,]){_N}\s*(?:y\s*/?\s*o|y\.o\.?|yo)\b"
    rf"|\bage[ds]?\s*(?:of\s*)?[:=]?\s*{_N}(?![\w.,])"
    rf"|(?<![\w.,]){_N}\s*[-\s]?\s*(?:anos|ans|jahre(?:\s*alt)?|jahrige[rn]?|anni|лет|года?)\b"
    rf"|(?<![\w.,])(\d{{1,3}})\s*(?:歳|才|岁|세)"
    rf"|\b(?:de|a)\s+{_N}\s+(?:anos|ans)\b",
    re.IGNORECASE,
)


_AGE_HINT = re.compile(r"y|age|an|jahr|лет|год|歳|才|岁|세")  # every age pattern has one


def _age(value: str) -> int:
    return int(value) if value.isdigit() else _NUMBER_WORDS[value]


def _age_refusal(text: str) -> Refusal | None:
    folded = _fold(text)
    for view in (folded, folded.translate(_CONFUSABLES)):  # "12 лет", and "12 уеаrs old"
        if not _AGE_HINT.search(view):
            continue
        for m in _AGES.finditer(view):
            value = next(g for g in m.groups() if g)
            if _age(value) < ADULT_AGE:
                return Refusal(m.group(0).strip())
    return None


def _search(index: _Index | None, text: str) -> str | None:
    if index is None:
        return None
    for view in _views(text):
        if found := index.search(view):
            return found
    return None


def check_text(text: str, terms: Iterable[str] | None = None) -> Refusal | None:
    """The first reason to refuse one positive text, or None. ``terms`` replaces the
    default terms (the age rule always applies)."""
    chosen = DEFAULT_TERMS if terms is None else tuple(terms)
    if found := _search(_compiled(chosen), text):
        return Refusal(found)
    return _age_refusal(text)


def shows_a_person(text: str) -> bool:
    return _search(_compiled(PERSON_WORDS), text) is not None


def check_prompt(
    positive: str,
    negative: str = "",
    *,
    person: bool = False,
    terms: Iterable[str] | None = None,
) -> Refusal | None:
    """The policy on a composed prompt: the positive text, then the negative one steering
    away from adults when a person is shown (``person``: a muse is, always)."""
    if refusal := check_text(positive, terms):
        return refusal
    steers = negative and (person or shows_a_person(positive))
    if steers and (found := _search(_compiled(ADULT_STEERING), negative)):
        return Refusal(found, where="negative")
    return None
