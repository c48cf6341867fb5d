"""The chain client: web3.py over an in-process EVM (the embedded default) or a JSON-RPC node.

One code path for both: every transaction is built here with an explicit nonce, gas limit and
fee, signed locally (``eth_account`` over coincurve) and sent raw. Gas estimation and node-side
signing are what made eth-tester slow (about 25 tx/s against about 100 signed locally), and a
real node holds no keys of ours anyway.

The in-process chain is py-evm behind eth-tester: ten funded accounts whose keys are known (the
keys 1…10), a block per transaction, and a clock the tests can move (``travel``). Its state lives
as long as the process; on a restart the contracts are deployed afresh (``deployment.py``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from eth_account import Account as EthAccount
from eth_account.signers.local import LocalAccount
from web3 import EthereumTesterProvider, HTTPProvider, Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.types import BlockIdentifier

from synor_economics.adapters.chain.compiled import Artifact, load_artifact
from synor_economics.domain.errors import SynorError

if TYPE_CHECKING:
    from eth_tester import EthereumTester

DEPLOY_GAS = 6_000_000
CALL_GAS = 500_000
PRIORITY_FEE = 10**9
MAX_FEE = 100 * 10**9
TESTER_KEYS = tuple(f"0x{n:064x}" for n in range(1, 11))
"""The private keys of eth-tester's ten funded accounts (1, 2, … 10)."""


class ChainError(SynorError):
    """A transaction the chain refused, or a chain that does not answer as expected."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a mined transaction left: where, and the logs it emitted."""

    tx_hash: str
    block_number: int
    block_hash: str
    contract_address: str | None
    gas_used: int
    logs: tuple[Any, ...]


