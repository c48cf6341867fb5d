"""Helpers for the contract tests: an in-process chain (py-evm through eth-tester), deployment from
the committed artifacts, transactions with explicit gas, revert assertions and time control.

Why explicit gas everywhere: with a ``gas`` field web3 sends the transaction as is, so a revert is a
mined receipt with status 0 (as on a real chain) instead of an exception raised while estimating.
The revert *reason* comes from ``.call()``, which raises.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from eth_tester import EthereumTester, PyEVMBackend  # type: ignore[import-untyped, unused-ignore]
from eth_tester.exceptions import TransactionFailed  # type: ignore[import-untyped, unused-ignore]
from eth_typing import ChecksumAddress
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import TxParams, TxReceipt

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = ROOT / "contracts"
ARTIFACTS_DIR = ROOT / "src" / "synor_economics" / "adapters" / "chain" / "artifacts"
PRAGMA = "# pragma version 0.4.3"

GAS = 3_000_000  # far above any call here; the block limit is about 30M
ZERO_ADDRESS = cast(ChecksumAddress, "0x" + "00" * 20)
SYNOR = 10**18


def load_artifact(name: str) -> dict[str, Any]:
    """The committed artifact of ``contracts/<name>.vy``."""
    data: dict[str, Any] = json.loads((ARTIFACTS_DIR / f"{name}.json").read_text("utf-8"))
    return data


def compile_source(name: str, source: str) -> dict[str, Any]:
    """An artifact built on the spot, for test-only contracts (mocks) that are not committed."""
    import vyper  # type: ignore[import-untyped, unused-ignore]

    out = vyper.compile_code(source, output_formats=["abi", "bytecode"])
    return {
        "contract": name,
        "compiler": f"vyper {vyper.__version__}",
        "source_sha256": hashlib.sha256(source.encode()).hexdigest(),
        "abi": out["abi"],
        "bytecode": out["bytecode"],
    }


@dataclass
class Chain:
    """One in-process chain with ten funded, unlocked accounts."""

    tester: EthereumTester
    w3: Web3

    @property
    def accounts(self) -> list[ChecksumAddress]:
        return list(self.w3.eth.accounts)

    def deploy(self, artifact: dict[str, Any], *args: Any, sender: str | None = None) -> Contract:
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        tx_hash = factory.constructor(*args).transact(
            {"from": sender or self.accounts[0], "gas": GAS}
        )
        receipt = self.w3.eth.get_transaction_receipt(tx_hash)
        assert receipt["status"] == 1, f"deploying {artifact['contract']} reverted"
        address = receipt["contractAddress"]
        assert address is not None
        return self.w3.eth.contract(address=address, abi=artifact["abi"])

    def send(self, fn: ContractFunction, sender: str, *, gas: int = GAS) -> TxReceipt:
        """Mine ``fn`` as a transaction from ``sender`` and insist that it succeeded."""
        tx_hash = fn.transact({"from": cast(ChecksumAddress, sender), "gas": gas})
        receipt = self.w3.eth.get_transaction_receipt(tx_hash)
        assert receipt["status"] == 1, f"{fn.fn_name} from {sender} reverted"
        return receipt

    def latest_timestamp(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def set_next_timestamp(self, timestamp: int) -> None:
        """Make ``timestamp`` the timestamp of the next mined block (the next transaction's).

        eth-tester's ``time_travel(ts)`` mines an empty block at ``ts − 1`` and leaves the pending
        block at ``ts`` (blocks after it: +1 s each, or the wall clock if that is later, so tests
        work far in the future). Views that depend on the time must then be read with
        ``block_identifier="pending"`` to run at ``ts``; ``"latest"`` runs at ``ts − 1``.
        """
        self.tester.time_travel(timestamp)

    def future(self, seconds: int = 1_000_000) -> int:
        """A timestamp well past both the chain head and the wall clock."""
        return self.latest_timestamp() + seconds


def start_chain() -> Chain:
    tester = EthereumTester(PyEVMBackend())
    return Chain(tester=tester, w3=Web3(EthereumTesterProvider(tester)))


def revert_message(exc: BaseException) -> str:
    """The reason string of a revert raised by ``.call()``.

    EthereumTesterProvider raises eth-tester's ``TransactionFailed("execution reverted: <reason>")``
    rather than web3's ``ContractLogicError``; both are accepted.
    """
    message = exc.message if isinstance(exc, ContractLogicError) else str(exc)
    return (message or "").removeprefix("execution reverted").removeprefix(":").strip()


def expect_revert(
    fn_call: ContractFunction | ContractConstructor,
    tx_params: TxParams,
    reason: str | None,
    *,
    send: bool = True,
) -> None:
    """Assert that ``fn_call`` reverts with exactly ``reason`` (None: any reason, or none).

    The reason comes from a call at the pending block, which is where the transaction would run.
    With ``send`` the transaction is then mined too (explicit gas, so web3 does not raise) and
    its receipt must say status 0; this mines a block, so time-sensitive tests may pass
    ``send=False``.
    """
    w3 = fn_call.w3
    params: TxParams = {"gas": GAS, **tx_params}
    if isinstance(fn_call, ContractConstructor):
        # a constructor has no .call(): run its creation code as a call without a recipient
        data = fn_call.build_transaction(params)["data"]
        creation: TxParams = {"from": params["from"], "data": data, "gas": GAS}
        with pytest.raises((ContractLogicError, TransactionFailed)) as raised:
            w3.eth.call(creation, "pending")
    else:
        with pytest.raises((ContractLogicError, TransactionFailed)) as raised:
            fn_call.call(params, block_identifier="pending")
    if reason is not None:
        message = revert_message(raised.value)
        assert message == reason, f"reverted with {message!r}, expected {reason!r}"

    if send:
        tx_hash = fn_call.transact(params)
        receipt = w3.eth.get_transaction_receipt(tx_hash)
        assert receipt["status"] == 0, "the call reverted but the mined transaction did not"


def logs(contract: Contract, event: str, receipt: TxReceipt) -> list[dict[str, Any]]:
    """The decoded ``event`` logs that ``contract`` itself emitted in ``receipt``, in order."""
    decoded: Sequence[Any] = contract.events[event]().process_receipt(receipt, errors=DISCARD)
    return [dict(log["args"]) for log in decoded if log["address"] == contract.address]
