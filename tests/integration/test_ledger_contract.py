"""The ledger repository contract: one suite, run against the in-memory fake, SQLite and
PostgreSQL through the same service. What one store does, all stores do."""

from __future__ import annotations

from datetime import timedelta

import pytest

from synor_economics.adapters.clock import FixedClock
from synor_economics.domain.errors import LedgerError
from synor_economics.domain.ledger import (
    AccountKind,
    AccountSpec,
    Applied,
    Duplicate,
    Entry,
    LedgerMachine,
    PostPending,
    Rejected,
    Reverse,
    Side,
    Transfer,
    TransferKind,
    VoidPending,
)
from synor_economics.domain.money import parse_synor
from synor_economics.services.ledger import LedgerService, open_accounts
from synor_economics.services.posting import AccountCache, applied_of, encode, load_working_set
from synor_economics.services.time import to_us

SYNOR = 10**18

ACCOUNTS = [
    AccountSpec.of("customer:acct_1:prepaid", AccountKind.CUSTOMER_PREPAID, owner="acct_1"),
    AccountSpec.of("customer:acct_1:receivable", AccountKind.CUSTOMER_RECEIVABLE, owner="acct_1"),
    AccountSpec.of("revenue:compute", AccountKind.REVENUE, owner="compute"),
    AccountSpec.of("revenue:storage", AccountKind.REVENUE, owner="storage"),
    AccountSpec.of("chain:clearing", AccountKind.CHAIN_CLEARING),
]


@pytest.fixture
def ledger(store: tuple[str, object], clock: FixedClock) -> LedgerService:
    _, uow = store
    service = LedgerService(uow, clock)  # type: ignore[arg-type]
    service.open_accounts(ACCOUNTS)
    return service


def deposit(ledger: LedgerService, transfer_id: str, amount: int) -> None:
    ledger.post(
        Transfer.between(
            transfer_id,
            debit="chain:clearing",
            credit="customer:acct_1:prepaid",
            amount=amount,
            code="prepaid.deposit",
        )
    )


def spend(transfer_id: str, amount: int, *, pending: bool = False) -> Transfer:
    """The customer's prepaid SYNOR paying for compute (reserved only, when pending)."""
    return Transfer.between(
        transfer_id,
        debit="customer:acct_1:prepaid",
        credit="revenue:compute",
        amount=amount,
        pending=pending,
    )


def balance(ledger: LedgerService, account_id: str) -> int:
    return ledger.account(account_id).posted


def test_open_accounts_is_idempotent_and_refuses_a_changed_spec(ledger: LedgerService) -> None:
    again = ledger.open_accounts(ACCOUNTS)
    assert [v.spec for v in again] == ACCOUNTS
    changed = AccountSpec.of("revenue:compute", AccountKind.TREASURY)
    with pytest.raises(LedgerError) as raised:
        ledger.open_accounts([changed])
    assert raised.value.code == "account_conflict"
    assert ledger.account("revenue:compute").spec.kind is AccountKind.REVENUE


def test_bad_account_ids_are_refused(ledger: LedgerService) -> None:
    with pytest.raises(LedgerError) as raised:
        ledger.open_accounts([AccountSpec.of("Has Spaces", AccountKind.REVENUE)])
    assert raised.value.code == "invalid_account_id"


def test_a_multi_leg_transfer_moves_every_balance(ledger: LedgerService) -> None:
    # An invoice of 3.5 SYNOR: 2.5 for compute and 1 for storage, owed by the customer.
    record = ledger.post(
        Transfer(
            "invoice:SYN-2026-000001",
            (
                Entry("customer:acct_1:receivable", Side.DEBIT, parse_synor("3.5")),
                Entry("revenue:compute", Side.CREDIT, parse_synor("2.5")),
                Entry("revenue:storage", Side.CREDIT, parse_synor("1")),
            ),
            code="invoice.finalize",
        )
    )
    assert record.seq == 1
    assert record.amount == parse_synor("3.5")
    assert balance(ledger, "customer:acct_1:receivable") == parse_synor("3.5")
    assert balance(ledger, "revenue:compute") == parse_synor("2.5")
    assert balance(ledger, "revenue:storage") == SYNOR
    stored = ledger.transfer("invoice:SYN-2026-000001")
    assert stored.entries == record.entries
    assert stored.code == "invoice.finalize"


