"""Reply parsing: an LLM reply becomes candidate responses, and every rejected line gets a reason.

The reasons are the keys of a pool's ``rejects`` report (see ``parse_reply``).
"""

from __future__ import annotations

import difflib
import re
from collections import Counter

from synthmix.data.loading import normalise_text
from synthmix.llm.client import looks_like_error_text

_LEADER = re.compile(
    r"^\s*(?:[-*\u2022\u00b7>]+|\[\d{1,3}\]|\(?\d{1,3}\s*[.):\]]|\d{1,3}\s+-|[A-Za-z][.)](?=\s)"
    r"|(?:an?\s+)?(?:positive|negative)\s+response(?:\s*\d{1,3})?\s*:|response\s*#?\d{1,3}\s*[:.)-])\s*",
    re.IGNORECASE,
)
_INLINE_NUMBER = re.compile(r"\s+(?=\(?\d{1,2}[.)]\s)")
_NUMBERS = re.compile(r"(?:^|\s)\(?(\d{1,2})[.)]\s")


def split_inline_numbering(line: str) -> list[str]:
    """Split one long line holding "1. … 2. … 3. …" into its items (numbers must run in sequence)."""
    numbers = [int(n) for n in _NUMBERS.findall(line)]
    in_sequence = len(numbers) >= 2 and numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    return _INLINE_NUMBER.split(line) if in_sequence else [line]


_QUOTES = "\"'\u201c\u201d\u2018\u2019`"
_COUNT = r"(?:\d{1,3}|one|two|three|four|five|six|seven|eight|nine|ten|some|a few|several|more|another|other)"
_LABEL_WORD = r"(?:positive|negative|good|bad|correct|incorrect)"
# "A negative response:", "Negative responses", "Positive response 3: 10." (a tag with no response after it)
_LABEL_TAG = re.compile(
    rf"^[\W\d]*(?:an?\s+|the\s+)?{_LABEL_WORD}\s+(?:responses?|answers?|examples?|replies)\b[^A-Za-z]*$",
    re.IGNORECASE)
# "Draft 25 negative responses to the question, no numbering.", "Write 10 more positive responses: 4"
_INSTRUCTION = re.compile(
    rf"^(?:please\s+|now\s+)?(?:draft|write|generate|create|list|give|provide|produce)\s+(?:me\s+)?"
    rf"(?:{_COUNT}\s+)?(?:more\s+)?(?:{_COUNT}|{_LABEL_WORD})\s+(?:\w+\s+){{0,2}}(?:responses?|answers?|replies|examples?)\b"
    r"|\b(?:responses?|answers?) to the question\b|\bone per line\b|\bno numbering\b",
    re.IGNORECASE)
# the request's verb and form restated without a response: "Draft 25, 30, 40, 50, 6, 7, 8, 9, 10",
# "Draft 50-word paragraphs of responses to this type of sentence", "Write short paragraphs of responses about it"
_RESTATED_REQUEST = re.compile(
    r"^(?:please\s+|now\s+)?(?:draft|write|generate|create|produce|list)\s+"
    r"(?:\d{1,3}(?:\s*,\s*\d{1,3})+"
    r"|\d{1,3}-(?:word|line|sentence)s?\b"
    r"|(?:\S+\s+){0,3}(?:paragraphs|responses)\s+(?:of|to|for|about)\b)",
    re.IGNORECASE)
# "Here are 10 responses:", "Sure! Here are some…", "I hope these help", "Note: …"
_META = re.compile(
    r"^(?:here(?:'s|\u2019s| is| are)\s+(?:\w+\s+){0,4}(?:responses|answers|replies|examples|options|drafts|a list)\b"
    r"|here(?:'s|\u2019s| is)\s+(?:another|one more|a (?:positive|negative))\s+(?:response|answer|reply|example)\b"
    r"|(?:sure|certainly|of course|okay|ok|absolutely|great)\b[\s!,.]*(?:here|i can|i'd|i will|i'll|below|these)\b"
    r"|(?:sure|certainly|of course|absolutely)\b|below (?:are|is)\b|the following\b|i hope\b|hope (?:this|these)\b"
    r"|let me know if (?:you (?:need|want|would like) (?:more|any|other|additional|another|different|changes)|(?:these|this|that) )"
    r"|feel free\b|note\s*:|(?:these|those) (?:are|responses|answers|replies|examples)\b"
    r"|i(?:'ve| have) (?:written|drafted|included|created|generated)\b|as requested\b|responses?\s*:"
    rf"|{_LABEL_WORD}\s+(?:responses?|examples?)\s*:)",
    re.IGNORECASE)
