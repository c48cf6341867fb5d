"""The ledger state machine on an in-memory working set (no database), and the auditor.

Balances are checked through all four running totals; the audit tests tamper with copies of an
honest history and expect the specific violation each tamper leaves behind.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synor_economics.domain.errors import LedgerError
from synor_economics.domain.ledger import (
    MAX_AMOUNT,
    Account,
    AccountKind,
    AccountSpec,
    Applied,
    Balance,
    Command,
    Duplicate,
    Entry,
    EntryRecord,
    LedgerMachine,
    Outcome,
    PostPending,
    Rejected,
    Reverse,
    Side,
    Transfer,
    TransferKind,
    TransferRecord,
    VoidPending,
    WorkingSet,
    fingerprint,
)
from synor_economics.domain.ledger_audit import AuditReport, audit

DEBIT, CREDIT = Side.DEBIT, Side.CREDIT

PREPAID = "acme.prepaid"  # credit-normal, floor 0
GRANTS = "acme.grants"  # credit-normal, floor 0
RECEIVABLE = "acme.receivable"  # debit-normal, no floor
REVENUE = "revenue"  # credit-normal, no floor
CLEARING = "chain.clearing"  # debit-normal, no floor
OPERATOR = "op.node7"  # credit-normal
STAKERS = "stakers"  # credit-normal
COMMUNITY = "community"  # credit-normal
EQUITY = "equity"  # credit-normal

KINDS = {
    PREPAID: AccountKind.CUSTOMER_PREPAID,
    GRANTS: AccountKind.CREDIT_GRANTS,
    RECEIVABLE: AccountKind.CUSTOMER_RECEIVABLE,
    REVENUE: AccountKind.REVENUE,
    CLEARING: AccountKind.CHAIN_CLEARING,
    OPERATOR: AccountKind.OPERATOR_PAYABLE,
    STAKERS: AccountKind.STAKER_POOL,
    COMMUNITY: AccountKind.COMMUNITY_POOL,
    EQUITY: AccountKind.EQUITY,
}


def make_accounts() -> dict[str, Account]:
    return {
        account_id: Account(AccountSpec.of(account_id, kind), num)
        for num, (account_id, kind) in enumerate(KINDS.items(), start=1)
    }


def make_machine(
    accounts: dict[str, Account] | None = None, *, last_seq: int = 0, last_ts_us: int = 0
) -> LedgerMachine:
    working = WorkingSet(
        accounts if accounts is not None else make_accounts(),
        known={},
        resolved=set(),
        last_seq=last_seq,
        last_ts_us=last_ts_us,
    )
    return LedgerMachine(working)


def totals(m: LedgerMachine) -> dict[str, tuple[int, int, int, int]]:
    """Every account's four running totals, as plain tuples (a snapshot that cannot alias)."""
    return {
        account_id: (
            account.balance.debits_posted,
            account.balance.credits_posted,
            account.balance.debits_pending,
            account.balance.credits_pending,
        )
        for account_id, account in m.w.accounts.items()
    }


def bal(m: LedgerMachine, account_id: str) -> Balance:
    return m.w.accounts[account_id].balance


def posted(m: LedgerMachine, account_id: str) -> int:
    account = m.w.accounts[account_id]
    return account.balance.posted(account.spec.normal)


def available(m: LedgerMachine, account_id: str) -> int:
    account = m.w.accounts[account_id]
    return account.balance.available(account.spec.normal)


def applied(outcome: Outcome) -> Applied:
    assert isinstance(outcome, Applied), outcome
    return outcome


def rejected(outcome: Outcome, code: str) -> Rejected:
    assert isinstance(outcome, Rejected), outcome
    assert outcome.error.code == code, outcome.error
    return outcome


def deposit(tid: str, amount: int, account: str = PREPAID) -> Transfer:
    """SYNOR arrives on chain: debit the clearing account, credit the customer's prepaid."""
    return Transfer.between(tid, debit=CLEARING, credit=account, amount=amount, code="deposit")


def spend(tid: str, amount: int, *, pending: bool = False) -> Transfer:
    """Prepaid pays an invoice: debit prepaid (lowers it), credit revenue."""
    return Transfer.between(
        tid, debit=PREPAID, credit=REVENUE, amount=amount, code="invoice.pay", pending=pending
    )


# --- posted transfers --------------------------------------------------------------------------


def test_posted_transfer_moves_both_balances() -> None:
    m = make_machine()
    out = applied(
        m.apply(Transfer.between("inv-1", debit=RECEIVABLE, credit=REVENUE, amount=100), 1_000)
    )
    # receivable is debit-normal: +100 debit → posted 100; revenue is credit-normal: +100 credit
    assert posted(m, RECEIVABLE) == 100
    assert posted(m, REVENUE) == 100
    assert bal(m, RECEIVABLE).net == 100
    assert bal(m, REVENUE).net == -100  # net is debits − credits
    assert out.record.seq == 1
    assert out.record.kind is TransferKind.POSTED
    assert out.record.ts_us == 1_000
    assert out.record.amount == 100
    assert out.record.ref is None
    assert out.balances_after == (100, -100)
    assert m.w.last_seq == 1
    assert m.w.touched == {RECEIVABLE, REVENUE}
    assert m.w.known["inv-1"] == out.record


