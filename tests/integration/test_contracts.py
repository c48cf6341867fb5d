"""The Vyper contracts on an in-process EVM: normal behaviour and every revert path.

One chain and one set of deployments per module; each test runs inside a snapshot that is rolled
back afterwards, so tests are isolated and their order does not matter. Time-dependent tests move
the chain far into the future first (``Chain.future``) so that block timestamps are exact and do
not depend on the wall clock.
"""

from __future__ import annotations

import ast
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import BlockIdentifier, TxParams, TxReceipt, Wei

from tests.integration.contract_kit import (
    CONTRACTS_DIR,
    SYNOR,
    ZERO_ADDRESS,
    Chain,
    compile_source,
    expect_revert,
    load_artifact,
    logs,
    start_chain,
)

INITIAL_SUPPLY = 1_000_000 * SYNOR
MAX_PRICE = 10**36
MAX_TOTAL_SHARES = 10**30

# quorum, deviation (bps), heartbeat (s), max age (s)
ORACLE_PARAMS = (3, 100, 3600, 600)

# A token whose transfers "fail" by returning False instead of reverting, to reach the contracts'
# own checks of the return value.
FALSE_TOKEN = """# pragma version 0.4.3
balanceOf: public(HashMap[address, uint256])

@external
def set_balance(owner: address, amount: uint256):
    self.balanceOf[owner] = amount

@external
def transfer(to: address, amount: uint256) -> bool:
    return False

@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    return False

@external
def burn(amount: uint256):
    self.balanceOf[msg.sender] -= amount
"""


def address(n: int) -> ChecksumAddress:
    """A made-up address (no key): enough to receive tokens or be listed."""
    return Web3.to_checksum_address(f"0x{n:040x}")


@dataclass
class World:
    chain: Chain
    token: Contract
    oracle: Contract
    payments: Contract
    distributor: Contract
    false_token: Contract
    owner: ChecksumAddress  # deployer of everything, token minter, oracle owner
    reporters: list[ChecksumAddress]
    alice: ChecksumAddress
    bob: ChecksumAddress
    treasury: ChecksumAddress
    guardian: ChecksumAddress

    def send(self, fn: ContractFunction, sender: str) -> TxReceipt:
        return self.chain.send(fn, sender)


@pytest.fixture(scope="module")
def world() -> World:
    chain = start_chain()
    accounts = chain.accounts
    owner, reporters, alice, bob, treasury, guardian = (
        accounts[0],
        accounts[1:6],
        accounts[6],
        accounts[7],
        accounts[8],
        accounts[9],
    )
    token = chain.deploy(load_artifact("SynorToken"), "Synor", "SYNOR", INITIAL_SUPPLY)
    oracle = chain.deploy(load_artifact("PriceOracle"), guardian, *ORACLE_PARAMS)
    for reporter in reporters:
        chain.send(oracle.functions.add_reporter(reporter), owner)
    payments = chain.deploy(load_artifact("InvoicePayments"), token.address, treasury)
    distributor = chain.deploy(load_artifact("FeeDistributor"), token.address)
    false_token = chain.deploy(compile_source("FalseToken", FALSE_TOKEN))
    chain.send(token.functions.transfer(alice, 1_000 * SYNOR), owner)
    return World(
        chain=chain,
        token=token,
        oracle=oracle,
        payments=payments,
        distributor=distributor,
        false_token=false_token,
        owner=owner,
        reporters=reporters,
        alice=alice,
        bob=bob,
        treasury=treasury,
        guardian=guardian,
    )


@pytest.fixture(autouse=True)
def isolated(world: World) -> Iterator[None]:
    """Roll the chain back after each test (the deployments above come before the snapshot)."""
    snapshot = world.chain.tester.take_snapshot()
    yield
    world.chain.tester.revert_to_snapshot(snapshot)


# --- SynorToken ---


def test_token_metadata_and_initial_supply(world: World) -> None:
    t = world.token.functions
    assert t.name().call() == "Synor"
    assert t.symbol().call() == "SYNOR"
    assert t.decimals().call() == 18
    assert t.totalSupply().call() == INITIAL_SUPPLY
    assert t.balanceOf(world.owner).call() == INITIAL_SUPPLY - 1_000 * SYNOR
    assert t.balanceOf(world.alice).call() == 1_000 * SYNOR
    assert t.minter().call() == world.owner