# lines about a response rather than a response: "This response asks Maya…", "The tutor praises…",
# "Asks the student to explain", "Ask her how she got it", "Score: 1", "This is a negative example."
_NOT_IN_VOICE = re.compile(
    r"^(?:this|that|the|each|every|such|my|a|an)\s+(?:\w+\s+){0,2}(?:response|reply|example|feedback)s?\s+"
    r"(?:is|was|are|were|would|will|does|did|do|shows?|helps?|gives?|encourages?|asks?|uses?|provides?|focus(?:es)?"
    r"|fails?|avoids?|tells?|points?|praises?|models?|demonstrates?|lacks?|could|might|should|can|correctly"
    r"|incorrectly|doesn'?t|does not|addresses|acknowledges|invites|guides|prompts|names|offers|misses)\b"
    r"|^(?:in|with) (?:this|that|the) (?:response|reply|example)\b"
    r"|^(?:the|a|this) (?:tutor|trainee)\s+(?!and\b)\w+"
    r"|^(?:asks|tells|gives|praises|encourages|explains|shows|points out|guides|prompts|suggests|says|reminds|corrects"
    r"|ignores|states|provides|offers|draws|models|acknowledges|invites|redirects|validates|scolds|dismisses)\b"
    r"|^(?:ask|tell|have|encourage|remind|guide|prompt|show)\s+(?:the\s+(?:student|learner|child|kid)|him|her|them)\b"
    r"|^(?:this|it|that) is (?:an?|another|one) (?:[\w-]+\s+){0,2}(?:response|example|answer)\b"
    r"|^(?:she|he)\s+(?:\w+\s+)?(?:added|adds|wrote|writes|turned|turns|explains|explained|says|said|asks|asked|has|had"
    r"|was|is|seems|looks|did|does|needs|made|makes|shows|showed|tells|told|goes|went|corrected|gets|got|tried|tries)\b"
    r"|^(?:she|he)'s\b|^the (?:[\w-]+\s+)?(?:student|learner|pupil|child)\b"
    r"|^(?:her|his) (?:answer|response|reply|work|mistake|error|next)\b"
    r"|^\W*(?:score|label|code|grade)\s*[:=]?\s*[01]\b",
    re.IGNORECASE)


def clean_line(line: str) -> str:
    """A reply line without its bullet or number, surrounding quotes and extra spaces."""
    previous = None
    while previous != line:
        previous = line
        line = _LEADER.sub("", line, count=1).strip()
        if len(line) >= 2 and line[0] in _QUOTES and line[-1] in _QUOTES:
            line = line[1:-1].strip()
    return " ".join(line.split())


def _echo_units(echo_lines: tuple[str, ...]) -> list[str]:
    """The prompt's lines and sentences, normalised, to compare reply lines against."""
    units = set()
    for line in echo_lines:
        for piece in [line, *re.split(r"(?<=[.?!])\s+", line)]:
            normalised = normalise_text(clean_line(piece))
            if normalised:
                units.add(normalised)
    return sorted(units)


def _echoes(line: str, units: list[str]) -> bool:
    """Whether ``line`` repeats a prompt line or sentence: the same, nearly the same, or a long part of one."""
    normalised = normalise_text(line)
    if not normalised:
        return False
    long_enough = len(normalised.split()) >= 5
    for unit in units:
        if normalised == unit or (long_enough and f" {normalised} " in f" {unit} "):
            return True
        matcher = difflib.SequenceMatcher(None, normalised, unit, autojunk=False)
        if matcher.real_quick_ratio() >= 0.85 and matcher.quick_ratio() >= 0.85 and matcher.ratio() >= 0.85:
            return True
    return False


def line_reject_reason(piece: str, line: str, echo_units: list[str], min_words: int) -> str | None:
    """Why a reply line is not a response (a key of the report's rejects), or None when it is one.

    ``piece`` is the line as written, ``line`` the same after ``clean_line``.
    """
    if not line:
        return "label_tag" if _LABEL_TAG.match(piece) else "blank"
    if looks_like_error_text(line):
        return "error_text"
    if _LABEL_TAG.match(piece) or _LABEL_TAG.match(line):
        return "label_tag"
    if _INSTRUCTION.search(line) or _RESTATED_REQUEST.match(line):
        return "restates_instruction"
    if _echoes(line, echo_units):
        return "echo_of_prompt"
    if line.endswith(":") or _META.match(line):
        return "meta"
    if _NOT_IN_VOICE.search(line):
        return "not_in_voice"
    if len(line.split()) < min_words:
        return "too_short"
    return None


def parse_reply(text: str, echo_lines: tuple[str, ...] = (), min_words: int = 3,
                truncated: bool = False) -> tuple[list[str], Counter]:
    """Split an LLM reply into candidate responses; count every rejected line by reason.

    Handles numbered, bulleted and quoted lines, and a reply that puts several numbered responses
    on one long line. Drops, each under its own reason: blank lines, error messages, label tags
    ("A negative response: 10."), restated instructions ("Draft 25 negative responses…"), echoes
    of the prompt's lines (``echo_lines``: the question, the instruction, the other label's
    examples), meta lines ("Here are 10 responses:"), lines about a response instead of one
    ("This response asks…"), and lines under ``min_words`` words. With ``truncated`` (the reply
    hit max_tokens), its last line is cut off mid-way and is dropped.
    """
    rejects: Counter = Counter()
    if truncated:
        text, _, last = text.rstrip().rpartition("\n")
        if last.strip():
            rejects["truncated"] += 1
    units = _echo_units(echo_lines)
    responses: list[str] = []
    for raw_line in text.splitlines():
        for piece in split_inline_numbering(raw_line):
            line = clean_line(piece)
            reason = line_reject_reason(piece, line, units, min_words)
            if reason:
                rejects[reason] += 1
            else:
                responses.append(line)
    return responses, rejects
