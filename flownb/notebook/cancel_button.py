"""The one rule for a live view's Cancel button (the run widget's and the batch view's).

Why one rule: a person reads an enabled Cancel button as "something still runs". Once the run
(or every run of a batch) has ended there is nothing left to cancel, so the button is disabled
and its tooltip says why; the run widget and the batch view used to decide this separately and
the batch view's button was left clickable (issue 20 #11).
"""

from __future__ import annotations

from typing import Any

#: the tooltip while there is something to cancel
CANCEL_TIP = "stop what still runs"
#: the tooltip once nothing is left to cancel (``what``: "the run", "every run of the batch")
ENDED_TIP = "nothing left to cancel: {what} ended"


def settle_cancel_button(button: Any, *, ended: bool, what: str) -> None:
    """Disable ``button`` (with why in its tooltip) once ``what`` ended; enable it again when a
    new pass starts (``batch.retry_failed()``). A button disabled by its own click while the
    cancel is under way (tooltip untouched) stays disabled until the end."""
    ended_tip = ENDED_TIP.format(what=what)
    if ended:
        if not button.disabled:
            button.disabled = True
        if button.tooltip != ended_tip:
            button.tooltip = ended_tip
    elif button.tooltip == ended_tip:  # ended before, runs again now
        button.disabled = False
        button.tooltip = CANCEL_TIP
