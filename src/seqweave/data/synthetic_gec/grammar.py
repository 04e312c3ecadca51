"""Synthetic GEC data, part 1: helpers, the lexicon and the toy English grammar."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

_W = str.split  # word lists are space-separated strings to keep the lexicon compact


def _draw(rng: random.Random, weights: Sequence[float]) -> int:
    """Index drawn with the given weights; much cheaper than rng.choices for a single draw."""
    x = rng.random() * sum(weights)
    for index, weight in enumerate(weights):
        x -= weight
        if x < 0:
            return index
    return len(weights) - 1


def _rows(table: str) -> list[list[str]]:
    """Rows of a compact table: rows separated by newlines or '|', fields by spaces."""
    return [row.split() for row in table.replace("\n", "|").split("|") if row.strip()]


# ----------------------------------------------------------------------------- lexicon
NAMES = _W("Anna Tom Maria David Sarah John Emma Peter Lucy Mark Olivia Ahmed Yuki Carlos Fatima")
NOUNS: dict[str, list[str]] = {
    "person": _W(
        "teacher student doctor farmer child man woman boy girl friend driver artist engineer "
        "actor uncle aunt officer baby singer pilot nurse cousin waiter"
    ),
    "animal": _W("dog cat horse bird elephant owl rabbit mouse tiger monkey eagle ant duck lion"),
    "food": _W("apple egg orange cake sandwich onion banana biscuit pizza carrot lemon peach pie"),
    "text": _W("book story newspaper magazine poem essay article report novel"),
    "mail": _W("letter email message note postcard invitation"),
    "item": _W(
        "car bicycle phone computer umbrella ball bottle box chair table key map ticket lamp bag "
        "camera clock picture shirt hat jacket envelope cup glass knife guitar wallet"
    ),
    "vehicle": _W("bus train taxi"),
    "unit": _W("minute day week month year time"),  # only in time phrases: "two days ago"
}
_IRREGULAR_PLURALS = dict(_rows("child children|man men|woman women|mouse mice|knife knives"))
ADJECTIVES: dict[str, list[str]] = {
    "person": _W(
        "young old tall happy sad angry friendly clever busy hungry lazy quiet famous polite "
        "brave rich poor funny nervous bored tired"
    ),
    "animal": _W("big small old young hungry lazy angry friendly brown black white quiet little"),
    "food": _W("fresh sweet hot cold big small delicious expensive cheap"),
    "text": _W("long short old new interesting boring funny sad famous"),
    "item": _W(
        "big small old new red blue green yellow black white cheap expensive heavy empty dirty "
        "modern beautiful ugly strange"
    ),
}
_ADJ_CLASS = {"mail": "text", "vehicle": "item"}
# place -> its locative preposition; places never appear without "the" (missing_the relies on it)
PLACES = dict(
    _rows(
        "park in|library in|garden in|kitchen in|museum in|classroom in|office in|station at|"
        "airport at|market at|bank at|zoo at|hotel at|cinema at|supermarket at|beach on|river by"
    )
)
TOPICS = _W("music science history art chess tennis football geography poetry maths")
_DAY_PARTS = ("morning", "afternoon", "evening")

# base subject-kinds frame [object classes]; kinds: p person, a animal, i thing;
# frames: i intransitive, m motion (may take "to the PLACE"), t transitive, v to-infinitive
_VERB_TABLE = """
run pa m|walk pa m|drive p m|fly pa m|travel p m|swim pa i|sleep pa i|play pa i|sing pa i
dance p i|cry p i|smile p i|work p i|jump pa i|rest pa i|shout p i|study p i
eat pa t food|cook p t food|buy p t food,item,text|sell p t food,item|carry pa t item,food
find pa t item,mail|lose p t item|clean p t item|fix p t item|break pa t item|wash p t item,food
write p t text,mail|send p t mail,item|open p t item,mail|bring pa t item,food|need p t item
want pa t food,item|like pa t food,animal,topic|love p t animal,food,topic|meet p t person
help p t person,animal|call p t person,animal|visit p t person|invite p t person
thank p t person|watch pa t person,animal|draw p t animal,item|paint p t item
choose p t item,food,text|drop pa t item|hold p t item,animal|feed p t animal
chase a t animal,person|catch pa t item,animal|kick pa t item|hide pa t item,food|steal a t food
learn p t topic|want p v|need p v|try p v|learn p v|decide p v|hope p v|plan p v
"""
# head preposition wrong-choices subject-kinds object-classes. Every head is ALWAYS followed by
# its preposition in this grammar, so any other preposition after it is unambiguously an error.
_VERB_COLLOCATIONS = """
listen to at,on,of p person|depend on of,from,at p person|arrive at to,on p place
wait for to,of pa person,vehicle|belong to at,for,of ia person|laugh at on,to,of p person,animal
agree with at,for,of p person|believe in on,at p person|pay for on,of p food,item,text
care about on,at,of p person,animal|complain about on,for p food,item|search for to,of pa item
reply to at,for,with p mail|ask for to,at p food,item|worry about on,of p person,animal
"""
_ADJ_COLLOCATIONS = """
interested in on,at,about,for p topic,animal|afraid of from,at,with pa animal,person
proud of on,at,about p person,animal|keen on in,at,of p topic|fond of on,with,for p animal,food
responsible for of,on,about p animal,person,item|excited about on,of,at p text,item,animal
"""
# base past past-participle, for verbs the spelling rules below cannot produce
_IRREGULAR_VERBS = {
    base: (past, pp)
    for base, past, pp in _rows(
        "run ran run|swim swam swum|sleep slept slept|sing sang sung|eat ate eaten|buy bought "
        "bought|sell sold sold|find found found|lose lost lost|break broke broken|write wrote "
        "written|send sent sent|bring brought brought|meet met met|draw drew drawn|choose chose "
        "chosen|hold held held|feed fed fed|catch caught caught|hide hid hidden|steal stole stolen|"
        "drive drove driven|fly flew flown|pay paid paid"
    )
}
_DOUBLE_FINAL = frozenset(_W("run swim plan drop"))
_STATIVE = frozenset(_W("like love want need depend belong believe agree care decide"))
_PRONOUNS = (("I", "1s"), ("you", "pl"), ("he", "3s"), ("she", "3s"), ("we", "pl"), ("they", "pl"))
_OBJECT_PRONOUNS = _W("me you him her us them")
_NUMERALS = _W("two three four five six seven eight nine ten")
_SINGULAR_DETS = _W("the the the a a a this that my your his our their")
_PLURAL_DETS = _W("the the the these those my your our their some many several both") + _NUMERALS
_QUANTIFIERS = frozenset(["many", "several", "both", *_NUMERALS])
_FREQUENCY = _W("always often usually sometimes")
_TIME_TABLE = {
    "present": "every day|every morning|every evening|every week|on Mondays|on Sundays|on weekends|"
    "in the morning|in the afternoon|in the evening|at night|twice a week|after lunch",
    "past": "yesterday|last week|last night|last year|last summer|# days ago|# weeks ago|"
    "# years ago|in the morning|on Monday|on Friday|this morning",
    "now": "now|right now|at the moment|today|this afternoon",
    "perfect": "today|this week|this year|this morning|recently|twice|three times|several times|"
    "many times|before",
    "future": "tomorrow|next week|next month|next year|tomorrow morning|soon|in the evening|"
    "on Friday|in # days|in # weeks",
    "modal": "now|today|at night|in the evening",
}
_TIMES = {key: [" ".join(row) for row in _rows(table)] for key, table in _TIME_TABLE.items()}


def _add_s(word: str) -> str:
    """English -s/-es spelling (third person and plural share it)."""
    if word.endswith(("s", "sh", "ch", "x", "z", "o")):
        return word + "es"
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _verb_forms(base: str) -> dict[str, str]:
    """All five surface forms, so corruption can look any of them up by spelling."""
    stem = base + base[-1] if base in _DOUBLE_FINAL else base
    if base.endswith("e"):
        past, ing = base + "d", (base if base.endswith("ee") else base[:-1]) + "ing"
    elif base.endswith("y") and base[-2] not in "aeiou":
        past, ing = base[:-1] + "ied", base + "ing"
    else:
        past, ing = stem + "ed", stem + "ing"
    past, pp = _IRREGULAR_VERBS.get(base, (past, past))
    return {"base": base, "3sg": _add_s(base), "past": past, "pp": pp, "ing": ing}


@dataclass(frozen=True)
class _Entry:
    """One predicate of the grammar: a verb frame or a collocation with its fixed preposition."""

    base: str
    kinds: str
    frame: str  # i, m, t, v (see _VERB_TABLE), c verb collocation, a adjective collocation
    objects: tuple[str, ...]
    prep: str = ""
    wrong: tuple[str, ...] = ()


def _collocations(table: str, frame: str) -> list[_Entry]:
    return [
        _Entry(head, kinds, frame, tuple(objs.split(",")), prep, tuple(wrong.split(",")))
        for head, prep, wrong, kinds, objs in _rows(table)
    ]


_ENTRIES = [_Entry(r[0], r[1], r[2], tuple(",".join(r[3:]).split(","))) for r in _rows(_VERB_TABLE)]
_ENTRIES += _collocations(_VERB_COLLOCATIONS, "c")
_ADJ_ENTRIES = _collocations(_ADJ_COLLOCATIONS, "a")
_BY_FRAME = {f: [e for e in _ENTRIES if e.frame in f] for f in ("im", "t", "v", "c", "imtc")}
# (frame, subject kind) -> entries; frame -> the subject kinds it allows (precomputed for speed)
_FRAME_KIND = {
    (f, k): [e for e in es if k in e.kinds] for f, es in _BY_FRAME.items() for k in "pai"
}
_FRAME_KINDS = {f: "".join(k for k in "pai" if _FRAME_KIND[f, k]) for f in _BY_FRAME}
_PLACE_LIST = tuple(PLACES)
VERBS: dict[str, dict[str, str]] = {e.base: _verb_forms(e.base) for e in _ENTRIES}
_LEMMA = {form: base for base, forms in VERBS.items() for form in forms.values()}
_PLURAL = {n: _IRREGULAR_PLURALS.get(n) or _add_s(n) for ns in NOUNS.values() for n in ns}
_SINGULAR_OF = {plural: singular for singular, plural in _PLURAL.items()}
_NOUN_FORMS = frozenset(_PLURAL) | frozenset(_SINGULAR_OF)
_ADJS = frozenset(a for adjs in ADJECTIVES.values() for a in adjs)
_HEAD_PREP = {f: (e.prep, e.wrong) for e in _BY_FRAME["c"] for f in VERBS[e.base].values()}
_HEAD_PREP |= {e.base: (e.prep, e.wrong) for e in _ADJ_ENTRIES}
_HEAD_WORDS = frozenset(_HEAD_PREP)
_THE_ONLY = frozenset([*PLACES, *_DAY_PARTS])
_CONTENT = _NOUN_FORMS | _ADJS | set(_LEMMA) | set(PLACES) | set(TOPICS)
_CONTENT |= {e.base for e in _ADJ_ENTRIES} | {"yesterday", "tomorrow", "recently", *_FREQUENCY}
_KIND_WEIGHTS = {"p": 6, "a": 2, "i": 1}  # mostly people, as in real learner writing


# ----------------------------------------------------------------------------- grammar
def _noun_phrase(rng: random.Random, cls: str) -> tuple[list[str], bool]:
    """Determiner + optional adjective + noun; returns the words and whether it is plural."""
    plural = rng.random() < 0.35
    noun = rng.choice(NOUNS[cls])
    adjs = [rng.choice(ADJECTIVES[_ADJ_CLASS.get(cls, cls)])] if rng.random() < 0.35 else []
    det = rng.choice(_PLURAL_DETS if plural else _SINGULAR_DETS)
    words = [det, *adjs, _PLURAL[noun] if plural else noun]
    if det == "a":
        words[0] = "an" if words[1][0] in "aeiou" else "a"  # the lexicon avoids /ju/ and silent h
    return words, plural


def _subject(rng: random.Random, kinds: str) -> tuple[list[str], str, str]:
    """A subject of one of `kinds`: (words, noun class, person), person being 1s, 3s or pl."""
    kind = kinds[_draw(rng, [_KIND_WEIGHTS[k] for k in kinds])]
    cls = {"p": "person", "a": "animal"}.get(kind) or rng.choice(("item", "text", "food"))
    r = rng.random()
    if cls == "person" and r < 0.25:
        word, person = rng.choice(_PRONOUNS)
        return [word], cls, person
    if cls == "person" and r < 0.45:
        return [rng.choice(NAMES)], cls, "3s"
    if cls == "person" and r < 0.52:
        return [*_noun_phrase(rng, cls)[0], "and", rng.choice(NAMES)], cls, "pl"
    words, plural = _noun_phrase(rng, cls)
    return words, cls, "pl" if plural else "3s"


def _object(rng: random.Random, cls: str) -> list[str]:
    if cls == "topic":
        return [rng.choice(TOPICS)]
    if cls == "place":
        return ["the", rng.choice(_PLACE_LIST)]
    if cls == "person" and rng.random() < 0.4:
        return [rng.choice(_OBJECT_PRONOUNS if rng.random() < 0.5 else NAMES)]
    return _noun_phrase(rng, cls)[0]


def _verb_group(rng: random.Random, base: str, person: str, tense: str) -> list[str]:
    """The finite verb (with auxiliaries) for a tense, agreeing with the subject's person."""
    forms, third = VERBS[base], person == "3s"
    if tense == "present":
        adverb = [rng.choice(_FREQUENCY)] if rng.random() < 0.15 else []
        return [*adverb, forms["3sg"] if third else base]
    return {
        "past": [forms["past"]],
        "progressive": [{"1s": "am", "3s": "is", "pl": "are"}[person], forms["ing"]],
        "past_progressive": ["were" if person == "pl" else "was", forms["ing"]],
        "perfect": ["has" if third else "have", forms["pp"]],
        "future": ["will", base],
        "modal": ["can", base],
        "neg_present": ["does" if third else "do", "not", base],
        "neg_past": ["did", "not", base],
    }[tense]