class EvmChain:
    """A connection to one EVM chain, with the keys that act on it."""

    def __init__(self, w3: Web3, tester: EthereumTester | None = None) -> None:
        self.w3 = w3
        self.tester = tester
        self.chain_id = int(w3.eth.chain_id)
        self._nonces: dict[str, int] = {}

    @classmethod
    def in_process(cls) -> EvmChain:
        """A fresh py-evm chain in this process, mining a block per transaction. Its requests
        are taken one at a time (eth-tester is not thread-safe; ``synor serve`` reaches it from
        the API, the payment watcher and the oracle at once)."""
        from eth_tester import (  # noqa: PLC0415 - only in-process
            EthereumTester,
            PyEVMBackend,
        )

        tester = EthereumTester(PyEVMBackend())
        return cls(Web3(_SerialTesterProvider(tester)), tester)

    @classmethod
    def rpc(cls, url: str, timeout_s: float = 30.0) -> EvmChain:
        """A JSON-RPC node at ``url`` (http or https)."""
        w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": timeout_s}))
        if not w3.is_connected():
            raise ChainError(f"the chain node at {url} does not answer")
        return cls(w3)

    # --- reading --------------------------------------------------------------------------

    def head(self) -> int:
        """The number of the latest block."""
        return int(self.w3.eth.block_number)

    def block(self, number: BlockIdentifier) -> tuple[int, str, int]:
        """(number, hash, timestamp) of a block, by number or tag."""
        block = self.w3.eth.get_block(number)
        return int(block["number"]), Web3.to_hex(block["hash"]), int(block["timestamp"])

    def genesis_hash(self) -> str:
        """The hash of block 0: with the chain id, what tells one chain from another."""
        return self.block(0)[1]

    def contract(self, name: str, address: str) -> Contract:
        """A binding of the named artifact's ABI at ``address``."""
        return self.bind(load_artifact(name), address)

    def bind(self, artifact: Artifact, address: str) -> Contract:
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact.abi)

    # --- keys and transactions ------------------------------------------------------------

    @staticmethod
    def signer(private_key: str) -> LocalAccount:
        """A local signer for a hex private key."""
        return cast(LocalAccount, EthAccount.from_key(private_key))

    def funded_signers(self) -> list[LocalAccount]:
        """The in-process chain's funded accounts as signers (none on a real node)."""
        return [self.signer(key) for key in TESTER_KEYS] if self.tester is not None else []

    def deploy(
        self, artifact: Artifact, signer: LocalAccount, *args: object, gas: int = DEPLOY_GAS
    ) -> str:
        """Deploy a contract; its address."""
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        tx = factory.constructor(*args).build_transaction(self._fields(signer, gas))
        receipt = self._send(tx, signer, what=f"deploying {artifact.name}")
        if receipt.contract_address is None:
            raise ChainError(f"deploying {artifact.name} left no contract")
        return receipt.contract_address

    def transact(
        self, call: Any, signer: LocalAccount, *, gas: int = CALL_GAS, value: int = 0
    ) -> Receipt:
        """Send a contract call as a transaction. A revert raises ``ChainError`` with the
        contract's reason, found by replaying the call (a mined revert carries none)."""
        fields = self._fields(signer, gas)
        if value:
            fields["value"] = value
        tx = call.build_transaction(fields)
        replay = {"from": signer.address, "gas": gas, "value": value}  # no nonce: it is spent
        return self._send(tx, signer, what=f"{call.fn_name}", replay=lambda: call.call(replay))

    def transact_in_one_block(
        self, calls: Sequence[tuple[Any, LocalAccount, int]]
    ) -> list[Receipt]:
        """Several contract calls mined together in one block of the in-process chain (what a
        contract doing them in one transaction would achieve, as far as block time goes)."""
        tester = self._tester("mining several transactions in one block")
        tester.disable_auto_mine_transactions()
        hashes = []
        try:
            for call, signer, gas in calls:
                tx = call.build_transaction(self._fields(signer, gas))
                signed = signer.sign_transaction(tx)
                hashes.append(self.w3.eth.send_raw_transaction(signed.raw_transaction))
        finally:
            tester.enable_auto_mine_transactions()  # mines the pending block: all of them
        receipts = []
        for tx_hash in hashes:
            raw = self.w3.eth.get_transaction_receipt(tx_hash)
            if raw["status"] != 1:
                raise ChainError(f"transaction {Web3.to_hex(tx_hash)} reverted")
            receipts.append(self._receipt(tx_hash, raw))
        return receipts

    def _fields(self, signer: LocalAccount, gas: int) -> dict[str, Any]:
        """Explicit nonce, gas and fees (EIP-1559): nothing left for the node to estimate.

        The fee cap is a generous fixed one on the in-process chain, and twice the latest
        base fee on a node. (Legacy transactions, with the chain id folded into ``v``, are
        refused by eth-tester's checks when it is not mining each one at once.)"""
        if self.tester is not None:
            cap = MAX_FEE
        else:
            base = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0)
            cap = 2 * base + PRIORITY_FEE
        return {
            "from": signer.address,
            "nonce": self._next_nonce(signer.address),
            "gas": gas,
            "maxFeePerGas": cap,
            "maxPriorityFeePerGas": PRIORITY_FEE,
            "chainId": self.chain_id,
        }

    def _next_nonce(self, address: str) -> int:
        """Nonces counted here after the first ask: one round trip less per transaction."""
        if address not in self._nonces:
            account = Web3.to_checksum_address(address)
            self._nonces[address] = int(self.w3.eth.get_transaction_count(account, "pending"))
        nonce = self._nonces[address]
        self._nonces[address] = nonce + 1
        return nonce

    def _send(
        self,
        tx: dict[str, Any],
        signer: LocalAccount,
        *,
        what: str,
        replay: Callable[[], object] | None = None,
    ) -> Receipt:
        signed = signer.sign_transaction(tx)
        try:
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        except Exception as error:  # a node refusing the transaction outright
            self._nonces.pop(signer.address, None)
            raise ChainError(f"{what} was refused: {error}") from error
        raw = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        receipt = self._receipt(tx_hash, raw)
        if raw["status"] != 1:
            raise ChainError(f"{what} reverted: {self._reason(replay)}")
        return receipt

    @staticmethod
    def _receipt(tx_hash: bytes, raw: Any) -> Receipt:
        return Receipt(
            tx_hash=Web3.to_hex(tx_hash),
            block_number=int(raw["blockNumber"]),
            block_hash=Web3.to_hex(raw["blockHash"]),
            contract_address=raw.get("contractAddress"),
            gas_used=int(raw["gasUsed"]),
            logs=tuple(raw["logs"]),
        )

    @staticmethod
    def _reason(replay: Callable[[], object] | None) -> str:
        if replay is None:
            return "no reason given"
        try:
            replay()
        except ContractLogicError as error:
            return str(error.message or error)
        except Exception as error:  # eth-tester's TransactionFailed carries the reason too
            return str(error)
        return "no reason given"

    # --- the in-process chain's clock and history -----------------------------------------

    def travel(self, timestamp: int) -> None:
        """Move the in-process chain's clock forward to ``timestamp``.

        eth-tester's ``time_travel`` mines a block at ``timestamp - 1`` at once; the blocks
        after it follow one second apart (while the chain is ahead of the wall clock). Read
        the latest block's time rather than assume it.
        """
        self._tester("moving the clock").time_travel(timestamp)

    def mine(self, blocks: int = 1) -> None:
        self._tester("mining").mine_blocks(blocks)

    def snapshot(self) -> int:
        return int(self._tester("snapshots").take_snapshot())

    def revert(self, snapshot: int) -> None:
        """Roll the in-process chain back to a snapshot (a reorg, as far as readers can tell)."""
        self._tester("snapshots").revert_to_snapshot(snapshot)
        self._nonces.clear()

    def _tester(self, what: str) -> EthereumTester:
        if self.tester is None:
            raise ChainError(f"{what} needs the in-process chain, not a node")
        return self.tester