def test_multi_leg_journal_balances() -> None:
    m = make_machine()
    entries = (
        Entry(CLEARING, DEBIT, 100),
        Entry(OPERATOR, CREDIT, 70),
        Entry(STAKERS, CREDIT, 20),
        Entry(COMMUNITY, CREDIT, 10),
    )  # 100 = 70 + 20 + 10
    out = applied(m.apply(Transfer("fees-1", entries, code="fees.distribute"), 5))
    assert out.record.amount == 100
    assert out.balances_after == (100, -70, -20, -10)
    assert (posted(m, OPERATOR), posted(m, STAKERS), posted(m, COMMUNITY)) == (70, 20, 10)
    assert posted(m, CLEARING) == 100
    assert sum(a.balance.net for a in m.w.accounts.values()) == 0


def test_the_same_account_twice_gets_a_running_balance_per_leg() -> None:
    m = make_machine()
    entries = (Entry(CLEARING, DEBIT, 100), Entry(PREPAID, CREDIT, 60), Entry(PREPAID, CREDIT, 40))
    out = applied(m.apply(Transfer("split-deposit", entries), 1))
    # prepaid's net: −60 after leg 1, −60 − 40 = −100 after leg 2
    assert out.balances_after == (100, -60, -100)
    assert posted(m, PREPAID) == 100


def test_largest_amount_is_accepted() -> None:
    m = make_machine()
    applied(m.apply(Transfer.between("big", debit=CLEARING, credit=EQUITY, amount=MAX_AMOUNT), 1))
    assert posted(m, EQUITY) == 10**36 - 1


def _t(*entries: tuple[str, Any, Any]) -> tuple[Entry, ...]:
    return tuple(Entry(account, side, amount) for account, side, amount in entries)


@pytest.mark.parametrize(
    ("entries", "code"),
    [
        pytest.param(
            _t((RECEIVABLE, DEBIT, 100), (REVENUE, CREDIT, 99)), "unbalanced", id="100v99"
        ),
        pytest.param(
            _t((CLEARING, DEBIT, 100), (OPERATOR, CREDIT, 70), (STAKERS, CREDIT, 20)),
            "unbalanced",
            id="100v90",
        ),
        pytest.param(_t((RECEIVABLE, DEBIT, 5), (CLEARING, DEBIT, 5)), "one_sided", id="debits"),
        pytest.param(_t((REVENUE, CREDIT, 5)), "one_sided", id="one-credit"),
        pytest.param((), "empty", id="empty"),
        pytest.param(_t((RECEIVABLE, DEBIT, 0), (REVENUE, CREDIT, 0)), "invalid_amount", id="0"),
        pytest.param(
            _t((RECEIVABLE, DEBIT, -5), (REVENUE, CREDIT, -5)), "invalid_amount", id="neg"
        ),
        pytest.param(
            _t((RECEIVABLE, DEBIT, 1.5), (REVENUE, CREDIT, 1.5)), "invalid_amount", id="flt"
        ),
        pytest.param(
            _t((RECEIVABLE, DEBIT, 5.0), (REVENUE, CREDIT, 5)), "invalid_amount", id="5.0"
        ),
        pytest.param(
            _t((RECEIVABLE, DEBIT, True), (REVENUE, CREDIT, 1)), "invalid_amount", id="bool"
        ),
        pytest.param(
            _t((RECEIVABLE, DEBIT, Decimal(5)), (REVENUE, CREDIT, 5)),
            "invalid_amount",
            id="Decimal",
        ),
        pytest.param(
            _t((RECEIVABLE, DEBIT, "5"), (REVENUE, CREDIT, 5)), "invalid_amount", id="str"
        ),
        pytest.param(
            _t((RECEIVABLE, DEBIT, MAX_AMOUNT + 1), (REVENUE, CREDIT, MAX_AMOUNT + 1)),
            "invalid_amount",
            id="over-max",
        ),
        pytest.param(_t(("nobody", DEBIT, 5), (REVENUE, CREDIT, 5)), "unknown_account", id="unk"),
        pytest.param(_t((RECEIVABLE, "sideways", 5), (REVENUE, CREDIT, 5)), "invalid_side", id="s"),
    ],
)
def test_bad_transfers_are_rejected_and_change_nothing(
    entries: tuple[Entry, ...], code: str
) -> None:
    m = make_machine()
    before = totals(m)
    out = rejected(m.apply(Transfer("t-1", entries), 1), code)
    assert out.id == "t-1"
    assert totals(m) == before
    assert m.w.last_seq == 0
    assert m.w.last_ts_us == 0
    assert "t-1" not in m.w.known
    assert m.w.touched == set()


@pytest.mark.parametrize(
    "bad_id",
    ["", " t1", "t 1", "t1 ", "-t1", "_t1", "t1|x", "t\u00fc", "a" * 201, "t1\tx", 17, None],
)
def test_bad_transfer_ids_are_rejected(bad_id: Any) -> None:
    m = make_machine()
    transfer = Transfer.between(bad_id, debit=RECEIVABLE, credit=REVENUE, amount=5)
    rejected(m.apply(transfer, 1), "invalid_transfer_id")
    assert m.w.known == {}
    assert totals(m) == totals(make_machine())


def test_a_trailing_newline_in_a_transfer_id_is_refused() -> None:
    m = make_machine()
    transfer = Transfer.between("t1\n", debit=RECEIVABLE, credit=REVENUE, amount=5)
    rejected(m.apply(transfer, 1), "invalid_transfer_id")


def test_account_ids_are_validated() -> None:
    AccountSpec.of("acme.prepaid", AccountKind.CUSTOMER_PREPAID).validate()
    for bad in ("", "Acme", "acme prepaid", "-acme", "a" * 201):
        with pytest.raises(LedgerError, match="account id") as caught:
            AccountSpec.of(bad, AccountKind.REVENUE).validate()
        assert caught.value.code == "invalid_account_id"


def test_a_trailing_newline_in_an_account_id_is_refused() -> None:
    with pytest.raises(LedgerError, match="account id"):
        AccountSpec.of("acme\n", AccountKind.REVENUE).validate()