def _complements(rng: random.Random, entry: _Entry) -> list[str]:
    """What follows the verb: an object, the collocation phrase and/or a place phrase."""
    if entry.frame == "c":
        return [entry.prep, *_object(rng, rng.choice(entry.objects))]
    words = _object(rng, rng.choice(entry.objects)) if entry.frame == "t" else []
    r, place = rng.random(), rng.choice(_PLACE_LIST)
    if entry.frame == "m" and r < 0.4:
        words += ["to", "the", place]
    elif r < (0.2 if entry.frame == "t" else 0.75):
        words += [PLACES[place], "the", place]
    return words


def _predicate(rng: random.Random, frame: str, person: str, tense: str, kind: str) -> list[str]:
    entry = rng.choice(_FRAME_KIND[frame, kind])
    if entry.base in _STATIVE and tense in ("progressive", "past_progressive", "modal", "perfect"):
        tense = "present"  # "is liking", "can like", "has liked" are wrong or odd
    words = _verb_group(rng, entry.base, person, tense)
    if entry.frame == "v":
        inner = rng.choice(_FRAME_KIND["imtc", kind])
        return [*words, "to", inner.base, *_complements(rng, inner)]
    return words + _complements(rng, entry)


def _copula(rng: random.Random) -> tuple[list[str], str]:
    """'X is happy', 'X was afraid of the dog', 'X will be at the station'."""
    subject, cls, person = _subject(rng, "pai")
    tense = rng.choice(("now", "past", "future", "perfect"))
    be = {
        "now": [{"1s": "am", "3s": "is", "pl": "are"}[person]],
        "past": ["were" if person == "pl" else "was"],
        "future": ["will", "be"],
        "perfect": ["has" if person == "3s" else "have", "been"],
    }[tense]
    kind, r = cls[0], rng.random()
    if kind in "pa" and r < 0.4:
        e = rng.choice([e for e in _ADJ_ENTRIES if kind in e.kinds])
        rest = [e.base, e.prep, *_object(rng, rng.choice(e.objects))]
    elif kind in "pa" and r < 0.55:
        place = rng.choice(_PLACE_LIST)
        rest = [PLACES[place], "the", place]
    else:  # never repeat the subject's own adjective ("the hungry dog is hungry")
        rest = [rng.choice([a for a in ADJECTIVES[_ADJ_CLASS.get(cls, cls)] if a not in subject])]
    return [*subject, *be, *rest], tense