class _SerialTesterProvider(EthereumTesterProvider):
    """eth-tester's provider, one request at a time."""

    def __init__(self, tester: EthereumTester) -> None:
        super().__init__(tester)
        self._lock = threading.RLock()

    def make_request(self, method: Any, params: Any) -> Any:
        with self._lock:
            return super().make_request(method, params)


def answer_json_rpc(chain: EvmChain, body: bytes) -> bytes:
    """Answer a JSON-RPC request (or a batch) against the in-process chain, as a node would:
    so wallets, scripts and other ``synor`` processes (``SYNOR_CHAIN_RPC``) can use the chain
    that ``synor serve`` holds."""
    try:
        request = json.loads(body)
    except ValueError:
        return _rpc_json({"jsonrpc": "2.0", "id": None, "error": _RPC_PARSE_ERROR})
    if isinstance(request, list):
        return _rpc_json([_rpc_answer(chain, item) for item in request])
    return _rpc_json(_rpc_answer(chain, request))


_RPC_PARSE_ERROR = {"code": -32700, "message": "parse error"}


def _rpc_answer(chain: EvmChain, request: object) -> dict[str, Any]:
    if not isinstance(request, dict) or not isinstance(request.get("method"), str):
        return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "invalid"}}
    answer: dict[str, Any] = {"jsonrpc": "2.0", "id": request.get("id")}
    try:
        result = chain.w3.manager.request_blocking(request["method"], request.get("params") or [])
    except Exception as error:  # the node's answer to a call it refuses
        answer["error"] = {"code": -32000, "message": str(error)}
    else:
        answer["result"] = _wire(result)
    return answer


def _wire(value: Any) -> Any:
    """A result as JSON-RPC spells it: integers as hex quantities, bytes as hex data (web3.py
    hands back Python ints and bytes; wallets and other clients expect the wire format)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, bytes | bytearray):
        return Web3.to_hex(bytes(value))
    if isinstance(value, Mapping):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_wire(item) for item in value]
    return value


def _rpc_json(document: object) -> bytes:
    return json.dumps(document).encode()


def event_topic(artifact: Artifact, event: str) -> str:
    """The topic hash of an event of the artifact's ABI."""
    for entry in artifact.abi:
        if entry.get("type") == "event" and entry.get("name") == event:
            inputs: Sequence[dict[str, Any]] = entry["inputs"]
            signature = f"{event}({','.join(i['type'] for i in inputs)})"
            return Web3.to_hex(Web3.keccak(text=signature))
    raise ChainError(f"{artifact.name} has no event {event}")