@pytest.mark.parametrize("good_id", ["t", "A9", "inv/2026-11/acct_42:1.a", "a" * 200])
def test_good_transfer_ids_are_accepted(good_id: str) -> None:
    m = make_machine()
    applied(m.apply(Transfer.between(good_id, debit=RECEIVABLE, credit=REVENUE, amount=5), 1))


def test_references_are_checked_for_id_too() -> None:
    m = make_machine()
    applied(m.apply(deposit("d1", 10), 1))
    for command in (PostPending("bad id", "d1"), VoidPending("", "d1"), Reverse(" r", "d1")):
        rejected(m.apply(command, 2), "invalid_transfer_id")
    assert m.w.last_seq == 1


# --- idempotency -------------------------------------------------------------------------------


def test_same_id_same_body_is_a_duplicate() -> None:
    m = make_machine()
    transfer = Transfer.between("inv-1", debit=RECEIVABLE, credit=REVENUE, amount=100, memo="m")
    first = applied(m.apply(transfer, 10))
    before = totals(m)
    again = m.apply(
        Transfer.between("inv-1", debit=RECEIVABLE, credit=REVENUE, amount=100, memo="m"), 20
    )
    assert isinstance(again, Duplicate)
    assert again.record == first.record  # the first record, with its seq and timestamp
    assert totals(m) == before
    assert m.w.last_seq == 1
    assert m.w.last_ts_us == 10


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(
            Transfer.between("inv-1", debit=RECEIVABLE, credit=REVENUE, amount=101, memo="m"),
            id="amount",
        ),
        pytest.param(
            Transfer.between("inv-1", debit=RECEIVABLE, credit=REVENUE, amount=100, memo="n"),
            id="memo",
        ),
        pytest.param(
            Transfer.between(
                "inv-1", debit=RECEIVABLE, credit=REVENUE, amount=100, memo="m", code="c"
            ),
            id="code",
        ),
        pytest.param(
            Transfer.between("inv-1", debit=CLEARING, credit=REVENUE, amount=100, memo="m"),
            id="debit-account",
        ),
        pytest.param(
            Transfer.between("inv-1", debit=RECEIVABLE, credit=EQUITY, amount=100, memo="m"),
            id="credit-account",
        ),
        pytest.param(
            Transfer.between("inv-1", debit=REVENUE, credit=RECEIVABLE, amount=100, memo="m"),
            id="sides-swapped",
        ),
        pytest.param(
            Transfer.between(
                "inv-1", debit=RECEIVABLE, credit=REVENUE, amount=100, memo="m", pending=True
            ),
            id="pending",
        ),
        pytest.param(
            Transfer(
                "inv-1",
                _t((RECEIVABLE, DEBIT, 60), (RECEIVABLE, DEBIT, 40), (REVENUE, CREDIT, 100)),
                memo="m",
            ),
            id="legs-split",
        ),
        pytest.param(Reverse("inv-1", "inv-1", memo="m"), id="other-command"),
        pytest.param(
            Transfer.between("inv-1", debit=RECEIVABLE, credit=REVENUE, amount=0, memo="m"),
            id="invalid-body",
        ),
    ],
)
def test_same_id_different_body_is_a_conflict_and_the_first_stands(variant: Command) -> None:
    m = make_machine()
    first = applied(
        m.apply(
            Transfer.between("inv-1", debit=RECEIVABLE, credit=REVENUE, amount=100, memo="m"), 1
        )
    )
    before = totals(m)
    rejected(m.apply(variant, 2), "id_conflict")
    assert totals(m) == before
    assert m.w.known["inv-1"] == first.record
    assert m.w.last_seq == 1
    assert posted(m, REVENUE) == 100


def test_a_code_memo_split_is_a_different_body() -> None:
    m = make_machine()
    applied(
        m.apply(Transfer.between("t1", debit=RECEIVABLE, credit=REVENUE, amount=5, code="x|y"), 1)
    )
    clash = Transfer.between("t1", debit=RECEIVABLE, credit=REVENUE, amount=5, code="x", memo="y|")
    rejected(m.apply(clash, 2), "id_conflict")


def test_a_rejected_command_leaves_no_trace_and_may_apply_later() -> None:
    """A refusal stores nothing: the same id, retried once the balance allows it, applies."""
    m = make_machine()
    rejected(m.apply(spend("pay-1", 30), 1), "floor_exceeded")
    applied(m.apply(deposit("dep-1", 50), 2))
    out = applied(m.apply(spend("pay-1", 30), 3))
    assert out.record.seq == 2  # the refusal consumed no sequence number
    assert posted(m, PREPAID) == 20  # 50 − 30


def test_retrying_a_post_pending_is_a_duplicate_not_already_resolved() -> None:
    m = make_machine()
    applied(m.apply(deposit("dep", 100), 1))
    applied(m.apply(spend("hold", 60, pending=True), 2))
    first = applied(m.apply(PostPending("post", "hold"), 3))
    again = m.apply(PostPending("post", "hold"), 4)
    assert isinstance(again, Duplicate)
    assert again.record == first.record
    rejected(m.apply(PostPending("post", "hold", memo="other"), 5), "id_conflict")


# --- floors ------------------------------------------------------------------------------------


