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
The parts live in ``fake_text`` (word lists, text features, message reading), ``fake_prompts``
(recognising the task and its options) and ``fake_writing`` (drafts, e-mails, terms); their
names are re-exported here. This module keeps the decision rules per task (:class:`FakeLLM`).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .fake_prompts import (  # noqa: F401 - re-exported
    _FLAG_ROUTES,
    _SEVERE_WORDS,
    _TASKS,
    tag_words,
    _TRUE_WORDS,
    SEVERITY,
    _analysis_flags,
    _count,
    _is_yes_no,
    _parse_choices,
    _rating_options,
    _required_items,
    _subject,
    _writing_task,
)
from .fake_text import (  # noqa: F401 - re-exported
    _NUMBERS,
    _WORD,
    CHOICE_SYNONYMS,
    DEFAULT_CHOICES,
    EMAIL,
    INSULT_PHRASES,
    INSULTS,
    NEGATIVE,
    NEGATORS,
    PHONE,
    POSITIVE,
    SPAM_PHRASES,
    STOPWORDS,
    URGENT,
    URL,
    Handler,
    Messages,
    _digest,
    estimate_tokens,
    has_pii,
    insult_count,
    keywords,
    message_text,
    sentiment,
    spam_count,
    split_instruction,
    words,
)
from .fake_writing import _EMAIL_BODIES, _TERM, _draft, _email, _terms, _topic_phrase  # noqa: F401

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
        instruction = tag_words(instruction)
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
        question = tag_words(question)  # "[check_for_pii] ..." names its task
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