def test_token_transfer(world: World) -> None:
    t = world.token.functions
    assert t.transfer(world.bob, 5).call({"from": world.alice}) is True
    receipt = world.send(t.transfer(world.bob, 5 * SYNOR), world.alice)
    assert t.balanceOf(world.bob).call() == 5 * SYNOR
    assert t.balanceOf(world.alice).call() == 995 * SYNOR
    assert logs(world.token, "Transfer", receipt) == [
        {"sender": world.alice, "receiver": world.bob, "value": 5 * SYNOR}
    ]


def test_token_approve_and_transfer_from(world: World) -> None:
    t = world.token.functions
    receipt = world.send(t.approve(world.bob, 10 * SYNOR), world.alice)
    assert logs(world.token, "Approval", receipt) == [
        {"owner": world.alice, "spender": world.bob, "value": 10 * SYNOR}
    ]
    world.send(t.transferFrom(world.alice, world.treasury, 4 * SYNOR), world.bob)
    assert t.allowance(world.alice, world.bob).call() == 6 * SYNOR
    assert t.balanceOf(world.treasury).call() == 4 * SYNOR
    assert t.balanceOf(world.alice).call() == 996 * SYNOR


def test_token_unlimited_allowance_is_not_spent(world: World) -> None:
    t = world.token.functions
    unlimited = 2**256 - 1
    world.send(t.approve(world.bob, unlimited), world.alice)
    world.send(t.transferFrom(world.alice, world.bob, SYNOR), world.bob)
    assert t.allowance(world.alice, world.bob).call() == unlimited


def test_token_mint_and_burn_move_the_supply(world: World) -> None:
    t = world.token.functions
    receipt = world.send(t.mint(world.bob, 7 * SYNOR), world.owner)
    assert logs(world.token, "Transfer", receipt) == [
        {"sender": ZERO_ADDRESS, "receiver": world.bob, "value": 7 * SYNOR}
    ]
    assert t.totalSupply().call() == INITIAL_SUPPLY + 7 * SYNOR

    receipt = world.send(t.burn(2 * SYNOR), world.bob)
    assert logs(world.token, "Transfer", receipt) == [
        {"sender": world.bob, "receiver": ZERO_ADDRESS, "value": 2 * SYNOR}
    ]
    assert t.totalSupply().call() == INITIAL_SUPPLY + 5 * SYNOR
    assert t.balanceOf(world.bob).call() == 5 * SYNOR

    world.send(t.approve(world.alice, 3 * SYNOR), world.bob)
    world.send(t.burnFrom(world.bob, SYNOR), world.alice)
    assert t.allowance(world.bob, world.alice).call() == 2 * SYNOR
    assert t.balanceOf(world.bob).call() == 4 * SYNOR
    assert t.totalSupply().call() == INITIAL_SUPPLY + 4 * SYNOR


def test_token_reverts(world: World) -> None:
    t = world.token.functions
    alice: TxParams = {"from": world.alice}
    expect_revert(t.transfer(ZERO_ADDRESS, 1), alice, "transfer to zero address")
    expect_revert(t.transfer(world.bob, 1_001 * SYNOR), alice, "insufficient balance")
    expect_revert(t.burn(1_001 * SYNOR), alice, "insufficient balance")
    expect_revert(t.transferFrom(world.owner, world.alice, 1), alice, "insufficient allowance")
    expect_revert(t.burnFrom(world.owner, 1), alice, "insufficient allowance")
    expect_revert(t.mint(world.alice, 1), alice, "not minter")
    expect_revert(t.mint(ZERO_ADDRESS, 1), {"from": world.owner}, "mint to zero address")
    # nothing moved
    assert t.balanceOf(world.alice).call() == 1_000 * SYNOR
    assert t.totalSupply().call() == INITIAL_SUPPLY


# --- PriceOracle ---


def submit(world: World, reporter: int, price: int, at: int | None = None) -> TxReceipt:
    """Reporter number ``reporter`` submits ``price``, in a block at ``at`` if given."""
    if at is not None:
        world.chain.set_next_timestamp(at)
    return world.send(world.oracle.functions.submit(price), world.reporters[reporter])


def latest(world: World, block: BlockIdentifier = "latest") -> tuple[int, int, int, bool]:
    price, updated_at, round_id, stale = world.oracle.functions.latest().call(
        block_identifier=block
    )
    return price, updated_at, round_id, stale