def test_spending_more_than_deposited_is_refused_and_rolled_back() -> None:
    m = make_machine()
    applied(m.apply(deposit("dep-1", 100), 1))
    before = totals(m)
    # three legs: prepaid pays 101 to revenue 100 and community 1; only the prepaid leg breaks the
    # floor (100 − 101 = −1 < 0), and the other legs must be rolled back with it
    entries = _t((PREPAID, DEBIT, 101), (REVENUE, CREDIT, 100), (COMMUNITY, CREDIT, 1))
    out = rejected(m.apply(Transfer("pay-1", entries), 2), "floor_exceeded")
    assert PREPAID in out.error.message
    assert totals(m) == before
    assert m.w.last_seq == 1
    assert "pay-1" not in m.w.known


def test_a_floor_breach_in_a_later_leg_rolls_back_earlier_legs() -> None:
    m = make_machine()
    applied(m.apply(deposit("dep-1", 100), 1))
    applied(m.apply(deposit("grant-1", 10, account=GRANTS), 1))
    before = totals(m)
    # grants can pay 10 of 15; the prepaid leg (first) is fine, the grants leg (second) breaks
    entries = _t((PREPAID, DEBIT, 5), (GRANTS, DEBIT, 15), (REVENUE, CREDIT, 20))
    rejected(m.apply(Transfer("pay", entries), 2), "floor_exceeded")
    assert totals(m) == before


def test_spending_exactly_the_balance_is_allowed() -> None:
    m = make_machine()
    applied(m.apply(deposit("dep-1", 100), 1))
    applied(m.apply(spend("pay-1", 60), 2))
    applied(m.apply(spend("pay-2", 40), 3))  # 100 − 60 − 40 = 0 = floor
    assert posted(m, PREPAID) == 0
    assert available(m, PREPAID) == 0
    rejected(m.apply(spend("pay-3", 1), 4), "floor_exceeded")  # 0 − 1 < 0


def test_deposits_are_never_blocked_by_a_floor() -> None:
    m = make_machine()
    for i in range(3):
        applied(m.apply(deposit(f"dep-{i}", 10**30), i))
    assert posted(m, PREPAID) == 3 * 10**30


def test_a_custom_floor_allows_an_overdraft() -> None:
    accounts = make_accounts()
    accounts[PREPAID] = Account(AccountSpec.of(PREPAID, AccountKind.CUSTOMER_PREPAID, floor=-50), 1)
    m = make_machine(accounts)
    applied(m.apply(spend("pay-1", 50), 1))  # 0 − 50 = −50 = floor
    rejected(m.apply(spend("pay-2", 1), 2), "floor_exceeded")
    assert posted(m, PREPAID) == -50


def test_no_floor_means_no_limit() -> None:
    accounts = make_accounts()
    accounts[PREPAID] = Account(
        AccountSpec.of(PREPAID, AccountKind.CUSTOMER_PREPAID, floor=None), 1
    )
    m = make_machine(accounts)
    applied(m.apply(spend("pay-1", 10**20), 1))
    assert posted(m, PREPAID) == -(10**20)


# --- two-phase ---------------------------------------------------------------------------------


def test_two_phase_reserve_then_post() -> None:
    m = make_machine()
    applied(m.apply(deposit("dep", 100), 1))
    hold = applied(m.apply(spend("hold-1", 60, pending=True), 2))
    assert hold.record.kind is TransferKind.PENDING
    # posted unchanged, 60 reserved: available 100 − 60 = 40
    assert posted(m, PREPAID) == 100
    assert available(m, PREPAID) == 40
    assert bal(m, PREPAID).debits_pending == 60
    assert bal(m, REVENUE).credits_pending == 60
    assert posted(m, REVENUE) == 0
    assert hold.balances_after == (-100, 0)  # pending entries do not move the posted net

    before = totals(m)
    rejected(m.apply(spend("hold-2", 41, pending=True), 3), "floor_exceeded")  # 40 − 41 < 0
    rejected(m.apply(spend("pay-x", 41), 3), "floor_exceeded")  # posted spends see it too
    assert totals(m) == before

    out = applied(m.apply(PostPending("post-1", "hold-1"), 4))
    assert out.record.kind is TransferKind.POST_PENDING
    assert out.record.ref == "hold-1"
    assert out.record.entries == hold.record.entries
    assert out.record.code == ""
    # posted 100 − 60 = 40, the reservation is gone, available unchanged at 40
    assert posted(m, PREPAID) == 40
    assert available(m, PREPAID) == 40
    assert bal(m, PREPAID).debits_pending == 0
    assert bal(m, REVENUE).credits_pending == 0
    assert posted(m, REVENUE) == 60
    assert out.balances_after == (-40, -60)


def test_two_phase_reserve_then_void() -> None:
    m = make_machine()
    applied(m.apply(deposit("dep", 100), 1))
    applied(m.apply(spend("hold-1", 100, pending=True), 2))  # exactly the available balance
    assert available(m, PREPAID) == 0
    rejected(m.apply(spend("hold-2", 1, pending=True), 3), "floor_exceeded")
    out = applied(m.apply(VoidPending("void-1", "hold-1"), 4))
    assert out.record.kind is TransferKind.VOID_PENDING
    assert out.balances_after == (-100, 0)
    assert totals(m)[PREPAID] == (0, 100, 0, 0)
    assert totals(m)[REVENUE] == (0, 0, 0, 0)
    applied(m.apply(spend("hold-3", 100, pending=True), 5))  # the reservation was released


@pytest.mark.parametrize("first", ["post", "void"])
@pytest.mark.parametrize("second", ["post", "void"])
def test_a_pending_transfer_resolves_once(first: str, second: str) -> None:
    m = make_machine()
    applied(m.apply(deposit("dep", 100), 1))
    applied(m.apply(spend("hold", 30, pending=True), 2))
    make: dict[str, type[PostPending] | type[VoidPending]] = {
        "post": PostPending,
        "void": VoidPending,
    }
    applied(m.apply(make[first]("r1", "hold"), 3))
    before = totals(m)
    rejected(m.apply(make[second]("r2", "hold"), 4), "already_resolved")
    assert totals(m) == before
    assert m.w.last_seq == 3