def test_unbalanced_and_unknown_accounts_are_refused_and_change_nothing(
    ledger: LedgerService,
) -> None:
    unbalanced = Transfer(
        "t1",
        (
            Entry("customer:acct_1:receivable", Side.DEBIT, 5),
            Entry("revenue:compute", Side.CREDIT, 4),
        ),
    )
    unknown = Transfer.between("t2", debit="nobody", credit="revenue:compute", amount=5)
    outcomes = ledger.post_batch([unbalanced, unknown])
    assert [o.error.code for o in outcomes if isinstance(o, Rejected)] == [
        "unbalanced",
        "unknown_account",
    ]
    assert ledger.check().transfers == 0
    assert balance(ledger, "revenue:compute") == 0


def test_same_id_same_body_is_a_no_op(ledger: LedgerService) -> None:
    deposit(ledger, "dep-1", 10 * SYNOR)
    outcome = ledger.post_batch(
        [
            Transfer.between(
                "dep-1",
                debit="chain:clearing",
                credit="customer:acct_1:prepaid",
                amount=10 * SYNOR,
                code="prepaid.deposit",
            )
        ]
    )
    assert isinstance(outcome[0], Duplicate)
    assert outcome[0].record.seq == 1
    assert balance(ledger, "customer:acct_1:prepaid") == 10 * SYNOR
    assert ledger.check().transfers == 1


def test_same_id_different_body_is_refused_and_the_first_stands(ledger: LedgerService) -> None:
    deposit(ledger, "dep-1", 10 * SYNOR)
    with pytest.raises(LedgerError) as raised:
        deposit(ledger, "dep-1", 11 * SYNOR)
    assert raised.value.code == "id_conflict"
    assert balance(ledger, "customer:acct_1:prepaid") == 10 * SYNOR


def test_a_batch_keeps_the_good_and_reports_the_bad(ledger: LedgerService) -> None:
    outcomes = ledger.post_batch(
        [
            Transfer.between(
                "a", debit="chain:clearing", credit="customer:acct_1:prepaid", amount=5
            ),
            spend("b", 6),
            spend("c", 5),
            Transfer.between(
                "a", debit="chain:clearing", credit="customer:acct_1:prepaid", amount=5
            ),
        ]
    )
    kinds = [type(o).__name__ for o in outcomes]
    assert kinds == ["Applied", "Rejected", "Applied", "Duplicate"]
    rejected = outcomes[1]
    assert isinstance(rejected, Rejected)
    assert rejected.error.code == "floor_exceeded"
    assert balance(ledger, "customer:acct_1:prepaid") == 0
    assert balance(ledger, "revenue:compute") == 5
    assert [r.seq for r in (o.record for o in outcomes if isinstance(o, Applied))] == [1, 2]


def test_prepaid_never_goes_below_its_floor(ledger: LedgerService) -> None:
    deposit(ledger, "dep-1", 3 * SYNOR)
    too_much = spend("spend-1", 3 * SYNOR + 1)
    with pytest.raises(LedgerError) as raised:
        ledger.post(too_much)
    assert raised.value.code == "floor_exceeded"
    ledger.post(spend("spend-2", 3 * SYNOR))
    assert balance(ledger, "customer:acct_1:prepaid") == 0


def test_pending_reserves_then_posts_once(ledger: LedgerService) -> None:
    deposit(ledger, "dep-1", 10 * SYNOR)
    ledger.post(spend("hold-1", 7 * SYNOR, pending=True))
    prepaid = ledger.account("customer:acct_1:prepaid")
    assert (prepaid.posted, prepaid.available, prepaid.pending_out) == (
        10 * SYNOR,
        3 * SYNOR,
        7 * SYNOR,
    )
    # The reservation counts against the floor: a second hold of 4 does not fit in the 3 left.
    with pytest.raises(LedgerError) as raised:
        ledger.post(spend("hold-2", 4 * SYNOR, pending=True))
    assert raised.value.code == "floor_exceeded"
    posted = ledger.post(PostPending("hold-1:post", "hold-1"))
    assert posted.kind is TransferKind.POST_PENDING
    prepaid = ledger.account("customer:acct_1:prepaid")
    assert (prepaid.posted, prepaid.available, prepaid.pending_out) == (3 * SYNOR, 3 * SYNOR, 0)
    assert balance(ledger, "revenue:compute") == 7 * SYNOR
    for again in (PostPending("hold-1:post-again", "hold-1"), VoidPending("hold-1:void", "hold-1")):
        with pytest.raises(LedgerError) as raised:
            ledger.post(again)
        assert raised.value.code == "already_resolved"
    # Retrying the post under its own id is a harmless duplicate.
    assert ledger.post(PostPending("hold-1:post", "hold-1")).seq == posted.seq


