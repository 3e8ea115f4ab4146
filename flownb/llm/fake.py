"""An offline, deterministic stand-in for a chat model.

Why a fake rather than no model: a tutorial notebook, a CI job or a first ``flownb demo`` must
run without a key, and the workflow must still *behave* — a condition has to go one way for a
glowing review and the other way for an angry one, a moderation router has to send an e-mail
address to ``redact`` and a "click here" link to ``delete-spam``. So the fake reads the prompt the
way a person skimming it would: it recognises the task from the *instruction* (yes/no question,
choose-one-of, rate-on-a-scale, outline, titles, summary, list, draft, free text) and decides
from keywords in the *content* (the values filled into the template), never at random. The same
prompt always gets the same answer.

In the spirit of ``httpx.MockTransport``, ``FakeLLM(handler)`` lets a test script the answers:
``handler(messages, params) -> str`` (return ``None`` to fall back to the built-in behaviour).
``params`` carries what the node knows: ``task`` (``"condition"`` or ``"router"``; absent for
``llm-process``, whose task is read from the prompt), ``choices`` (a router's allowed actions),
``content`` (the template's filled-in values), ``instruction`` (the template with its slots
emptied), ``model``, ``temperature``, ``max_tokens``. Without ``content``/``instruction`` (a
direct :func:`flownb.llm.complete` call) the fake guesses which lines are the question.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
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


class FakeLLM:
    """A deterministic offline chat model. ``complete(messages, params)`` returns the reply text."""

    #: the model name reported in usage events
    model = "fake"

    def __init__(self, handler: Handler | None = None) -> None:
        self.handler = handler
        #: the last 100 calls as (messages, params), for tests to inspect; bounded so a
        #: long-lived process using the shared default fake does not grow without end
        self.calls: deque[tuple[list[dict[str, Any]], dict[str, Any]]] = deque(maxlen=100)

    # -- the API the runner uses ---------------------------------------------------------------
    def complete(self, messages: Messages, params: Mapping[str, Any] | None = None) -> str:
        """The reply to ``messages``; ``params`` as described in the module docstring."""
        p = dict(params or {})
        self.calls.append(([dict(m) for m in messages], p))
        if self.handler is not None:
            out = self.handler(messages, p)
            if out is not None:
                return str(out)
        return self.default_reply(messages, p)

    __call__ = complete

    def stream(self, messages: Messages, params: Mapping[str, Any] | None = None) -> Iterator[str]:
        """The same reply in word-sized pieces, so streaming code paths can be tried offline."""
        text = self.complete(messages, params)
        yield from re.findall(r"\S+\s*|\s+", text) or [text]

    # -- built-in behaviour --------------------------------------------------------------------
    def default_reply(self, messages: Messages, params: Mapping[str, Any]) -> str:
        prompt = message_text(messages, "user") or message_text(messages)
        task = params.get("task")
        choices = [str(c) for c in params.get("choices") or ()] or None
        content = params.get("content")
        instruction = params.get("instruction")
        if isinstance(content, str) and content.strip():
            instruction = str(instruction) if instruction else prompt
        else:
            # called without the node's hints (flownb.llm.complete, a custom node): guess
            guessed, content = split_instruction(prompt)
            instruction = str(instruction) if instruction else guessed or prompt
            if task is None and content == prompt:  # nothing but instructions: "Tell me about X"
                content = _subject(instruction) or content
        fields = params.get("fields") if isinstance(params.get("fields"), Mapping) else None
        listed = _parse_choices(prompt) if task is None and choices is None else None
        if listed and all(c.lower() in SEVERITY for c in listed):
            return self.rate(str(content), listed, instruction)  # "one of: none, moderate, severe"
        if task == "router" or listed:
            return self.route(str(content), choices or listed or [], prompt, fields)
        if task == "condition" or (task is None and _is_yes_no(prompt)):
            return "true" if self.decide(instruction, str(content)) else "false"
        scale = _rating_options(instruction) if task is None else None
        if scale:
            return self.rate(str(content), scale, instruction)
        return self.write(prompt, str(content), params, instruction)

    def rate(self, content: str, options: Sequence[str], instruction: str = "") -> str:
        """"Rate … as none, moderate or severe": a severity scale is climbed by insults and
        strong negativity (by urgent words when the question is about urgency or priority);
        other option lists are routed."""
        norm = [o.lower() for o in options]
        if all(o in SEVERITY for o in norm):
            if re.search(r"(?i)\b(urgen\w*|priority|severity of the (?:issue|incident))\b",
                         instruction):
                hits = sum(1 for w in words(content) if w in URGENT)
            else:
                hits = 2 * insult_count(content) + max(0, -sentiment(content) - 1)
            step = 0 if hits == 0 else 1 if hits <= 2 else len(options) - 1
            return options[min(step, len(options) - 1)]
        return self.route(content, options)

    def decide(self, question: str, content: str) -> bool:
        """Answer a yes/no question about ``content`` from keywords (see the module docstring)."""
        q = question.lower()
        # qualification: "at least 2 of: python, sql, docker" / "required skills: a, b, c"
        required = _required_items(question)
        if required:
            items, need = required
            low = content.lower()
            have = sum(1 for it in items if re.search(rf"(?<!\w){re.escape(it)}(?!\w)", low))
            if have < need:
                return False
            # "... and is the tone `{{tone}}` professional?": a casual tone fails it
            if "professional" in q and re.search(r"\b(casual|unprofessional)\b", low):
                return False
            return True
        if re.search(r"\b(spam|scam|phishing|advert|promotional)\b", q):
            return spam_count(content) > 0
        if re.search(r"\b(insult|toxic|abusive|offensive|rude|harass)", q):
            return insult_count(content) > 0
        if re.search(r"\b(pii|personal (?:data|info)|e-?mail|phone|contact details)\b", q):
            return has_pii(content)
        if re.search(r"\b(urgent|emergency|critical|priority|asap)\b", q):
            return any(w in URGENT for w in words(content))
        if re.search(r"\b(a question|asking)\b", q):
            return "?" in content
        score = sentiment(content)
        if re.search(r"\b(negative|complain\w*|angry|upset|unhappy|dissatisfied|bad|frustrat\w*|"
                     r"refund|churn)\b", q):
            return score < 0
        if re.search(r"\b(positive|happy|satisfied|good|pleased|like|love|recommend|praise|"
                     r"approve|favou?rable|success\w*)\b", q):
            return score > 0
        topic = re.search(r"\b(?:about|mentions?|contains?|includes?|refers? to|discuss(?:es)?)\s+"
                          r"(?:the |a |an )?([\w\- ]{2,40}?)(?:[?.,]|$)", q)
        if topic:
            terms = [w for w in words(topic.group(1)) if w not in STOPWORDS]
            low = content.lower()
            return bool(terms) and any(t in low for t in terms)
        return score > 0

    def route(self, content: str, choices: Sequence[str], prompt: str = "",
              fields: Mapping[str, Any] | None = None) -> str:
        """Pick one of ``choices`` from keywords in ``content``; always returns one of them.

        ``fields`` (the template's variables by name) lets a triage router read earlier
        analyses — ``hate_speech_level: severe``, ``pii_found: true`` — the way its prompt's
        rules do: severe abuse → ban, personal data → redact, spam → delete, else approve.
        """
        if not choices:
            return "default"
        norm = {c: re.sub(r"[\s_]+", "-", c.strip().lower()) for c in choices}

        def find(*names: str) -> str | None:
            for c, n in norm.items():
                if n in names or any(part in names for part in n.split("-")):
                    return c
            return None

        for flag in _analysis_flags(fields or {}):
            hit = find(*_FLAG_ROUTES[flag])
            if hit:
                return hit

        # moderation, most severe first: an insult is banned even if it also carries a link
        if insult_count(content):
            hit = find("ban", "block", "banned", "toxic", "abuse", "abusive", "reject", "remove")
            if hit:
                return hit
        if spam_count(content):
            hit = find("delete-spam", "spam", "delete", "remove", "reject", "block")
            if hit:
                return hit
        if has_pii(content):
            hit = find("redact", "mask", "pii", "private", "anonymize", "anonymise", "review")
            if hit:
                return hit
        # a choice named in the content, or hinted at by its synonyms
        low = content.lower()
        ws = set(words(content))
        best: tuple[int, str] | None = None
        for c, n in norm.items():
            if n in DEFAULT_CHOICES:
                continue
            score = 3 * sum(1 for part in n.split("-") if part in ws and len(part) > 2)
            for part in n.split("-"):
                for syn in CHOICE_SYNONYMS.get(part, ()):
                    if (syn in ws) if syn.isalnum() else (syn in low):
                        score += 1
            if score and (best is None or score > best[0]):
                best = (score, c)
        if best is not None:
            return best[1]
        if len(choices) and {"positive", "negative"} & set(norm.values()):
            s = sentiment(content)
            want = "positive" if s > 0 else "negative" if s < 0 else "neutral"
            for c, n in norm.items():
                if n == want:
                    return c
        for name in DEFAULT_CHOICES:
            for c, n in norm.items():
                if n == name:
                    return c
        for name in DEFAULT_CHOICES:  # "action_approve", "general-feedback"
            for c, n in norm.items():
                if name in n.split("-"):
                    return c
        return list(choices)[_digest(content) % len(choices)]

    def write(self, prompt: str, content: str, params: Mapping[str, Any],
              instruction: str | None = None) -> str:
        """Free text shaped by what the instruction asks for (outline, titles, summary, draft…).

        The task is read from the *instruction* only — a draft written "following this outline"
        contains the word Outline in its content and must still come back as a draft.
        """
        ask = (instruction if instruction and instruction.strip() else prompt).lower()
        source = content if content.strip() else prompt
        if "redact" in ask:  # "rewrite … with e-mails and phone numbers replaced by [redacted]"
            return PHONE.sub("[redacted]", EMAIL.sub("[redacted]", source))
        kws = keywords(source, 4) or keywords(prompt, 4) or ["the topic"]
        topic = _topic_phrase(source, kws)
        variant = _digest(prompt) % 3
        task = _writing_task(ask)
        if task == "log":
            what = re.search(r"\b(?:saying|confirming|that says)\s+(?:that\s+)?([^.\n]+)", ask)
            return f"[log] {source.strip()[:80]}: {what.group(1).strip() if what else 'done'}"
        if task == "extract":
            return ", ".join(_terms(source)) or ", ".join(kws)
        if task == "outline":
            steps = [f"Introduction: why {topic} matters",
                     f"Background: where {kws[0]} comes from",
                     f"Key ideas: {', '.join(kws[:3])}",
                     "Practical examples and pitfalls",
                     "Conclusion and next steps"]
            return "Outline:\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
        if task == "titles":
            n = _count(ask, 3)
            title = topic[:1].upper() + topic[1:]
            forms = [f"{title}: A Practical Guide", f"What Everyone Gets Wrong About {title}",
                     f"{title} in 5 Minutes", f"The Hidden Power of {kws[min(1, len(kws) - 1)].capitalize()}",
                     f"From Zero to {title}", f"{title}, Explained",
                     f"Why {kws[0].capitalize()} Matters More Than You Think"]
            picked = [forms[(variant + i) % len(forms)] for i in range(min(n, len(forms)))]
            return "\n".join(f"{i}. {t}" for i, t in enumerate(picked, 1))
        if task == "summary":
            sentences = re.split(r"(?<=[.!?])\s+", content.strip()) if content.strip() else []
            first = sentences[0] if sentences else ""
            if len(first) > 160:
                first = first[:157].rsplit(" ", 1)[0] + "…"
            body = first or f"a text about {topic}."
            return f"Summary: {body} Key points: {', '.join(kws[:3])}."
        if task == "list":
            n = _count(ask, 3)
            angles = ["Start with", "Take a closer look at", "Compare the options for",
                      "Set a budget for", "Ask the people involved about",
                      "Write down what you learn about"]
            return "\n".join(f"- {angles[(i + variant) % len(angles)]} {kws[i % len(kws)]}"
                             for i in range(n))
        if task == "classify":
            sc = sentiment(source)
            return "positive" if sc > 0 else "negative" if sc < 0 else "neutral"
        if task == "email":
            text = _email(ask, content)
        elif task == "draft":
            text = _draft(topic, kws, content)
        else:
            openings = [f"{topic[:1].upper() + topic[1:]} comes down to a few ideas.",
                        f"In short, {topic} is worth a closer look.",
                        f"Here is the gist of {topic}."]
            text = (f"{openings[variant]} The main points are {', '.join(kws[:3])}. "
                    f"Each builds on the last, so start with {kws[0]} and work outwards.")
        limit = params.get("max_tokens")
        if isinstance(limit, int) and limit > 0 and estimate_tokens(text) > limit:
            text = text[: max(1, limit * 4)]
        return text


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


_TERM = re.compile(r"[A-Za-z][\w+#]*(?:\.[A-Za-z]\w*)*")


def _terms(text: str) -> list[str]:
    """Proper-noun-like terms (TypeScript, Node.js, SQL): capitalised words that do not start a
    sentence, or words with a dot/plus/hash inside — an extraction of skills, tools, names."""
    out: list[str] = []
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        for i, m in enumerate(_TERM.finditer(sentence)):
            w = m.group(0)
            inner = any(c in w[1:] for c in ".+#")
            if (inner or (i > 0 and any(c.isupper() for c in w))) and w not in out:
                out.append(w)
    return out


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


_TASKS = (("extract", r"\bextract\w*\b"), ("outline", r"\boutlines?\b"), ("titles", r"\b(titles?|headlines?|names?)\b"),
          ("summary", r"\bsummar(y|ise|ize|ising|izing)\b|\btl;?dr\b"),
          ("classify", r"\b(classify|sentiment)\b"),
          ("list", r"\b(bullets?|list|steps|ideas|points)\b"),
          ("email", r"\b(e-?mail|letter|note|message) (?:to|inviting|telling|saying|informing)\b"),
          ("draft", r"\b(draft|blog post|post|article|essay|paragraphs?|e-?mail|letter|reply)\b"))


def _writing_task(ask: str) -> str | None:
    """The artefact asked for: the task keyword that appears *first* in the instruction
    ("an outline for a blog post" → outline; "a blog post following this outline" → draft)."""
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


def _topic_phrase(source: str, kws: Sequence[str]) -> str:
    """A short noun phrase for the topic: the subject line if short, else two keywords."""
    first = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
    first = re.sub(r"^(?:#+\s*|(?:outline|summary|title|draft)\s*:\s*)", "", first, flags=re.I)
    first = first.strip(" .!?:;\"'")
    first = re.sub(r"(?i)^(?:the|a|an|our|my|your)\s+", "", first)
    if first and len(first.split()) <= 8 and not re.match(r"^\d+[.)]", first):
        return first[:1].lower() + first[1:] if not first[:2].isupper() else first
    return " ".join(kws[:2]) or "the topic"


#: what an e-mail says, by what the instruction asks for (first match)
_EMAIL_BODIES = (
    (r"invit", ("We were impressed by your application and would like to invite you to an "
                "interview. Please reply with a few times that suit you.")),
    (r"another candidate|not (?:be )?moving forward|reject|declin",
     ("Thank you for your interest and the time you put into your application. We have decided "
      "to continue with other candidates, and we wish you every success.")),
    (r"thank", "Thank you for your kind words; it means a lot to the whole team."),
    (r"edited|remov|redact", ("We edited your post to remove personal information. Please avoid "
                              "sharing contact details publicly.")),
    (r"feedback|ticket|logged", ("Thank you for your feedback. We have logged it and the team "
                                 "will look into it.")),
)


def _email(ask: str, content: str) -> str:
    """A short e-mail: greeting (the name filled in, when the content is one), one body line
    chosen by what is asked, sign-off."""
    name = content.strip() if 0 < len(content.split()) <= 4 and "\n" not in content.strip() else ""
    body = next((text for pattern, text in _EMAIL_BODIES if re.search(pattern, ask)),
                "Thank you for getting in touch; we will follow up shortly.")
    return f"Dear {name or 'customer'},\n\n{body}\n\nBest regards,\nThe team"


def _draft(topic: str, kws: Sequence[str], content: str) -> str:
    """A few paragraphs; one per numbered point when the content is an outline."""
    points = [m.group(1).strip() for m in re.finditer(r"(?m)^\s*\d+[.)]\s+(.+)$", content)]
    head = topic[:1].upper() + topic[1:]
    if points:
        paras = [f"# {head}"]
        for p in points[:8]:
            label, _, rest = p.partition(":")
            body = rest.strip() or label
            paras.append(f"{label.strip()}. This section covers {body[:1].lower() + body[1:]}, "
                         f"with a concrete example and what to watch out for.")
        return "\n\n".join(paras)
    return (f"# {head}\n\n{head} matters because of {', '.join(kws[:3])}. "
            f"This draft walks through {kws[0]} first, then shows how the rest follows, and "
            f"ends with practical next steps.")


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