def set_params(world: World, quorum: int, deviation_bps: int, heartbeat: int, max_age: int) -> None:
    world.send(
        world.oracle.functions.set_params(quorum, deviation_bps, heartbeat, max_age), world.owner
    )


def test_oracle_initial_state(world: World) -> None:
    o = world.oracle.functions
    assert o.owner().call() == world.owner
    assert o.guardian().call() == world.guardian
    assert (o.quorum().call(), o.deviation_bps().call(), o.heartbeat().call()) == (3, 100, 3600)
    assert o.max_age().call() == 600
    assert o.reporters().call() == world.reporters
    assert o.paused().call() is False
    price, updated_at, round_id, stale = latest(world)
    assert (price, updated_at, round_id, stale) == (0, 0, 0, True)
    cumulative, timestamp = o.cumulative_now().call(block_identifier="pending")
    assert cumulative == 0
    assert timestamp == world.chain.w3.eth.get_block("pending")["timestamp"]


@pytest.mark.parametrize(
    ("prices", "median"),
    [
        pytest.param([3 * SYNOR, 1 * SYNOR, 2 * SYNOR], 2 * SYNOR, id="odd-3"),
        pytest.param([9, 7, 9, 1, 3], 7, id="odd-5"),
        pytest.param([4], 4, id="one"),
        pytest.param([5, 8, 1, 100], 6, id="even-floor"),  # (5 + 8) / 2 = 6.5 → 6
        pytest.param([7, 9], 8, id="even-exact"),
        pytest.param([MAX_PRICE, MAX_PRICE - 1], MAX_PRICE - 1, id="even-no-overflow"),
    ],
)
def test_oracle_median(world: World, prices: list[int], median: int) -> None:
    """The quorum equals the number of prices, so only the last submission publishes."""
    set_params(world, len(prices), 100, 3600, 600)
    for i, price in enumerate(prices[:-1]):
        receipt = submit(world, i, price)
        assert logs(world.oracle, "PriceUpdated", receipt) == []
    receipt = submit(world, len(prices) - 1, prices[-1])
    block = world.chain.w3.eth.get_block(receipt["blockNumber"])
    assert logs(world.oracle, "Submitted", receipt) == [
        {
            "reporter": world.reporters[len(prices) - 1],
            "price": prices[-1],
            "timestamp": block["timestamp"],
        }
    ]
    assert logs(world.oracle, "PriceUpdated", receipt) == [
        {"round_id": 1, "price": median, "cumulative": 0, "timestamp": block["timestamp"]}
    ]
    assert latest(world) == (median, block["timestamp"], 1, False)