@pytest.mark.parametrize("resolve", [PostPending, VoidPending])
def test_resolving_a_non_pending_or_unknown_transfer(resolve: type[PostPending]) -> None:
    m = make_machine()
    applied(m.apply(deposit("dep", 100), 1))
    applied(m.apply(spend("hold", 30, pending=True), 2))
    applied(m.apply(PostPending("post", "hold"), 3))
    rejected(m.apply(resolve("x1", "dep"), 5), "not_pending")  # a posted transfer
    rejected(m.apply(resolve("x2", "post"), 5), "not_pending")  # a post_pending record
    rejected(m.apply(resolve("x3", "missing"), 5), "not_found")
    assert m.w.last_seq == 3


# --- reversal ----------------------------------------------------------------------------------


def test_reversal_restores_balances() -> None:
    m = make_machine()
    start = totals(m)
    applied(m.apply(Transfer.between("inv", debit=RECEIVABLE, credit=REVENUE, amount=75), 1))
    out = applied(m.apply(Reverse("inv-rev", "inv", memo="billing error"), 2))
    assert out.record.kind is TransferKind.REVERSAL
    assert out.record.ref == "inv"
    assert out.record.entries == _t((RECEIVABLE, CREDIT, 75), (REVENUE, DEBIT, 75))
    assert out.balances_after == (0, 0)
    # nets are back to where they started (the posted totals record both movements)
    assert {i: b[0] - b[1] for i, b in totals(m).items()} == dict.fromkeys(start, 0)
    assert totals(m)[RECEIVABLE] == (75, 75, 0, 0)
    rejected(m.apply(Reverse("inv-rev-2", "inv"), 3), "already_reversed")


def test_a_posted_pending_can_be_reversed() -> None:
    m = make_machine()
    applied(m.apply(deposit("dep", 100), 1))
    applied(m.apply(spend("hold", 30, pending=True), 2))
    applied(m.apply(PostPending("post", "hold"), 3))
    applied(m.apply(Reverse("rev", "post"), 4))
    assert posted(m, PREPAID) == 100  # 100 − 30 + 30
    assert posted(m, REVENUE) == 0
    rejected(m.apply(Reverse("rev-2", "post"), 5), "already_reversed")


def test_what_cannot_be_reversed() -> None:
    m = make_machine()
    applied(m.apply(deposit("dep", 100), 1))
    applied(m.apply(spend("hold", 30, pending=True), 2))
    applied(m.apply(spend("hold-2", 30, pending=True), 2))
    applied(m.apply(VoidPending("void", "hold-2"), 3))
    before = totals(m)
    rejected(m.apply(Reverse("r1", "hold"), 4), "not_reversible")  # a pending moved nothing
    rejected(m.apply(Reverse("r2", "void"), 4), "not_reversible")
    rejected(m.apply(Reverse("r3", "missing"), 4), "not_found")
    applied(m.apply(Transfer.between("inv", debit=RECEIVABLE, credit=REVENUE, amount=5), 5))
    applied(m.apply(Reverse("inv-rev", "inv"), 6))
    rejected(m.apply(Reverse("r4", "inv-rev"), 7), "not_reversible")  # no reversal of a reversal
    assert totals(m)[PREPAID] == before[PREPAID]


def test_reversing_a_spent_deposit_is_refused_by_the_floor() -> None:
    m = make_machine()
    applied(m.apply(deposit("dep", 100), 1))
    applied(m.apply(spend("pay", 30), 2))
    before = totals(m)
    # undoing the deposit would leave 70 − 100 = −30 in prepaid
    rejected(m.apply(Reverse("dep-rev", "dep"), 3), "floor_exceeded")
    assert totals(m) == before
    # undo the spend first, then the deposit fits: 70 + 30 − 100 = 0
    applied(m.apply(Reverse("pay-rev", "pay"), 4))
    applied(m.apply(Reverse("dep-rev", "dep"), 5))
    assert posted(m, PREPAID) == 0


def test_reversing_a_deposit_reserved_by_a_pending_is_refused() -> None:
    m = make_machine()
    applied(m.apply(deposit("dep", 100), 1))
    applied(m.apply(spend("hold", 1, pending=True), 2))
    # posted 100, reserved 1: reversing the 100 deposit would leave available 0 − 1 = −1
    rejected(m.apply(Reverse("dep-rev", "dep"), 3), "floor_exceeded")


def test_a_plain_string_side_is_refused_or_fully_usable() -> None:
    m = make_machine()
    entries = _t((RECEIVABLE, "debit", 5), (REVENUE, "credit", 5))
    outcome = m.apply(Transfer("t1", entries), 1)
    if isinstance(outcome, Rejected):
        assert outcome.error.code == "invalid_side"
        return
    history = [(applied(outcome).record, applied(outcome).entry_records())]
    assert audit(stored(m), history).ok
    applied(m.apply(Reverse("t1-rev", "t1"), 2))


# --- sequence, time and running balances -------------------------------------------------------


