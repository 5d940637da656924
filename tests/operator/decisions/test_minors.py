"""The minors policy, table-driven (T1): hundreds of cases, each with an id.

Built from a few tables: terms × obfuscations that must be refused, stated ages
(digits, words, other languages) under and over 18, benign texts that contain a term
as part of a longer word, composed muse prompts, and negative prompts steering away
from adults.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from warmpool.crds.muse import MuseSpec
from warmpool.operator.decisions import minors, prompts

TERMS = [
    "child", "kid", "kids", "teen", "teenager", "preteen", "tween", "minor", "underage",
    "schoolgirl", "loli", "toddler", "infant", "adolescent", "jailbait", "lolicon",
]  # fmt: skip

FULL_WIDTH = {chr(c): chr(c + 0xFEE0) for c in range(ord("a"), ord("z") + 1)}
CYRILLIC = {"a": "а", "c": "с", "e": "е", "i": "і", "o": "о", "p": "р", "x": "х", "y": "у",
            "h": "һ", "s": "ѕ", "d": "ԁ", "j": "ј", "k": "к", "l": "ӏ"}  # fmt: skip
GREEK = {"i": "ι", "k": "κ", "o": "ο", "n": "η", "t": "τ", "a": "α", "e": "ε"}
LEET = {"i": "1", "e": "3", "o": "0", "a": "4", "s": "5", "t": "7"}


def swap(table: dict[str, str]) -> Callable[[str], str]:
    return lambda w: "".join(table.get(c, c) for c in w)


OBFUSCATIONS: dict[str, Callable[[str], str]] = {
    "plain": lambda w: w,
    "upper": str.upper,
    "title": str.title,
    "full-width": swap(FULL_WIDTH),
    "zero-width-space": lambda w: "\u200b".join(w),
    "zero-width-joiner": lambda w: w[0] + "\u200d" + w[1:],
    "soft-hyphen": lambda w: w[:2] + "\u00ad" + w[2:],
    "spaced": " ".join,
    "dotted": ".".join,
    "dashed": "-".join,
    "split-dot": lambda w: w[:2] + "." + w[2:],
    "cyrillic": swap(CYRILLIC),
    "greek": swap(GREEK),
    "leet": swap(LEET),
    "accents": lambda w: "".join(c + "\u0301" if c in "aeiou" else c for c in w),
    "repeated": lambda w: w[0] + w[1] * 4 + w[2:],
    "in-a-sentence": lambda w: f"photo of a {w} in a park",
    "with-punctuation": lambda w: f"({w})!",
}


def obfuscated_cases() -> list[object]:
    cases = []
    for term in TERMS:
        for how, fn in OBFUSCATIONS.items():
            cases.append(pytest.param(fn(term), id=f"{term}-{how}"))
    return cases


@pytest.mark.parametrize("text", obfuscated_cases())
def test_terms_are_refused_however_written(text: str) -> None:
    assert minors.check_text(text) is not None, text


AGES_REFUSED = {
    "digits": "a {n} year old",
    "dashed": "a {n}-year-old",
    "yrs": "{n} yrs old",
    "yo": "she is {n}yo",
    "y/o": "{n} y/o",
    "aged": "aged {n}",
    "age-colon": "age: {n}",
    "years-old-spaced": "{n}   years   old",
    "full-width": "{fw} year old",
    "spanish": "una chica de {n} años",
    "french": "une fille de {n} ans",
    "german": "ein {n} Jahre altes Mädchen",
    "german-adj": "{n}-jährige",
    "italian": "{n} anni",
    "russian": "девушка {n} лет",
    "japanese": "{n}歳の女の子",
    "chinese": "{n}岁女孩",
    "korean": "{n}세",
}


def age_cases(ages: range, expect_refused: bool) -> list[object]:
    cases = []
    for n in ages:
        fw = "".join(chr(ord(d) + 0xFEE0) for d in str(n))
        for how, template in AGES_REFUSED.items():
            text = template.format(n=n, fw=fw)
            cases.append(pytest.param(text, expect_refused, id=f"age{n}-{how}"))
    return cases


@pytest.mark.parametrize(
    ("text", "refused"),
    age_cases(range(1, 18, 4), True) + age_cases(range(18, 19), False)
    + age_cases(range(25, 80, 27), False),
)  # fmt: skip
def test_stated_ages(text: str, refused: bool) -> None:
    assert (minors.check_text(text) is not None) is refused, text


SPELLED = {
    "five": True, "nine": True, "twelve": True, "thirteen": True, "fifteen": True,
    "sixteen": True, "seventeen": True, "eighteen": False, "nineteen": False, "twenty": False,
}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        pytest.param(f"a {w}-year-old", r, id=f"spelled-{w}-dashed")
        for w, r in SPELLED.items()
    ]
    + [pytest.param(f"{w} years old", r, id=f"spelled-{w}-spaced") for w, r in SPELLED.items()]
    + [pytest.param(f"aged {w}", r, id=f"spelled-{w}-aged") for w, r in SPELLED.items()]
    + [pytest.param(f"{w.upper()} YEAR OLD", r, id=f"spelled-{w}-up") for w, r in SPELLED.items()],
)  # fmt: skip
def test_spelled_out_ages(text: str, refused: bool) -> None:
    assert (minors.check_text(text) is not None) is refused, text


OTHER_LANGUAGES = [
    ("es", "una niña en la playa"), ("es", "un niño jugando"), ("es", "menor de edad"),
    ("es", "colegiala"), ("pt", "uma criança"), ("pt", "menina bonita"),
    ("fr", "une enfant"), ("fr", "fillette"), ("fr", "écolière en uniforme"),
    ("fr", "ecoliere"), ("de", "minderjährige"), ("de", "Schulmädchen"),
    ("it", "una bambina"), ("it", "minorenne"), ("it", "ragazzina"),
    ("ru", "ребёнок"), ("ru", "ребенок"), ("ru", "школьница"), ("ru", "девочка"),
    ("ru", "несовершеннолетняя"), ("ja", "幼女"), ("ja", "子供"), ("ja", "子ども"),
    ("ja", "小学生の女の子"), ("ja", "ロリコン"), ("zh", "萝莉"), ("zh", "儿童"),
    ("zh", "未成年少女"), ("zh", "小女孩"),
]  # fmt: skip


@pytest.mark.parametrize(
    "text", [pytest.param(t, id=f"{lang}-{i}") for i, (lang, t) in enumerate(OTHER_LANGUAGES)]
)
def test_other_languages(text: str) -> None:
    assert minors.check_text(text) is not None, text


BENIGN = [
    "between two trees", "infantry charge at dawn", "minority report", "kidney beans",
    "skidding cars on ice", "a tweed jacket", "childers street", "kidnapper movie poster",
    "teenth", "canteen in the desert", "fifteenth century castle", "nineteenth century",
    "seventeenth century painting", "a lighthouse at dusk", "a 25 year old woman",
    "1024 year old dragon", "4 years ago", "the year 2012", "page 12", "version 1.5",
    "32 year old man", "a woman aged 40", "aged whisky",
    "a mature oak tree", "steampunk airship", "portrait of an old sailor",
    "cyberpunk city at night", "a cat on a sofa", "kindness", "a kinder world",
    "minotaur", "tweezers on a table", "kidd's pirate ship", "loligo squid",
    "teal and orange", "infinity pool", "skidmark", "the minoan palace",
    "an adult woman in a red dress", "two women at a cafe", "sixteenth note",
    "a 3.5 year warranty", "model 17 engine", "room 12, floor 3", "t-rex skeleton",
    "puerto rico beach", "1girl, adult, office", "junior developer at a desk",
    "the band's 12 studio albums", "12 oz steak", "latte art", "young adult novel cover",
]  # fmt: skip


@pytest.mark.parametrize("text", [pytest.param(t, id=f"benign-{i}") for i, t in enumerate(BENIGN)])
def test_benign_texts_pass(text: str) -> None:
    assert minors.check_text(text) is None, minors.check_text(text)


# ---------------------------------------------------------------- composed prompts


def muse(template: str, **fields: object) -> MuseSpec:
    return MuseSpec.model_validate(
        {"owner": "ada", "displayName": "Ada", "age": 30, "promptTemplate": template, **fields}
    )


COMPOSED = [
    ("{prompt}-year-old {name}", "12", True),
    ("{prompt} year old", "15", True),
    ("a {prompt}", "t33n", True),
    ("portrait, {prompt}yo", "9", True),
    ("{prompt}-year-old {name}", "32", False),
    ("{prompt}, {name}", "a lighthouse", False),
    ("school{prompt}", "girl", True),
    ("aged {prompt}", "ten", True),
    ("{name} at {prompt}", "the beach", False),
    ("{prompt} ans", "14", True),
]


@pytest.mark.parametrize(
    ("template", "prompt", "refused"),
    [pytest.param(t, p, r, id=f"composed-{i}") for i, (t, p, r) in enumerate(COMPOSED)],
)
def test_the_composed_prompt_is_checked(template: str, prompt: str, refused: bool) -> None:
    # neither piece alone is refused ...
    if refused:
        assert minors.check_text(template) is None
    composed = prompts.compose(muse(template), prompt)
    result = minors.check_prompt(composed.positive, composed.negative, person=True)
    assert (result is not None) is refused, composed.positive


# ---------------------------------------------------------------- negative prompts


NEGATIVES = [
    ("portrait of a woman", "adult, blurry", True),
    ("1girl, beach", "mature, lowres", True),
    ("a girl in a park", "grown-up", True),
    ("a man at a desk", "adults", True),
    ("photo of a person", "over 18", True),
    ("a woman", "18+", True),
    ("a woman", "adulte", True),
    ("a woman", "成人", True),
    ("a girl", "ａｄｕｌｔ", True),
    ("a girl", "a d u l t", True),
    ("a lighthouse at dusk", "adult, people", False),
    ("a landscape", "mature content", False),
    ("portrait of a woman", "child, kids, teen, lowres", False),
    ("portrait of a woman", "old, wrinkles, blurry", False),
    ("portrait of a woman", "", False),
]


@pytest.mark.parametrize(
    ("positive", "negative", "refused"),
    [pytest.param(p, n, r, id=f"negative-{i}") for i, (p, n, r) in enumerate(NEGATIVES)],
)
def test_negative_prompts_steering_away_from_adults(
    positive: str, negative: str, refused: bool
) -> None:
    result = minors.check_prompt(positive, negative)
    assert (result is not None) is refused, result
    if result is not None:
        assert result.where == "negative"
        assert "negative prompt" in result.message


def test_a_muse_always_shows_a_person() -> None:
    assert minors.check_prompt("a lighthouse", "adult") is None
    assert minors.check_prompt("a lighthouse", "adult", person=True) is not None


def test_any_stated_age_under_18_refuses() -> None:
    """A deliberate choice: the age rule does not guess the subject ("a dog, 3 years
    old" is refused too; write "a puppy")."""
    assert minors.check_text("dog, 3 years old") is not None


def test_custom_terms_replace_the_defaults_but_ages_stay() -> None:
    assert minors.check_text("a dragon", ["dragon"]) is not None
    assert minors.check_text("a child", ["dragon"]) is None
    assert minors.check_text("a 12 year old", ["dragon"]) is not None
    assert minors.check_text("a child", []) is None


def test_normalise() -> None:
    assert minors.normalise("ＣＨＩＬＤ\u200b") == "child"
    assert minors.normalise("сһіld") == "child"
    assert minors.normalise("Chíld") == "child"


def test_the_table_is_large() -> None:
    """Hundreds of cases, as the issue asks (counted, so a table cannot shrink unseen)."""
    count = (
        len(TERMS) * len(OBFUSCATIONS)
        + len(AGES_REFUSED) * 9
        + len(SPELLED) * 4
        + len(OTHER_LANGUAGES)
        + len(BENIGN)
        + len(COMPOSED)
        + len(NEGATIVES)
    )
    assert count >= 500, count