def test_oracle_median_of_sixteen_reporters(world: World) -> None:
    """The sort at its bound: 16 reporters in descending order, quorum 16."""
    chain, o = world.chain, world.oracle.functions
    extra = []
    for n in range(11):
        key = f"0x{0x5EED << 200 | n + 1:064x}"  # any valid secp256k1 key
        reporter = Web3.to_checksum_address(chain.tester.add_account(key))
        chain.w3.eth.send_transaction(
            {"from": world.owner, "to": reporter, "value": Wei(10**18), "gas": 21_000}
        )
        world.send(o.add_reporter(reporter), world.owner)
        extra.append(reporter)
    reporters = world.reporters + extra
    assert o.reporters().call() == reporters
    set_params(world, 16, 100, 3600, 600)
    for i, reporter in enumerate(reporters):
        world.send(o.submit((16 - i) * SYNOR), reporter)
    price, _, round_id, stale = latest(world)
    assert (price, round_id, stale) == (17 * SYNOR // 2, 1, False)  # prices 1..16: (8 + 9) / 2


def test_oracle_quorum_not_met_publishes_nothing(world: World) -> None:
    submit(world, 0, SYNOR)
    receipt = submit(world, 1, SYNOR)
    assert len(logs(world.oracle, "Submitted", receipt)) == 1
    assert logs(world.oracle, "PriceUpdated", receipt) == []
    assert latest(world) == (0, 0, 0, True)
    assert world.oracle.functions.submissions(world.reporters[1]).call()[0] == SYNOR


def test_oracle_excludes_stale_submissions(world: World) -> None:
    """max_age 600: a submission exactly 600 s old counts, one 601 s old does not."""
    t = world.chain.future()
    submit(world, 0, 100 * SYNOR, at=t)  # will be stale: it would move the median to 2.5
    submit(world, 1, 1 * SYNOR, at=t + 100)
    receipt = submit(world, 2, 2 * SYNOR, at=t + 601)  # reporter 0 is 601 s old: 2 fresh
    assert logs(world.oracle, "PriceUpdated", receipt) == []
    receipt = submit(world, 3, 3 * SYNOR, at=t + 602)
    assert logs(world.oracle, "PriceUpdated", receipt)[0]["price"] == 2 * SYNOR


def test_oracle_submission_exactly_max_age_old_is_fresh(world: World) -> None:
    t = world.chain.future()
    submit(world, 0, SYNOR, at=t)
    submit(world, 1, SYNOR, at=t + 1)
    submit(world, 2, SYNOR, at=t + 600)
    assert latest(world) == (SYNOR, t + 600, 1, False)


def test_oracle_deviation_threshold(world: World) -> None:
    """deviation_bps 100: a median move below 1% is not published; exactly 1% (either way) is."""
    t = world.chain.future()
    for i in range(3):
        submit(world, i, SYNOR, at=t + i)
    assert latest(world)[2] == 1

    cases = [
        (0, 1_009_900_000_000_000_000, 1),  # median still 1.00
        (1, 1_009_900_000_000_000_000, 1),  # median 1.0099: 0.99%
        (0, 1_010_000_000_000_000_000, 1),  # median 1.0099
        (1, 1_010_000_000_000_000_000, 2),  # median 1.01: exactly 1% → round 2
        (0, 999_900_000_000_000_000, 2),  # median 1.00 (reporter 2): 0.990099%
        (1, 999_900_000_000_000_001, 2),  # median 0.9999…01: 1 base unit short of 1%
        (1, 999_900_000_000_000_000, 3),  # median 0.9999: exactly 1% of 1.01 down → round 3
    ]
    for reporter, price, round_id in cases:
        submit(world, reporter, price)
        assert latest(world)[2] == round_id, (reporter, price)
    assert latest(world)[0] == 999_900_000_000_000_000


def test_oracle_heartbeat_republishes_an_unchanged_price(world: World) -> None:
    set_params(world, 3, 100, 3600, 7200)
    t = world.chain.future()
    for i in range(3):
        submit(world, i, SYNOR, at=t - 2 + i)
    assert latest(world) == (SYNOR, t, 1, False)
    receipt = submit(world, 0, SYNOR, at=t + 3599)
    assert logs(world.oracle, "PriceUpdated", receipt) == []
    receipt = submit(world, 1, SYNOR, at=t + 3600)
    assert logs(world.oracle, "PriceUpdated", receipt) == [
        {"round_id": 2, "price": SYNOR, "cumulative": SYNOR * 3600, "timestamp": t + 3600}
    ]


def test_oracle_accumulator_and_twap(world: World) -> None:
    """quorum 1, deviation 0: every submission publishes; the accumulator integrates the price
    that held over each interval, and cumulative_now extends it to the current block."""
    set_params(world, 1, 0, 3600, 600)
    o = world.oracle.functions
    t = world.chain.future()
    p1, p2, p3 = SYNOR, 2 * SYNOR, 3 * SYNOR // 2
    updates = []
    for at, price in [(t, p1), (t + 10, p2), (t + 25, p3)]:
        receipt = submit(world, 0, price, at=at)
        updates += logs(world.oracle, "PriceUpdated", receipt)
    assert updates == [
        {"round_id": 1, "price": p1, "cumulative": 0, "timestamp": t},
        {"round_id": 2, "price": p2, "cumulative": 10 * p1, "timestamp": t + 10},
        {"round_id": 3, "price": p3, "cumulative": 10 * p1 + 15 * p2, "timestamp": t + 25},
    ]
    assert o.cumulative().call() == 10 * p1 + 15 * p2
    assert o.round_id().call() == 3
    assert o.updated_at().call() == t + 25

    world.chain.set_next_timestamp(t + 40)
    c_now, ts = o.cumulative_now().call(block_identifier="pending")
    assert (c_now, ts) == (10 * p1 + 15 * p2 + 15 * p3, t + 40)
    # TWAP over [t + 10, t + 40] from two accumulator readings
    c_10 = 10 * p1
    assert (c_now - c_10) // 30 == (15 * p2 + 15 * p3) // 30 == 7 * SYNOR // 4


def test_oracle_latest_goes_stale_after_max_age(world: World) -> None:
    t = world.chain.future()
    for i in range(3):
        submit(world, i, SYNOR, at=t - 2 + i)
    world.chain.set_next_timestamp(t + 600)
    assert latest(world, "pending") == (SYNOR, t, 1, False)
    world.chain.set_next_timestamp(t + 601)
    assert latest(world, "pending") == (SYNOR, t, 1, True)


def test_oracle_pause_blocks_submissions_and_marks_stale(world: World) -> None:
    o = world.oracle.functions
    for i in range(3):
        submit(world, i, SYNOR)
    assert latest(world)[3] is False
    world.send(o.pause(), world.guardian)
    assert o.paused().call() is True
    assert latest(world)[3] is True
    expect_revert(o.submit(SYNOR), {"from": world.reporters[0]}, "paused")
    expect_revert(o.unpause(), {"from": world.owner}, "not guardian")
    world.send(o.unpause(), world.guardian)
    assert latest(world)[3] is False
    submit(world, 0, SYNOR)


def test_oracle_guardian_can_be_replaced(world: World) -> None:
    o = world.oracle.functions
    expect_revert(o.pause(), {"from": world.owner}, "not guardian")
    expect_revert(o.set_guardian(world.bob), {"from": world.guardian}, "not owner")
    expect_revert(o.set_guardian(ZERO_ADDRESS), {"from": world.owner}, "zero guardian")
    world.send(o.set_guardian(world.bob), world.owner)
    assert o.guardian().call() == world.bob
    expect_revert(o.pause(), {"from": world.guardian}, "not guardian")
    world.send(o.pause(), world.bob)
    assert o.paused().call() is True


def test_oracle_submit_reverts(world: World) -> None:
    o = world.oracle.functions
    reporter: TxParams = {"from": world.reporters[0]}
    expect_revert(o.submit(SYNOR), {"from": world.alice}, "not reporter")
    expect_revert(o.submit(0), reporter, "zero price")
    expect_revert(o.submit(MAX_PRICE + 1), reporter, "price too large")
    submit(world, 0, MAX_PRICE)


def test_oracle_reporter_administration(world: World) -> None:
    o = world.oracle.functions
    r = world.reporters
    owner: TxParams = {"from": world.owner}
    expect_revert(o.add_reporter(world.alice), {"from": world.alice}, "not owner")
    expect_revert(o.remove_reporter(r[0]), {"from": world.alice}, "not owner")
    expect_revert(o.add_reporter(ZERO_ADDRESS), owner, "zero reporter")
    expect_revert(o.add_reporter(r[2]), owner, "reporter exists")
    expect_revert(o.remove_reporter(world.alice), owner, "unknown reporter")

    world.send(o.remove_reporter(r[1]), world.owner)  # the last one takes its place
    assert o.reporters().call() == [r[0], r[4], r[2], r[3]]
    assert o.is_reporter(r[1]).call() is False
    expect_revert(o.submit(SYNOR), {"from": r[1]}, "not reporter")
    expect_revert(o.remove_reporter(r[1]), owner, "unknown reporter")
    world.send(o.remove_reporter(r[3]), world.owner)  # the last one itself
    assert o.reporters().call() == [r[0], r[4], r[2]]

    for n in range(13):
        world.send(o.add_reporter(address(0x1000 + n)), world.owner)
    assert len(o.reporters().call()) == 16
    expect_revert(o.add_reporter(address(0x2000)), owner, "too many reporters")


def test_oracle_removed_reporter_loses_its_submission(world: World) -> None:
    """Removing then re-adding a reporter must not bring back its old price into the median."""
    o = world.oracle.functions
    submit(world, 1, SYNOR)
    world.send(o.remove_reporter(world.reporters[1]), world.owner)
    world.send(o.add_reporter(world.reporters[1]), world.owner)
    assert tuple(o.submissions(world.reporters[1]).call()) == (0, 0)
    submit(world, 0, SYNOR)
    submit(world, 2, SYNOR)
    assert latest(world)[2] == 0  # two fresh submissions, quorum 3


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ((0, 100, 3600, 600), "quorum below one"),
        ((17, 100, 3600, 600), "quorum above max reporters"),
        ((3, 10_001, 3600, 600), "deviation above 10000 bps"),
        ((3, 100, 0, 600), "zero heartbeat"),
        ((3, 100, 3600, 0), "zero max age"),
    ],
)
def test_oracle_parameter_validation(
    world: World, params: tuple[int, int, int, int], reason: str
) -> None:
    o = world.oracle.functions
    expect_revert(o.set_params(*params), {"from": world.owner}, reason)
    factory = world.chain.w3.eth.contract(**abi_and_bytecode("PriceOracle"))
    expect_revert(factory.constructor(world.guardian, *params), {"from": world.owner}, reason)