def test_seq_is_gapless_and_time_strictly_increases() -> None:
    m = make_machine()
    commands_and_clock: list[tuple[Command, int]] = [
        (deposit("d1", 10), 1_000),
        (deposit("d2", 10), 1_000),  # same clock → 1001
        (spend("bad", 10**6), 2_000),  # rejected: no seq, no time
        (deposit("d3", 10), 500),  # clock went back → 1002
        (deposit("d1", 10), 9_999),  # duplicate: no seq, no time
        (deposit("d4", 10), 2_000),  # clock ahead → 2000
        (deposit("d5", 10), 0),  # → 2001
        (deposit("d6", 10), 2_001),  # equal to the last → 2002
    ]
    outcomes = [m.apply(command, now) for command, now in commands_and_clock]
    records = [o.record for o in outcomes if isinstance(o, Applied)]
    assert [r.seq for r in records] == [1, 2, 3, 4, 5, 6]
    assert [r.ts_us for r in records] == [1_000, 1_001, 1_002, 2_000, 2_001, 2_002]
    assert [r.id for r in records] == ["d1", "d2", "d3", "d4", "d5", "d6"]
    assert m.w.last_seq == 6
    assert m.w.last_ts_us == 2_002


def test_seq_and_time_continue_from_the_working_set() -> None:
    m = make_machine(last_seq=41, last_ts_us=10**15)
    first = applied(m.apply(deposit("d1", 10), 5))  # the clock is behind the ledger
    second = applied(m.apply(deposit("d2", 10), 2 * 10**15))
    assert (first.record.seq, first.record.ts_us) == (42, 10**15 + 1)
    assert (second.record.seq, second.record.ts_us) == (43, 2 * 10**15)


def test_balances_after_and_entry_records_track_the_posted_net() -> None:
    m = make_machine()
    commands: list[Command] = [
        deposit("d1", 100),
        spend("p1", 30),
        spend("h1", 20, pending=True),
        PostPending("h1-post", "h1"),
        spend("h2", 5, pending=True),
        VoidPending("h2-void", "h2"),
        Reverse("p1-rev", "p1"),
        Transfer("multi", _t((PREPAID, DEBIT, 10), (REVENUE, CREDIT, 4), (COMMUNITY, CREDIT, 6))),
    ]
    for now, command in enumerate(commands, start=1):
        out = applied(m.apply(command, now))
        assert len(out.balances_after) == len(out.record.entries)
        # each account appears once per transfer here, so "right after the entry" is "now"
        for entry, after in zip(out.record.entries, out.balances_after, strict=True):
            assert after == bal(m, entry.account).net
        records = out.entry_records()
        assert [r.leg for r in records] == list(range(len(out.record.entries)))
        for record, entry, after in zip(
            records, out.record.entries, out.balances_after, strict=True
        ):
            assert record.seq == out.record.seq
            assert (record.account, record.side, record.amount) == tuple(entry)
            assert record.balance_after == after
            assert record.pending is (out.record.kind is TransferKind.PENDING)
    # prepaid: +100 −30 −20 +30 −10 = 70 (the voided 5 never moved)
    assert posted(m, PREPAID) == 70
    assert posted(m, REVENUE) == 30 + 20 - 30 + 4


# --- audit -------------------------------------------------------------------------------------

History = list[tuple[TransferRecord, tuple[EntryRecord, ...]]]


def stored(m: LedgerMachine) -> dict[str, tuple[AccountSpec, Balance]]:
    return {i: (a.spec, a.balance.copy()) for i, a in m.w.accounts.items()}


def run(
    commands: Iterable[Command], m: LedgerMachine | None = None
) -> tuple[LedgerMachine, History]:
    m = m if m is not None else make_machine()
    history: History = []
    for now, command in enumerate(commands, start=1):
        out = m.apply(command, now * 10)
        if isinstance(out, Applied):
            history.append((out.record, out.entry_records()))
    return m, history


HONEST: list[Command] = [
    deposit("dep", 100),  # seq 1
    spend("pay", 30),  # seq 2
    spend("hold", 20, pending=True),  # seq 3
    PostPending("hold-post", "hold"),  # seq 4
    spend("hold-2", 5, pending=True),  # seq 5
    VoidPending("hold-2-void", "hold-2"),  # seq 6
    Reverse("pay-rev", "pay"),  # seq 7
    Transfer.between("inv", debit=RECEIVABLE, credit=REVENUE, amount=40),  # seq 8
    Transfer("fees", _t((CLEARING, DEBIT, 10), (OPERATOR, CREDIT, 7), (STAKERS, CREDIT, 3))),  # 9
]


@pytest.fixture
def honest() -> tuple[dict[str, tuple[AccountSpec, Balance]], History]:
    m, history = run(HONEST)
    assert len(history) == len(HONEST)  # every command applied
    return stored(m), history


def codes(report: AuditReport) -> set[str]:
    return {v.code for v in report.violations}


def test_audit_of_an_honest_history_is_clean(honest: tuple[Any, History]) -> None:
    accounts, history = honest
    report = audit(accounts, history)
    assert report.ok, report.violations
    assert report.violations == []
    assert report.transfers == 9
    assert report.entries == sum(len(entries) for _, entries in history) == 19
    assert report.accounts == len(KINDS)
    # debits: 100 + 30 + 20 + 20 + 5 + 5 + 30 + 40 + 10 = 260 (pending, post and void all count)
    assert report.total_debits == report.total_credits == 260


def _replace(history: History, index: int, **changes: Any) -> History:
    tampered = list(history)
    record, entries = tampered[index]
    tampered[index] = (record._replace(**changes), entries)
    return tampered


def _refingerprint(record: TransferRecord, command: Command) -> TransferRecord:
    return record._replace(fingerprint=fingerprint(command))


def test_audit_detects_a_changed_amount_in_a_record(honest: tuple[Any, History]) -> None:
    accounts, history = honest
    record = history[0][0]
    tampered = _replace(history, 0, entries=_t((CLEARING, DEBIT, 101), (PREPAID, CREDIT, 100)))
    report = audit(accounts, tampered)
    assert not report.ok
    assert {"fingerprint", "unbalanced", "trial_balance"} <= codes(report)
    # both legs changed consistently: still caught by the fingerprint
    both = _replace(history, 0, entries=_t((CLEARING, DEBIT, 101), (PREPAID, CREDIT, 101)))
    assert "fingerprint" in codes(audit(accounts, both))
    assert record.entries[0].amount == 100  # the honest copy is untouched