def test_void_releases_a_reservation(ledger: LedgerService) -> None:
    deposit(ledger, "dep-1", 10 * SYNOR)
    ledger.post(spend("hold-1", 7 * SYNOR, pending=True))
    ledger.post(VoidPending("hold-1:void", "hold-1"))
    prepaid = ledger.account("customer:acct_1:prepaid")
    assert (prepaid.posted, prepaid.available, prepaid.pending_out) == (10 * SYNOR, 10 * SYNOR, 0)
    assert balance(ledger, "revenue:compute") == 0
    with pytest.raises(LedgerError) as raised:
        ledger.post(PostPending("hold-1:post", "hold-1"))
    assert raised.value.code == "already_resolved"


def test_reversal_undoes_a_transfer_once(ledger: LedgerService) -> None:
    deposit(ledger, "dep-1", 10 * SYNOR)
    ledger.post(spend("charge-1", 4 * SYNOR))
    reversal = ledger.post(Reverse("charge-1:reverse", "charge-1"))
    assert reversal.kind is TransferKind.REVERSAL
    assert reversal.ref == "charge-1"
    assert balance(ledger, "customer:acct_1:prepaid") == 10 * SYNOR
    assert balance(ledger, "revenue:compute") == 0
    with pytest.raises(LedgerError) as raised:
        ledger.post(Reverse("charge-1:reverse-2", "charge-1"))
    assert raised.value.code == "already_reversed"
    assert ledger.check().ok


def test_balances_as_of_a_time_and_statements(ledger: LedgerService, clock: FixedClock) -> None:
    start = clock.now()
    deposit(ledger, "dep-1", 10 * SYNOR)
    clock.advance(timedelta(days=1))
    ledger.post(spend("charge-1", 4 * SYNOR))
    clock.advance(timedelta(days=1))
    deposit(ledger, "dep-2", 1 * SYNOR)

    def prepaid_as_of(days: float) -> int:
        return ledger.account("customer:acct_1:prepaid", as_of=start + timedelta(days=days)).posted

    assert prepaid_as_of(-1) == 0
    assert prepaid_as_of(0) == 10 * SYNOR
    assert prepaid_as_of(0.5) == 10 * SYNOR
    assert prepaid_as_of(1) == 6 * SYNOR
    assert prepaid_as_of(5) == 7 * SYNOR
    everything = {v.spec.id: v.posted for v in ledger.balances(as_of=start + timedelta(days=1))}
    assert everything["revenue:compute"] == 4 * SYNOR
    assert everything["chain:clearing"] == 10 * SYNOR

    lines = ledger.statement("customer:acct_1:prepaid", limit=2)
    assert [line.transfer.id for line in lines] == ["dep-2", "charge-1"]
    assert [line.balance_after for line in lines] == [7 * SYNOR, 6 * SYNOR]
    last = lines[-1].entry
    older = ledger.statement("customer:acct_1:prepaid", limit=2, before=(last.seq, last.leg))
    assert [line.transfer.id for line in older] == ["dep-1"]
    assert to_us(clock.now()) >= lines[0].transfer.ts_us


def test_timestamps_increase_even_when_the_clock_stands_still(ledger: LedgerService) -> None:
    for i in range(5):
        deposit(ledger, f"dep-{i}", SYNOR)
    stamps = [ledger.transfer(f"dep-{i}").ts_us for i in range(5)]
    assert stamps == sorted(set(stamps))


def test_amounts_beyond_64_bits_are_exact(ledger: LedgerService) -> None:
    # 10^9 SYNOR = 10^27 base units: far past 2^63, which a SQLite INTEGER would turn into a float.
    huge = 10**27 + 1
    deposit(ledger, "whale", huge)
    assert balance(ledger, "customer:acct_1:prepaid") == huge
    assert ledger.transfer("whale").amount == huge
    assert ledger.check().ok


def test_check_is_green_after_a_mixed_history(ledger: LedgerService) -> None:
    deposit(ledger, "dep-1", 10 * SYNOR)
    ledger.post_batch(
        [
            spend("hold", 2, pending=True),
            PostPending("hold:post", "hold"),
            spend("hold2", 2, pending=True),
            VoidPending("hold2:void", "hold2"),
            Transfer.between(
                "c", debit="customer:acct_1:receivable", credit="revenue:storage", amount=9
            ),
            Reverse("c:rev", "c"),
        ]
    )
    report = ledger.check()
    assert report.ok, report.violations
    assert report.transfers == 7
    assert report.total_debits == report.total_credits


