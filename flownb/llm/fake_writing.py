"""The fake model's writing: terms, topic phrases, e-mails and drafts built from the content.

Why separate: producing text is a different job from deciding a yes/no or a route, and these
builders are the bulk of the fake's free-text behaviour (:meth:`flownb.llm.fake.FakeLLM.write`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence


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

