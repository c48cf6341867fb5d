"""The product against an EVM JSON-RPC node (``SYNOR_CHAIN_RPC``) rather than its in-process
chain: the node here is py-evm behind a JSON-RPC server over HTTP on this machine (a separate
chain from the product's own), so every call crosses a real socket as it would to any node. A
restart finds the contracts it recorded; a payment made through the node is credited."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from web3 import Web3

from synor_economics.adapters.chain.evm import TESTER_KEYS, ChainError, EvmChain, answer_json_rpc
from synor_economics.bootstrap import build
from synor_economics.config import Settings

SYNOR = 10**18


class JsonRpc(BaseHTTPRequestHandler):
    """JSON-RPC over HTTP in front of an in-process EVM (the same answering ``synor serve``
    offers at ``/rpc``)."""

    chain: ClassVar[EvmChain]

    def do_POST(self) -> None:
        body = answer_json_rpc(self.chain, self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def node() -> Iterator[str]:
    JsonRpc.chain = EvmChain.in_process()
    server = ThreadingHTTPServer(("127.0.0.1", 0), JsonRpc)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def settings(data_dir: Path, node: str, **extra: Any) -> Settings:
    keys = [EvmChain.signer(k) for k in TESTER_KEYS]
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "chain_rpc": node,
        "chain_deployer_key": TESTER_KEYS[0],
        "treasury_address": keys[9].address,
        "oracle_reporter_keys": f"{TESTER_KEYS[1]},{TESTER_KEYS[2]}",
        "payment_confirmations": 2,
    }
    return Settings(**(values | extra))


def test_a_restart_finds_its_contracts_and_a_payment_through_the_node_is_credited(
    node: str, tmp_path: Path
) -> None:
    before = EvmChain.rpc(node).head()
    first = build(settings(tmp_path, node))
    try:
        info = first.chain()
        assert info["node"] == "JSON-RPC"
        contracts = info["contracts"]
        assert isinstance(contracts, dict)
        assert set(contracts) == {"SynorToken", "PriceOracle", "InvoicePayments", "FeeDistributor"}
        head = info["head"]
    finally:
        first.close()

    again = build(settings(tmp_path, node))  # the product restarted on the same node
    try:
        info = again.chain()
        assert info["contracts"] == contracts  # found, not deployed again
        assert info["head"] == head

        client = EvmChain.rpc(node)
        owner, payer = (EvmChain.signer(TESTER_KEYS[i]) for i in (0, 6))
        token = client.contract("SynorToken", str(contracts["SynorToken"]))
        deposit = "0x" + "5a" * 20
        again.payments.add_deposit_address(deposit, "acct_rpc")
        client.transact(token.functions.transfer(payer.address, 10 * SYNOR), owner)
        client.transact(
            token.functions.transfer(Web3.to_checksum_address(deposit), 7 * SYNOR), payer
        )
        early = again.payments.poll()
        assert early.credited == 0  # one confirmation of two
        assert early.scanned is not None
        assert early.scanned[0] == before + 1  # read from the deployment on, not from block 0
        client.transact(token.functions.approve(owner.address, 1), payer)  # a block on top
        report = again.payments.poll()
        assert report.credited == 1
        assert again.ledger.account("customer:acct_rpc:prepaid").posted == 7 * SYNOR
        oracle = client.contract("PriceOracle", str(contracts["PriceOracle"]))
        reporters = {EvmChain.signer(TESTER_KEYS[i]).address for i in (1, 2)}
        assert set(oracle.functions.reporters().call()) == reporters
        assert oracle.functions.quorum().call() == 2
    finally:
        again.close()


def test_without_recorded_contracts_or_a_deployer_key_the_product_says_what_to_set(
    node: str, tmp_path: Path
) -> None:
    system = build(settings(tmp_path, node, chain_deployer_key=""))
    try:
        with pytest.raises(ChainError, match="SYNOR_CHAIN_DEPLOYER_KEY"):
            system.chain()
    finally:
        system.close()


def test_a_node_that_does_not_answer_is_named() -> None:
    with pytest.raises(ChainError, match="does not answer"):
        EvmChain.rpc("http://127.0.0.1:9/", timeout_s=1.0)