_TENSES = _W("present past progressive past_progressive perfect future modal neg_present neg_past")
_TENSE_WEIGHTS = (22, 20, 12, 5, 12, 12, 7, 5, 5)
_TIME_KEY = {"neg_present": "present", "neg_past": "past", "past_progressive": "past"}
_TIME_KEY |= {"progressive": "now"}


def _clause(rng: random.Random, tense: str) -> tuple[list[str], str]:
    """One clause and the key of the time adverbials that fit its tense."""
    frame = ("im", "t", "v", "c", "copula")[_draw(rng, (20, 32, 8, 20, 20))]
    if frame == "copula":
        return _copula(rng)
    subject, cls, person = _subject(rng, _FRAME_KINDS[frame])
    kind = {"person": "p", "animal": "a"}.get(cls, "i")
    return subject + _predicate(rng, frame, person, tense, kind), _TIME_KEY.get(tense, tense)


def _sentence_words(rng: random.Random) -> list[str]:
    tense = _TENSES[_draw(rng, _TENSE_WEIGHTS)]
    words, key = _clause(rng, tense)
    if rng.random() < 0.12:
        second, second_key = _clause(rng, tense)
        if second_key == key:  # one time adverbial must fit both clauses
            words += ["and", *second]
    if rng.random() < 0.5:
        words += rng.choice(_TIMES[key]).replace("#", rng.choice(_NUMERALS[:4])).split()
    return words


def generate_sentence(rng: random.Random) -> str:
    """A grammatical sentence of 4-20 words: capitalised, single-spaced, ending in '.'."""
    while True:
        words = " ".join(_sentence_words(rng)).split()
        if 4 <= len(words) <= 20:
            text = " ".join(words)
            return text[0].upper() + text[1:] + "."