def test_oracle_set_params(world: World) -> None:
    o = world.oracle.functions
    expect_revert(o.set_params(1, 0, 1, 1), {"from": world.alice}, "not owner")
    receipt = world.send(o.set_params(16, 10_000, 1, 1), world.owner)
    assert logs(world.oracle, "ParamsSet", receipt) == [
        {"quorum": 16, "deviation_bps": 10_000, "heartbeat": 1, "max_age": 1}
    ]
    assert (o.quorum().call(), o.deviation_bps().call()) == (16, 10_000)
    assert (o.heartbeat().call(), o.max_age().call()) == (1, 1)


def test_oracle_constructor_rejects_zero_guardian(world: World) -> None:
    factory = world.chain.w3.eth.contract(**abi_and_bytecode("PriceOracle"))
    expect_revert(
        factory.constructor(ZERO_ADDRESS, *ORACLE_PARAMS), {"from": world.owner}, "zero guardian"
    )


def abi_and_bytecode(name: str) -> dict[str, Any]:
    artifact = load_artifact(name)
    return {"abi": artifact["abi"], "bytecode": artifact["bytecode"]}


# --- InvoicePayments ---


def test_payments_pay_moves_tokens_and_logs_the_reference(world: World) -> None:
    t, p = world.token.functions, world.payments.functions
    assert p.token().call() == world.token.address
    assert p.treasury().call() == world.treasury
    world.send(t.approve(world.payments.address, 100 * SYNOR), world.alice)
    reference = "SYN-2026-000001"
    receipt = world.send(p.pay(reference, 60 * SYNOR), world.alice)
    assert logs(world.payments, "InvoicePaid", receipt) == [
        {"payer": world.alice, "reference": reference, "amount": 60 * SYNOR}
    ]
    assert logs(world.token, "Transfer", receipt) == [
        {"sender": world.alice, "receiver": world.treasury, "value": 60 * SYNOR}
    ]
    assert t.balanceOf(world.treasury).call() == 60 * SYNOR
    assert t.balanceOf(world.alice).call() == 940 * SYNOR
    assert t.allowance(world.alice, world.payments.address).call() == 40 * SYNOR

    longest = "R" * 64
    world.send(p.pay(longest, 1), world.alice)


