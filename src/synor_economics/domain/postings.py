"""How billing moves money in the ledger (SPEC §5, §7): the accounts and the transfers.

Every money movement of billing is one ledger transfer with an id derived from what caused it, so
a retried close, payment or grant is a no-op (same id, same body):

* **finalising an invoice** (``invoice:SYN-2026-000001``), one balanced transfer:
  credit ``revenue:<service>`` with each service's lines; debit ``revenue:discounts`` and
  ``revenue:sla_credits`` (contra-revenue) with the discount and SLA lines; debit
  ``customer:A:credits`` with the grants used, ``customer:A:prepaid`` with the prepaid balance
  used, and ``customer:A:receivable`` with what is left due;
* **granting credit** (``grant:A:<id>``): ``equity:grants`` → ``customer:A:credits``;
* **breakage** of an expired grant's rest (``grant:A:<id>:breakage``): ``customer:A:credits`` →
  ``breakage``;
* **a prepaid deposit** (``deposit:<reference>``): ``chain:clearing`` → ``customer:A:prepaid``;
* **a payment** (``payment:<reference>``): ``chain:clearing`` → ``customer:A:receivable`` for what
  the invoice has due, the rest → ``customer:A:prepaid`` (SPEC §7: over-payment is prepaid);
* **a credit note** (``credit-note:SYN-…``): ``revenue:credit_notes`` → the receivable (as far as
  the invoice is unpaid) and the rest → prepaid; **voiding** reverses the invoice's transfer.

A subtotal clamped at zero (corrections outweighing charges) leaves nothing due; the difference
is booked to ``revenue:discounts`` so the transfer still balances.
"""

from __future__ import annotations

from collections import defaultdict

from synor_economics.domain.invoice import AdjustmentKind, Rated
from synor_economics.domain.ledger import AccountKind, AccountSpec, Entry, Side, Transfer

CLEARING = "chain:clearing"
GRANTS_EQUITY = "equity:grants"
BREAKAGE = "breakage"
DISCOUNTS = "revenue:discounts"
SLA_CREDITS = "revenue:sla_credits"
CREDIT_NOTES = "revenue:credit_notes"


def receivable(account: str) -> str:
    return f"customer:{account}:receivable"


def prepaid(account: str) -> str:
    return f"customer:{account}:prepaid"


def credits(account: str) -> str:
    return f"customer:{account}:credits"


def revenue(service: str) -> str:
    return f"revenue:{service}"


def customer_accounts(account: str) -> list[AccountSpec]:
    """The three ledger accounts a customer can have: receivable (first), prepaid, credits."""
    return [
        AccountSpec.of(receivable(account), AccountKind.CUSTOMER_RECEIVABLE, owner=account),
        AccountSpec.of(prepaid(account), AccountKind.CUSTOMER_PREPAID, owner=account),
        AccountSpec.of(credits(account), AccountKind.CREDIT_GRANTS, owner=account),
    ]


def protocol_accounts(services: tuple[str, ...]) -> list[AccountSpec]:
    """The protocol's side of billing: revenue per service and its contra accounts."""
    specs = [AccountSpec.of(revenue(s), AccountKind.REVENUE, owner=s) for s in services]
    specs += [
        AccountSpec.of(DISCOUNTS, AccountKind.REVENUE),
        AccountSpec.of(SLA_CREDITS, AccountKind.REVENUE),
        AccountSpec.of(CREDIT_NOTES, AccountKind.REVENUE),
        AccountSpec.of(CLEARING, AccountKind.CHAIN_CLEARING),
        AccountSpec.of(GRANTS_EQUITY, AccountKind.EQUITY),
        AccountSpec.of(BREAKAGE, AccountKind.BREAKAGE),
    ]
    return specs


def _entries(debits: dict[str, int]) -> tuple[Entry, ...]:
    """Entries from signed debit amounts per account (negative: a credit), zeros dropped."""
    entries = [
        Entry(name, Side.DEBIT if amount > 0 else Side.CREDIT, abs(amount))
        for name, amount in debits.items()
        if amount != 0
    ]
    entries.sort(key=lambda e: (e.side is Side.CREDIT, e.account))
    return tuple(entries)


def invoice_transfer(number: str, account: str, rated: Rated) -> Transfer | None:
    """The finalising transfer of an invoice; None when it moves nothing."""
    debits: dict[str, int] = defaultdict(int)
    for line in rated.lines:
        debits[revenue(line.service)] -= line.amount
    for adjustment in rated.adjustments:
        if adjustment.kind is AdjustmentKind.LATE_USAGE and adjustment.line is not None:
            debits[revenue(adjustment.line)] -= adjustment.amount  # revenue of its service
            continue
        target = SLA_CREDITS if adjustment.kind is AdjustmentKind.SLA_CREDIT else DISCOUNTS
        debits[target] -= adjustment.amount  # adjustments are negative: a debit
    clamped = rated.subtotal - (
        rated.charges + rated.discounts + rated.sla_credits + rated.late_usage
    )
    debits[DISCOUNTS] -= clamped
    debits[credits(account)] += rated.credits_applied
    debits[prepaid(account)] += rated.prepaid_applied
    debits[receivable(account)] += rated.total_due
    entries = _entries(debits)
    if not entries:
        return None
    return Transfer(f"invoice:{number}", entries, code="invoice.finalize", memo=account)


def grant_transfer(account: str, grant_id: str, amount: int) -> Transfer:
    return Transfer.between(
        f"grant:{account}:{grant_id}",
        debit=GRANTS_EQUITY,
        credit=credits(account),
        amount=amount,
        code="credit.grant",
    )


def breakage_transfer(account: str, grant_id: str, amount: int) -> Transfer:
    return Transfer.between(
        f"grant:{account}:{grant_id}:breakage",
        debit=credits(account),
        credit=BREAKAGE,
        amount=amount,
        code="credit.breakage",
    )


def deposit_transfer(account: str, reference: str, amount: int) -> Transfer:
    return Transfer.between(
        f"deposit:{reference}",
        debit=CLEARING,
        credit=prepaid(account),
        amount=amount,
        code="prepaid.deposit",
        memo=account,
    )


def settlement_transfer(
    transfer_id: str, *, code: str, source: str, account: str, to_receivable: int, to_prepaid: int
) -> Transfer:
    """Money for an account from ``source``: first what an invoice has due, the rest prepaid."""
    debits = {source: to_receivable + to_prepaid}
    debits[receivable(account)] = -to_receivable
    debits[prepaid(account)] = -to_prepaid
    return Transfer(transfer_id, _entries(debits), code=code, memo=account)