def test_audit_detects_a_changed_amount_in_an_entry_row(honest: tuple[Any, History]) -> None:
    accounts, history = honest
    record, entries = history[1]
    tampered = list(history)
    tampered[1] = (record, (entries[0]._replace(amount=31), *entries[1:]))
    report = audit(accounts, tampered)
    assert not report.ok
    assert {"running_balance", "stored_balance"} <= codes(report)


def test_audit_detects_a_dropped_transfer(honest: tuple[Any, History]) -> None:
    accounts, history = honest
    tampered = history[:4] + history[5:]  # drop seq 5 (the pending hold-2)
    report = audit(accounts, tampered)
    assert not report.ok
    assert "sequence_gap" in codes(report)
    gap = next(v for v in report.violations if v.code == "sequence_gap")
    assert "expected seq 5" in gap.detail
    assert "hold-2-void" in gap.where
    assert "reference" in codes(report)  # the void now refers to a transfer that is not there


def test_audit_detects_an_altered_balance_after(honest: tuple[Any, History]) -> None:
    accounts, history = honest
    record, entries = history[7]
    tampered = list(history)
    tampered[7] = (record, (entries[0], entries[1]._replace(balance_after=-41)))
    report = audit(accounts, tampered)
    assert codes(report) == {"running_balance"}
    assert report.violation_count == 1
    assert "leg 1" in report.violations[0].where


def test_audit_detects_an_altered_stored_balance(honest: tuple[Any, History]) -> None:
    accounts, history = honest
    tampered_accounts = copy.deepcopy(accounts)
    tampered_accounts[REVENUE][1].credits_posted += 1
    report = audit(tampered_accounts, history)
    assert codes(report) == {"stored_balance"}
    assert REVENUE in report.violations[0].where


def test_audit_detects_a_duplicate_id(honest: tuple[Any, History]) -> None:
    accounts, history = honest
    last, _ = history[-1]
    record, entries = history[7]  # "inv": 40 receivable → revenue
    again = record._replace(seq=last.seq + 1, ts_us=last.ts_us + 1)
    report = audit(accounts, [*history, (again, entries)])
    assert "duplicate_id" in codes(report)
    assert "sequence_gap" not in codes(report)
    assert not report.ok


def test_audit_detects_a_wrong_fingerprint(honest: tuple[Any, History]) -> None:
    accounts, history = honest
    report = audit(accounts, _replace(history, 2, fingerprint="0" * 32))
    assert codes(report) == {"fingerprint"}
    memo = audit(accounts, _replace(history, 2, memo="edited"))  # body edited, digest kept
    assert codes(memo) == {"fingerprint"}


def test_audit_detects_a_post_of_a_non_pending(honest: tuple[Any, History]) -> None:
    accounts, history = honest
    post, entries = history[3]  # hold-post → hold
    assert post.kind is TransferKind.POST_PENDING
    forged = _refingerprint(post._replace(ref="dep"), PostPending(post.id, "dep"))
    tampered = list(history)
    tampered[3] = (forged, entries)
    report = audit(accounts, tampered)
    assert codes(report) == {"reference"}
    details = " ".join(v.detail for v in report.violations)
    assert "post_pending of a posted transfer" in details


def test_audit_detects_a_pending_resolved_twice(honest: tuple[Any, History]) -> None:
    accounts, history = honest
    last, _ = history[-1]
    void, entries = history[5]  # hold-2-void → hold-2
    again = _refingerprint(
        void._replace(id="hold-2-void-again", seq=last.seq + 1, ts_us=last.ts_us + 1),
        VoidPending("hold-2-void-again", "hold-2"),
    )
    report = audit(accounts, [*history, (again, entries)])
    assert "resolved_twice" in codes(report)


def test_audit_detects_time_going_backwards(honest: tuple[Any, History]) -> None:
    accounts, history = honest
    report = audit(accounts, _replace(history, 4, ts_us=history[3][0].ts_us))
    assert codes(report) == {"timestamp_order"}


def test_audit_detects_a_floor_breach(honest: tuple[Any, History]) -> None:
    accounts, history = honest
    last, _ = history[-1]
    # prepaid ends the honest history at 100 − 20 = 80; a forged spend of 81 takes it to −1
    assert accounts[PREPAID][1].posted(Side.CREDIT) == 80
    forged = spend("forged", 81)
    record = TransferRecord(
        seq=last.seq + 1,
        id=forged.id,
        kind=TransferKind.POSTED,
        ts_us=last.ts_us + 1,
        entries=forged.entries,
        code=forged.code,
        fingerprint=fingerprint(forged),
    )
    final = copy.deepcopy(accounts)
    final[PREPAID][1].debits_posted += 81
    final[REVENUE][1].credits_posted += 81
    entries = (
        EntryRecord(record.seq, 0, PREPAID, DEBIT, 81, False, final[PREPAID][1].net),
        EntryRecord(record.seq, 1, REVENUE, CREDIT, 81, False, final[REVENUE][1].net),
    )
    assert final[PREPAID][1].net == 1  # −80 + 81
    report = audit(final, [*history, (record, entries)])
    assert codes(report) == {"floor"}
    assert PREPAID in report.violations[0].detail


def test_audit_detects_an_unknown_account(honest: tuple[Any, History]) -> None:
    accounts, history = honest
    smaller = {i: v for i, v in accounts.items() if i != STAKERS}
    report = audit(smaller, history)
    assert codes(report) == {"unknown_account"}


