"""The billing scheduler: what runs by itself in ``synor worker`` (and ``synor serve``).

Every tick it closes the last period once its grace period is over (SPEC §7: drafts are
finalised after the grace period), then records the dunning notices overdue invoices have
earned. Both are idempotent, so any number of workers may run it side by side: a period closed
by one is skipped by the others, and a notice is recorded once per invoice.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from synor_economics.domain.period import Period
from synor_economics.ports import Clock
from synor_economics.services.billing import BillingService

log = logging.getLogger("synor.scheduler")


@dataclass
class BillingScheduler:
    billing: BillingService
    clock: Clock
    interval_s: float = 60.0
    closed: set[str] = field(default_factory=set)
    """Periods this process has closed (closing again would only find nothing to do); for
    each anchor day accounts use, the last period is closed once its grace period is over."""

    def tick(self) -> list[str]:
        """One round; the invoice numbers it issued."""
        now = self.clock.now()
        issued: list[str] = []
        for anchor in sorted(self.billing.anchor_days()):
            previous = Period.containing(now, anchor_day=anchor).earlier()
            if previous.label in self.closed or now < previous.end + self.billing.grace:
                continue
            report = self.billing.close_period(previous)
            issued.extend(report.issued)
            self.closed.add(previous.label)
            if report.issued:
                log.info("closed %s: %d invoices", previous.label, len(report.issued))
        notices = self.billing.send_notices()
        if notices:
            log.info("recorded %d dunning notices", len(notices))
        return issued

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set; a failing tick is logged and tried again next time."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # a scheduler must outlive one bad tick; the next one retries
                log.exception("billing scheduler tick failed")
            stop.wait(self.interval_s)
