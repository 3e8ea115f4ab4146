"""What a call costs, so a notebook can show dollars next to tokens.

Prices are OpenAI's list prices in USD per **1 million** tokens (input, output), as published on
the date in :data:`PRICES_AS_OF`; they change, so treat the figures as estimates and update or
extend the table in place (``flownb.llm.PRICES["my-model"] = (0.5, 1.5)``). A model not in the
table has an unknown cost (``None``) rather than a guessed one.
"""

from __future__ import annotations

#: when the figures below were taken from OpenAI's pricing page (standard tier, no batch/cache
#: discounts)
PRICES_AS_OF = "2025-08-07"

#: model → (USD per 1M prompt tokens, USD per 1M completion tokens)
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o1": (15.00, 60.00),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    # the offline fake costs nothing; listing it makes cost_usd 0.0 rather than unknown
    "fake": (0.0, 0.0),
}


def price_for(model: str) -> tuple[float, float] | None:
    """The table entry for ``model``; dated snapshots (``gpt-4o-mini-2024-07-18``) and provider
    prefixes (``openai/gpt-4o``) fall back to the longest listed name they start with."""
    name = model.strip().lower()
    if "/" in name:
        name = name.rsplit("/", 1)[1]
    if name in PRICES:
        return PRICES[name]
    best: str | None = None
    for known in PRICES:
        if name.startswith(known + "-") and (best is None or len(known) > len(best)):
            best = known
    return PRICES[best] if best is not None else None


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """Estimated cost of one call in USD, or ``None`` when the model's price is not known."""
    price = price_for(model)
    if price is None:
        return None
    cost = (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000
    return round(cost, 10)