def test_two_writers_on_one_ledger_never_use_stale_balances(
    ledger: LedgerService, clock: FixedClock
) -> None:
    # Each service keeps the accounts its last batch touched; the other's writes must make it
    # reload them, or a floor would be checked against an old balance.
    other = LedgerService(ledger.uow, clock)
    deposit(ledger, "dep-1", 10 * SYNOR)
    other.post(spend("spend-1", 6 * SYNOR))
    with pytest.raises(LedgerError) as raised:
        ledger.post(spend("spend-2", 5 * SYNOR))  # only 4 left, whatever ledger cached
    assert raised.value.code == "floor_exceeded"
    ledger.post(spend("spend-3", 4 * SYNOR))
    with pytest.raises(LedgerError):
        other.post(spend("spend-4", 1))
    assert balance(ledger, "customer:acct_1:prepaid") == 0
    assert balance(other, "revenue:compute") == 10 * SYNOR
    assert ledger.check().ok


def test_a_cache_made_stale_by_another_writer_is_not_revived(
    ledger: LedgerService, clock: FixedClock
) -> None:
    # ledger caches the prepaid account; other spends from it; ledger then posts a batch that
    # does not touch it. The cache must not come back to life with the old prepaid balance.
    other = LedgerService(ledger.uow, clock)
    deposit(ledger, "dep-1", 10 * SYNOR)
    other.post(spend("spend-1", 8 * SYNOR))
    ledger.post(
        Transfer.between(
            "unrelated", debit="customer:acct_1:receivable", credit="revenue:storage", amount=1
        )
    )
    with pytest.raises(LedgerError) as raised:
        ledger.post(spend("spend-2", 5 * SYNOR))  # 2 left, not the 10 ledger once saw
    assert raised.value.code == "floor_exceeded"
    assert balance(ledger, "customer:acct_1:prepaid") == 2 * SYNOR
    assert ledger.check().ok


def test_floors_of_any_size_round_trip(ledger: LedgerService) -> None:
    specs = [
        AccountSpec.of("treasury:deep", AccountKind.TREASURY, floor=-(10**30)),
        AccountSpec.of("treasury:open", AccountKind.TREASURY),
    ]
    ledger.open_accounts(specs)
    again = ledger.open_accounts(specs)  # read back from storage: the same specs, exactly
    assert [view.spec for view in again] == specs
    assert again[0].spec.floor == -(10**30)


def test_accounts_opened_together_have_the_keys_storage_gave_them(ledger: LedgerService) -> None:
    """Opening many accounts at once hands back the storage keys entries will point at."""
    specs = [AccountSpec.of(f"customer:bulk_{n}:receivable", AccountKind.CUSTOMER_RECEIVABLE)
             for n in range(60)]  # fmt: skip
    uow = ledger.uow
    with uow.write() as tx:
        opened = open_accounts(tx.ledger, specs, 0)
    with uow.read() as tx:
        stored = tx.ledger.accounts([s.id for s in specs])
    assert {a.spec.id: a.num for a in opened} == {i: a.num for i, a in stored.items()}
    assert len({a.num for a in opened}) == 60


def test_a_batch_is_written_as_it_stood_when_encoded(ledger: LedgerService) -> None:
    """The pipeline encodes a batch in a read transaction and writes it later from another
    thread, while the next batch moves the same account objects on: what is written must be
    the balances at encoding time."""
    deposit(ledger, "dep", 100 * SYNOR)
    uow = ledger.uow
    with uow.read() as tx:
        working = load_working_set(tx.ledger, [spend("buy", 30 * SYNOR)], AccountCache())
        outcomes = LedgerMachine(working).apply_all([spend("buy", 30 * SYNOR)], 10**15)
        batch = encode(tx.ledger, applied_of(outcomes), working)
    assert batch.transfers == 1
    working.accounts["customer:acct_1:prepaid"].balance.credits_posted += 10**6 * SYNOR
    with uow.write() as tx:
        tx.ledger.write(batch)
    assert balance(ledger, "customer:acct_1:prepaid") == 70 * SYNOR
    assert ledger.transfer("buy").entries[0].amount == 30 * SYNOR
    assert ledger.check().ok


def test_a_batch_encoded_elsewhere_is_refused(ledger: LedgerService) -> None:
    with ledger.uow.write() as tx, pytest.raises(TypeError, match="not a batch"):
        tx.ledger.write(object())  # type: ignore[arg-type]