# --- property: random command sequences -------------------------------------------------------

PROPERTY_ACCOUNTS = [PREPAID, GRANTS, RECEIVABLE, REVENUE, CLEARING]
ID_POOL = [f"t{i}" for i in range(16)]

ids = st.sampled_from(ID_POOL)
accounts_st = st.sampled_from(PROPERTY_ACCOUNTS)
amounts = st.integers(min_value=1, max_value=100)
memos = st.sampled_from(["", "m"])


def transfer_of(draw: st.DrawFn, tid: str) -> Transfer:
    debit, credit, third = draw(accounts_st), draw(accounts_st), draw(accounts_st)
    amount = draw(amounts)
    pending = draw(st.booleans())
    memo = draw(memos)
    if draw(st.booleans()):
        return Transfer.between(
            tid, debit=debit, credit=credit, amount=amount, memo=memo, pending=pending
        )
    extra = draw(amounts)  # debit a + b, credit a and b
    entries = _t((debit, DEBIT, amount + extra), (credit, CREDIT, amount), (third, CREDIT, extra))
    return Transfer(tid, entries, pending=pending, memo=memo)


@st.composite
def command_sequences(draw: st.DrawFn) -> list[Command]:
    """Random commands; ids come from a small pool (so retries and clashes happen) and the
    transfers a post/void/reverse names are mostly ids drawn earlier (so they often exist)."""
    commands: list[Command] = []
    for _ in range(draw(st.integers(min_value=1, max_value=40))):
        tid = draw(ids)
        what = draw(st.sampled_from(["transfer", "transfer", "post", "void", "reverse"]))
        if what == "transfer":
            commands.append(transfer_of(draw, tid))
            continue
        earlier = [c.id for c in commands]
        ref: str = draw(ids)
        if earlier and draw(st.integers(min_value=0, max_value=9)) > 0:
            ref = draw(st.sampled_from(earlier))
        memo = draw(memos)
        if what == "post":
            commands.append(PostPending(tid, ref, memo))
        elif what == "void":
            commands.append(VoidPending(tid, ref, memo))
        else:
            commands.append(Reverse(tid, ref, memo))
    return commands


def check_invariants(m: LedgerMachine) -> None:
    balances = [a.balance for a in m.w.accounts.values()]
    assert sum(b.net for b in balances) == 0  # Σ debits_posted == Σ credits_posted
    assert sum(b.debits_pending for b in balances) == sum(b.credits_pending for b in balances)
    for account in m.w.accounts.values():
        spec, balance = account.spec, account.balance
        assert balance.debits_pending >= 0
        assert balance.credits_pending >= 0
        if spec.floor is not None:
            assert balance.available(spec.normal) >= spec.floor, spec.id


def apply_with_clock(
    m: LedgerMachine, commands: Sequence[Command], clock: Sequence[int]
) -> list[Outcome]:
    return [m.apply(command, now) for command, now in zip(commands, clock, strict=True)]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    commands=command_sequences(),
    clock=st.lists(st.integers(min_value=0, max_value=50), min_size=40, max_size=40),
)
def test_random_command_sequences_keep_the_ledger_consistent(
    commands: list[Command], clock: list[int]
) -> None:
    m = make_machine()
    clock = clock[: len(commands)]
    first = apply_with_clock(m, commands, clock)
    check_invariants(m)

    history: History = [(o.record, o.entry_records()) for o in first if isinstance(o, Applied)]
    assert [r.seq for r, _ in history] == list(range(1, len(history) + 1))
    assert all(a.ts_us < b.ts_us for (a, _), (b, _) in itertools.pairwise(history))
    report = audit(stored(m), history)
    assert report.ok, report.violations

    # Retrying every command that stood changes nothing: each is a Duplicate of its record.
    stood = {r.id: r for r, _ in history}
    standing_commands = [c for c, o in zip(commands, first, strict=True) if isinstance(o, Applied)]
    before, seq = totals(m), m.w.last_seq
    for command in standing_commands:
        again = m.apply(command, 0)
        assert isinstance(again, Duplicate)
        assert again.record == stood[command.id]
    assert totals(m) == before
    assert m.w.last_seq == seq

    # Re-applying the whole sequence: an id that is stored never applies again; only commands
    # refused the first time (not_found, floor_exceeded, …) may apply now that the state moved on.
    second = apply_with_clock(m, commands, clock)
    for command, outcome in zip(commands, second, strict=True):
        if command.id in stood:
            assert not isinstance(outcome, Applied)
            if isinstance(outcome, Rejected):
                assert outcome.error.code == "id_conflict"
            else:
                assert outcome.record == stood[command.id]
    check_invariants(m)
    more = [(o.record, o.entry_records()) for o in second if isinstance(o, Applied)]
    if not more:
        assert totals(m) == before  # nothing applied, nothing moved
    assert audit(stored(m), history + more).ok


def test_code_and_memo_are_bounded_text() -> None:
    m = make_machine()
    too_long_code = Transfer.between(
        "t1", debit=RECEIVABLE, credit=REVENUE, amount=5, code="c" * 101
    )
    rejected(m.apply(too_long_code, 1), "invalid_code")
    too_long_memo = Transfer.between(
        "t2", debit=RECEIVABLE, credit=REVENUE, amount=5, memo="m" * 2001
    )
    rejected(m.apply(too_long_memo, 1), "invalid_memo")
    applied(
        m.apply(
            Transfer.between("t3", debit=RECEIVABLE, credit=REVENUE, amount=5, code="c" * 100), 1
        )
    )