def test_payments_reverts(world: World) -> None:
    t, p = world.token.functions, world.payments.functions
    alice: TxParams = {"from": world.alice}
    expect_revert(p.pay("SYN-1", 0), alice, "zero amount")
    expect_revert(p.pay("", 1), alice, "empty reference")
    expect_revert(p.pay("SYN-1", 1), alice, "insufficient allowance")  # from the token
    world.send(t.approve(world.payments.address, 2**256 - 1), world.alice)
    expect_revert(p.pay("SYN-1", 1_001 * SYNOR), alice, "insufficient balance")  # from the token
    expect_revert(p.pay("R" * 65, 1), alice, None)  # longer than String[64]: bad calldata

    bad = world.chain.deploy(
        load_artifact("InvoicePayments"), world.false_token.address, world.treasury
    )
    expect_revert(bad.functions.pay("SYN-1", 1), alice, "transfer failed")


def test_payments_constructor_rejects_zero_addresses(world: World) -> None:
    factory = world.chain.w3.eth.contract(**abi_and_bytecode("InvoicePayments"))
    owner: TxParams = {"from": world.owner}
    expect_revert(factory.constructor(ZERO_ADDRESS, world.treasury), owner, "zero token")
    expect_revert(factory.constructor(world.token.address, ZERO_ADDRESS), owner, "zero treasury")


# --- FeeDistributor ---


