"""What the fake model knows about text: word lists and keyword features (sentiment, PII,
insults, spam, keywords), and how to read chat messages.

Why separate from the decision rules: these are plain facts about a string, shared by every
task the fake answers (and by the runner's token estimate), with no notion of a task.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Messages = Sequence[Mapping[str, Any]]
Handler = Callable[[Messages, Mapping[str, Any]], "str | None"]

_WORD = re.compile(r"[a-z0-9][a-z0-9'\-]*")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"(?<![\w])(?:\+?\d[\d\s().\-]{7,}\d)(?![\w])")
URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+\.(?:com|net|org|io|biz|info|xyz|ru)\b",
                  re.IGNORECASE)

POSITIVE = frozenset("""good great excellent amazing awesome love loved loves lovely like liked
    wonderful fantastic perfect happy glad pleased satisfied recommend recommended best brilliant
    superb enjoy enjoyed nice helpful fast friendly delightful impressed beautiful outstanding
    thanks thank works worked smooth reliable easy pleasant favourite favorite positive
    """.split())
NEGATIVE = frozenset("""bad terrible awful horrible hate hated hates poor worst broken disappointed
    disappointing disappointment angry annoyed annoying useless slow rude refund refunds
    complaint complain complained problem problems issue issues bug bugs crash crashes crashed
    fail fails failed failure wrong unhappy never waste wasted sucks garbage defective late
    missing cancel cancelled expensive overpriced negative frustrated frustrating unacceptable
    """.split())
NEGATORS = frozenset({"not", "no", "never", "hardly", "isn't", "wasn't", "don't", "doesn't",
                      "didn't", "can't", "won't"})
INSULTS = frozenset("""idiot idiots stupid moron morons dumb loser losers jerk scum trash
    imbecile fool fools pathetic worthless bastard""".split())
INSULT_PHRASES = ("shut up", "hate you", "go away", "get lost")
SPAM_PHRASES = ("buy now", "click here", "limited offer", "limited time", "act now",
                "free money", "winner", "you have won", "you've won", "100% free", "earn $",
                "make money", "work from home", "viagra", "crypto giveaway", "subscribe now",
                "discount code", "order now", "cheap", "unsubscribe")
URGENT = frozenset("""urgent urgently asap immediately emergency critical now outage down
    deadline today blocker blocking severe""".split())

STOPWORDS = frozenset("""a an the and or but if then else of to in on at by for with from as is are
    was were be been being it its this that these those there here i you he she we they me my
    your our their his her them us do does did done have has had not no yes so such than too
    very can could should would will shall may might must about into over under again further
    once only own same both each few more most other some any all what which who whom whose
    when where why how just also please write give make create list short brief text following
    answer reply respond using based return given input output one word words true false
    summarise summarize summary outline titles title topic about article post blog question
    exactly choose choice choices only section covers concrete example watch draft tell explain
    describe""".split())

#: synonyms that let a router pick a choice whose *name* is not in the text
CHOICE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "billing": ("invoice", "charge", "charged", "refund", "payment", "paid", "price", "bill",
                "subscription", "card"),
    "technical": ("error", "crash", "bug", "broken", "install", "login", "password", "server",
                  "not working", "doesn't work", "exception"),
    "support": ("help", "error", "crash", "bug", "broken", "not working", "problem"),
    "sales": ("buy", "pricing", "quote", "demo", "plan", "purchase", "enterprise", "trial"),
    "urgent": tuple(URGENT),
    "high": tuple(URGENT),
    "positive": tuple(POSITIVE),
    "negative": tuple(NEGATIVE),
    "question": ("?", "how do", "how can", "what is", "why"),
    "complaint": tuple(NEGATIVE),
    "praise": tuple(POSITIVE),
    "bug": ("crash", "crashes", "crashed", "slow", "error", "broken", "fails", "freezes", "bug"),
    "feature": ("would be great", "please add", "wish", "could you add", "would love",
                "missing", "request", "add a"),
    "professional": ("dear", "sincerely", "regards", "position", "interest", "experience",
                     "concern", "writing to"),
    "casual": ("hey", "lol", "gonna", "wanna", "gimme", "yo", "dude", "stuff", "kinda"),
    "unprofessional": tuple(INSULTS) + ("whatever", "lol", "gimme"),
}
#: names a router falls back to when nothing in the content points anywhere
DEFAULT_CHOICES = ("approve", "approved", "accept", "allow", "ok", "pass", "default", "other",
                   "general", "neutral", "none", "continue", "keep", "publish", "low", "normal")

_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
            "eight": 8, "nine": 9, "ten": 10, "all": -1}


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def estimate_tokens(text: str) -> int:
    """~4 characters per token: close enough for English and for showing relative costs."""
    return max(1, len(text) // 4) if text else 0


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def sentiment(text: str) -> int:
    """Positive minus negative keyword hits; a negator just before a word flips it."""
    score = 0
    ws = words(text)
    for i, w in enumerate(ws):
        s = 1 if w in POSITIVE else -1 if w in NEGATIVE else 0
        if s and any(p in NEGATORS for p in ws[max(0, i - 2):i]):
            s = -s
        score += s
    return score


def has_pii(text: str) -> bool:
    """An e-mail address, or a phone-like number with at least 9 digits (dates have fewer)."""
    if EMAIL.search(text):
        return True
    return any(sum(ch.isdigit() for ch in m.group(0)) >= 9 for m in PHONE.finditer(text))


def insult_count(text: str) -> int:
    low = text.lower()
    return sum(1 for w in words(text) if w in INSULTS) + sum(low.count(p) for p in INSULT_PHRASES)


def spam_count(text: str) -> int:
    low = text.lower()
    links = URL.findall(EMAIL.sub(" ", text))  # an e-mail address is personal data, not a link
    return sum(low.count(p) for p in SPAM_PHRASES) + len(links)


def keywords(text: str, n: int = 3) -> list[str]:
    """The ``n`` most frequent content words, ties broken by first appearance."""
    ws = [w.strip("'-") for w in words(text)]
    ws = [w for w in ws if len(w) > 2 and w not in STOPWORDS and not w.isdigit()]
    counts = Counter(ws)
    first = {w: i for i, w in reversed(list(enumerate(ws)))}
    return sorted(counts, key=lambda w: (-counts[w], first[w]))[:n]


def message_text(messages: Messages, role: str | None = None) -> str:
    parts = []
    for m in messages:
        if role is not None and m.get("role") != role:
            continue
        c = m.get("content")
        if isinstance(c, str):
            parts.append(c)
        elif isinstance(c, list):  # content parts: [{"type": "text", "text": ...}]
            parts.extend(str(p.get("text", "")) for p in c if isinstance(p, Mapping))
    return "\n".join(parts)


def split_instruction(prompt: str) -> tuple[str, str]:
    """Guess (instruction, content) when the node did not say which values it filled in.

    Lines that are questions or imperatives are instruction; the rest is content. Quoted or
    fenced blocks and text after a ``Label:`` line count as content too.
    """
    instr: list[str] = []
    content: list[str] = []
    for line in prompt.splitlines():
        s = line.strip()
        if not s:
            continue
        head, sep, tail = s.partition(":")
        if sep and tail.strip() and len(head.split()) <= 3 and not head.endswith("?"):
            content.append(tail.strip())
        elif s.endswith("?") or re.match(r"(?i)^(answer|reply|respond|choose|pick|is|does|do|are|"
                                         r"should|can|classify|decide|write|give|summari[sz]e|"
                                         r"list|suggest|tell|explain|describe|rate|rewrite|"
                                         r"translate|draft|compose|generate|create|outline|"
                                         r"propose|name)\b", s):
            instr.append(s)
        else:
            content.append(s)
    return "\n".join(instr), "\n".join(content) or prompt

