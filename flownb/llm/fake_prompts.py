"""How the fake model reads an instruction: which task it asks for (yes/no, choose-one-of,
rate-on-a-scale, an artefact to write) and the options, counts and requirements it names.

Why separate: recognising the task from the *instruction* is one concept; deciding the answer
from the *content* is another (:class:`flownb.llm.fake.FakeLLM`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from .fake_text import _NUMBERS

#: analysis flags a triage router reads from its fields, most severe first, and the route names
#: each one picks (see FakeLLM.route)
_FLAG_ROUTES: dict[str, tuple[str, ...]] = {
    "abuse": ("ban", "block", "banned", "toxic", "abuse", "abusive", "reject", "remove"),
    "pii": ("redact", "mask", "pii", "private", "anonymize", "anonymise", "review"),
    "spam": ("delete-spam", "spam", "delete", "remove", "reject", "block"),
}
_TRUE_WORDS = frozenset({"true", "yes", "1", "found", "detected"})
_SEVERE_WORDS = frozenset({"severe", "high", "extreme", "critical"})


def _analysis_flags(fields: Mapping[str, Any]) -> list[str]:
    """Which of ``abuse`` / ``pii`` / ``spam`` the named fields report, in that order."""
    found: set[str] = set()
    for name, value in fields.items():
        parts = set(re.split(r"[\W_]+", str(name).lower()))
        v = str(value).strip().strip("'\"`.").lower()
        first = v.split()[0] if v.split() else ""
        if parts & {"hate", "toxic", "toxicity", "abuse", "insult", "severity"} \
                and first in _SEVERE_WORDS | _TRUE_WORDS:
            found.add("abuse")
        elif parts & {"pii", "personal", "privacy"} and first in _TRUE_WORDS:
            found.add("pii")
        elif "spam" in parts and first in _TRUE_WORDS:
            found.add("spam")
    return [f for f in _FLAG_ROUTES if f in found]


#: words of a severity scale, mildest first (see FakeLLM.rate)
SEVERITY = frozenset({"none", "no", "low", "mild", "minor", "some", "moderate", "medium",
                      "high", "severe", "extreme", "critical"})


def _rating_options(instruction: str) -> list[str] | None:
    """Options of "rate/classify/label … as a, b or c", or ``None``."""
    m = re.search(r"(?i)\b(?:rate|rating|classify|categori[sz]e|label|grade|score|tag)\b[^\n]*?"
                  r"\bas\s+((?:[\w\-]+\s*,\s*)*[\w\-]+\s*,?\s+or\s+[\w\-]+)", instruction)
    if not m:
        return None
    items = [i.strip() for i in re.split(r"\s*,\s*(?:or\s+)?|\s+or\s+", m.group(1)) if i.strip()]
    return items if len(items) >= 2 else None


def tag_words(text: str) -> str:
    """Flowcraft-style task tags read as words: ``[check_for_pii]`` → ``[check for pii]``,
    ``[checkForSpam]`` → ``[check For Spam]``. ``_`` is a word character, so without this no
    ``\\bpii\\b`` rule matches a tagged prompt and the fake answers from sentiment alone."""
    text = re.sub(r"\[([^\[\]\n]{1,80})\]",
                  lambda m: "[" + re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", m.group(1)) + "]", text)
    return text.replace("_", " ")


_TASKS = (("extract", r"\bextract\w*\b"), ("outline", r"\boutlines?\b"), ("titles", r"\b(titles?|headlines?|names?)\b"),
          ("summary", r"\bsummar(y|ise|ize|ising|izing)\b|\btl;?dr\b"),
          ("classify", r"\b(classify|sentiment)\b"),
          ("list", r"\b(bullets?|list|steps|ideas|points)\b"),
          ("email", r"\b(e-?mail|letter|note|message) (?:to|inviting|telling|saying|informing)\b"),
          ("draft", r"\b(draft|blog post|post|article|essay|paragraphs?|e-?mail|letter|reply)\b"))


def _writing_task(ask: str) -> str | None:
    """The artefact asked for: the task keyword that appears *first* in the instruction
    ("an outline for a blog post" → outline; "a blog post following this outline" → draft)."""
    ask = tag_words(ask)
    if re.search(r"\blog (?:entry|line|message)\b", ask):
        return "log"  # "the post ... write a log entry": the artefact is the log line
    best: tuple[int, str] | None = None
    for task, pattern in _TASKS:
        m = re.search(pattern, ask)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), task)
    return best[1] if best else None


def _count(ask: str, default: int) -> int:
    m = re.search(r"\b(\d+|two|three|four|five|six|seven|eight|nine|ten)\b", ask)
    if not m:
        return default
    n = int(m.group(1)) if m.group(1).isdigit() else _NUMBERS.get(m.group(1), default)
    return max(1, min(10, n))


def _subject(text: str) -> str:
    """What a prompt is about: the words after "about/regarding …" (else "on/for …")."""
    m = re.search(r"(?i)\b(?:about|regarding|on the topic of)\s*:?\s+(.+?)(?:[.?!\n]|$)", text)
    if m:
        return m.group(1).strip()
    # "titles for a post on Python typing": the last on/for says the most
    found = list(re.finditer(r"(?i)\b(?:on|for)\s+(?=\S)", text))
    if found:
        return re.split(r"[.?!\n]", text[found[-1].end():])[0].strip()
    return ""



def _is_yes_no(prompt: str) -> bool:
    low = prompt.lower()
    if re.search(r"\b(true or false|yes or no|true/false|yes/no)\b", low):
        return True
    first_question = next((ln.strip() for ln in prompt.splitlines() if ln.strip().endswith("?")), "")
    return bool(re.match(r"(?i)^(is|are|does|do|did|has|have|was|were|should|can|could|will|"
                         r"would)\b", first_question))


def _parse_choices(prompt: str) -> list[str] | None:
    """Choices a router prompt lists: "one of: a, b, c" / "Choices: a | b" / "[a, b]"."""
    m = re.search(r"(?i)\b(?:exactly )?one of\s*:?\s*\[?([^\n\]]+)", prompt) or \
        re.search(r"(?i)\b(?:choices|options|categories|labels|actions|routes|single word|"
                  r"one word)\s*:\s*\[?([^\n\]]+)", prompt)
    if not m:
        return None
    listed = m.group(1).strip()
    # "ONE of the following severity levels: 'none', ...": the list starts after the colon
    head, colon, tail = listed.partition(":")
    if colon and len(head.split()) <= 5 and not re.search(r"['\"`,]", head):
        listed = tail.strip()
    listed = re.split(r"(?<=['\"`])\.\s", listed)[0]  # the sentence after the list
    raw = re.split(r"\s*(?:,|\||/|\bor\b)\s*", listed.rstrip("."))
    items = [r.strip().strip("'\"`*.").strip() for r in raw]
    items = [i for i in items if i and len(i) <= 40]
    return items if len(items) >= 2 else None


def _required_items(question: str) -> tuple[list[str], int] | None:
    """``(items, how many needed)`` from a qualification question, or ``None``."""
    m = re.search(r"(?i)\b(?:skills?|requirements?|required|requires|criteria|of)\s*:\s*([^\n?]+)",
                  question)
    if not m:
        return None
    items = [i.strip().strip("'\"`.").lower()
             for i in re.split(r"\s*(?:,|;|\band\b|\bor\b|/)\s*", m.group(1)) if i.strip()]
    items = [i for i in items if i and len(i) <= 40]
    if not items:
        return None
    n = re.search(r"(?i)\bat least\s+(\d+|one|two|three|four|five|six|seven|eight|nine|ten|all)\b",
                  question)
    if n:
        need = int(n.group(1)) if n.group(1).isdigit() else _NUMBERS[n.group(1).lower()]
        need = len(items) if need < 0 else need
    elif re.search(r"(?i)\b(all|every|each)\b", question):
        need = len(items)
    else:
        need = math.ceil(len(items) / 2)
    return items, min(need, len(items))