def largest_remainder(amount: int, weights: list[int]) -> list[int]:
    """SPEC §1, independently: floors, then one unit each to the largest remainders; ties to the
    lower index (the burn part is index 0, then parties in ascending address order)."""
    total = sum(weights)
    parts = [amount * w // total for w in weights]
    remainders = [amount * w % total for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[: amount - sum(parts)]:
        parts[i] += 1
    return parts


def configure(world: World, parties: list[ChecksumAddress], shares: list[int], burn: int) -> None:
    world.send(world.distributor.functions.configure(parties, shares, burn), world.owner)


def test_distribute_splits_the_whole_balance(world: World) -> None:
    """SPEC §9's L2 split (70 operators, 20 treasury, 10 burned) over an awkward amount."""
    t, d = world.token.functions, world.distributor.functions
    parties = [address(0x10), address(0x20), address(0x30)]
    configure(world, parties, [4_000, 3_000, 2_000], 1_000)
    assert d.parties().call() == parties
    assert d.shares().call() == [4_000, 3_000, 2_000]
    assert d.burn_share().call() == 1_000

    total = 1_000 * SYNOR + 7
    world.send(t.transfer(world.distributor.address, total), world.owner)
    burn, *payouts = largest_remainder(total, [1_000, 4_000, 3_000, 2_000])
    assert burn + sum(payouts) == total
    burned, parts = d.preview(total).call()
    assert (burned, list(parts)) == (burn, payouts)

    supply = t.totalSupply().call()
    assert d.distribute(1).call({"from": world.bob}) == total
    receipt = world.send(d.distribute(1), world.bob)
    assert logs(world.distributor, "Payout", receipt) == [
        {"epoch": 1, "party": party, "amount": amount}
        for party, amount in zip(parties, payouts, strict=True)
    ]
    assert logs(world.distributor, "Distributed", receipt) == [
        {"epoch": 1, "total": total, "burned": burn}
    ]
    assert [t.balanceOf(party).call() for party in parties] == payouts
    assert t.balanceOf(world.distributor.address).call() == 0
    assert t.totalSupply().call() == supply - burn
    assert d.distributed(1).call() is True

    # an epoch is paid once, whatever arrives later; the next epoch takes the new balance
    world.send(t.transfer(world.distributor.address, 10), world.owner)
    expect_revert(d.distribute(1), {"from": world.bob}, "epoch already distributed")
    world.send(d.distribute(2), world.bob)
    expect_revert(d.distribute(3), {"from": world.bob}, "nothing to distribute")


def test_distribute_ties_go_to_the_burn_then_ascending_parties(world: World) -> None:
    """Four equal weights over 6 units: 1.5 each, two leftover units → the burn and party 0."""
    t, d = world.token.functions, world.distributor.functions
    parties = [address(0x10), address(0x20), address(0x30)]
    configure(world, parties, [1, 1, 1], 1)
    world.send(t.transfer(world.distributor.address, 6), world.owner)
    supply = t.totalSupply().call()
    world.send(d.distribute(7), world.alice)
    assert [t.balanceOf(party).call() for party in parties] == [2, 1, 1]
    assert t.totalSupply().call() == supply - 2


@pytest.mark.parametrize(
    ("shares", "burn", "amount", "expected"),
    [
        pytest.param([1, 1, 1], 1, 6, [2, 2, 1, 1], id="tie-burn-first"),
        pytest.param([1, 1, 1], 0, 2, [0, 1, 1, 0], id="tie-ascending-parties"),
        pytest.param([1, 2], 0, 1, [0, 0, 1], id="largest-remainder-wins"),
        pytest.param([2, 1], 1, 1, [0, 1, 0], id="burn-only-on-its-remainder"),
        pytest.param([0, 1], 1, 3, [2, 0, 1], id="zero-share-party"),
        pytest.param([1], 0, 5, [0, 5], id="single-party"),
        pytest.param([1, 1], 2**20, 1, [1, 0, 0], id="burn-dominant"),
    ],
)
def test_preview_remainder_rule(
    world: World, shares: list[int], burn: int, amount: int, expected: list[int]
) -> None:
    parties = [address(0x10 * (i + 1)) for i in range(len(shares))]
    configure(world, parties, shares, burn)
    assert largest_remainder(amount, [burn, *shares]) == expected
    burned, payouts = world.distributor.functions.preview(amount).call()
    assert [burned, *payouts] == expected


def test_preview_matches_the_reference_on_random_splits(world: World) -> None:
    rng = random.Random(20261120)
    d = world.distributor.functions
    for _ in range(8):
        n = rng.randint(1, 16)
        parties = sorted(
            {address(rng.randrange(1, 2**160)) for _ in range(n)}, key=lambda a: int(a, 16)
        )
        shares = [
            rng.choice([0, 1, rng.randrange(1, 10**6), rng.randrange(1, 10**24)]) for _ in parties
        ]
        burn = rng.choice([0, rng.randrange(1, 10**6)])
        if sum(shares) + burn == 0:
            burn = 1
        configure(world, parties, shares, burn)
        for amount in [1, 17, rng.randrange(1, 10**30), rng.randrange(1, 10**40)]:
            burned, payouts = d.preview(amount).call()
            parts = [burned, *payouts]
            assert sum(parts) == amount
            assert parts == largest_remainder(amount, [burn, *shares]), (shares, burn, amount)


@pytest.mark.parametrize(
    ("parties", "shares", "burn", "reason"),
    [
        ([0x10, 0x20], [1], 0, "length mismatch"),
        ([], [], 1, "no parties"),
        ([0, 0x10], [1, 1], 0, "zero party"),
        ([0x20, 0x10], [1, 1], 0, "parties not ascending"),
        ([0x10, 0x10], [1, 1], 0, "parties not ascending"),
        ([0x10, 0x20], [0, 0], 0, "zero total share"),
        ([0x10], [MAX_TOTAL_SHARES + 1], 0, "shares too large"),
        ([0x10, 0x20], [MAX_TOTAL_SHARES, 1], 0, "shares too large"),
        ([0x10], [MAX_TOTAL_SHARES], 1, "shares too large"),
        ([0x10], [1], 2**256 - 1, "shares too large"),
    ],
)
def test_configure_validation(
    world: World, parties: list[int], shares: list[int], burn: int, reason: str
) -> None:
    fn = world.distributor.functions.configure([address(p) for p in parties], shares, burn)
    expect_revert(fn, {"from": world.owner}, reason)


def test_configure_boundaries_and_owner(world: World) -> None:
    d = world.distributor.functions
    expect_revert(d.configure([address(1)], [1], 0), {"from": world.alice}, "not owner")
    configure(world, [address(1)], [MAX_TOTAL_SHARES - 1], 1)  # the total at the bound is fine
    configure(world, [address(1)], [0], 1)  # everything burned
    sixteen = [address(0x10 + i) for i in range(16)]
    configure(world, sixteen, [1] * 16, 0)
    assert d.parties().call() == sixteen
    assert d.owner().call() == world.owner
    assert d.token().call() == world.token.address


def test_distribute_needs_a_configuration(world: World) -> None:
    d = world.distributor.functions
    world.send(world.token.functions.transfer(world.distributor.address, 5), world.owner)
    expect_revert(d.distribute(1), {"from": world.bob}, "not configured")
    expect_revert(d.preview(5), {"from": world.bob}, "not configured", send=False)


def test_distribute_checks_transfer_results(world: World) -> None:
    d = world.chain.deploy(load_artifact("FeeDistributor"), world.false_token.address)
    world.send(d.functions.configure([address(0x10)], [1], 1), world.owner)
    world.send(world.false_token.functions.set_balance(d.address, 10), world.owner)
    expect_revert(d.functions.distribute(1), {"from": world.bob}, "transfer failed")


def test_distributor_constructor_rejects_zero_token(world: World) -> None:
    factory = world.chain.w3.eth.contract(**abi_and_bytecode("FeeDistributor"))
    expect_revert(factory.constructor(ZERO_ADDRESS), {"from": world.owner}, "zero token")


# --- every revert reason in the sources is exercised here ---


def test_every_revert_reason_is_tested() -> None:
    """Each `assert ..., "reason"` of contracts/*.vy appears as a literal in this module, where
    it is passed to expect_revert (directly or through a parametrize table)."""
    reasons: set[str] = set()
    for source in sorted(CONTRACTS_DIR.glob("*.vy")):
        text = source.read_text()
        found = re.findall(r'^\s*assert .*, "([^"]+)"\s*$', text, re.M)
        assert len(found) == len(re.findall(r"^\s*assert ", text, re.M)), (
            f"{source.name}: an assert without a reason"
        )
        reasons |= set(found)
    assert reasons
    for reason in reasons:
        assert reason == reason.lower(), f"not lowercase: {reason!r}"
        assert len(reason) <= 32, f"not a short phrase: {reason!r}"
    literals = {
        node.value
        for node in ast.walk(ast.parse(Path(__file__).read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    assert sorted(reasons - literals) == []
