"""``synor serve`` on the embedded default holds the in-process EVM: it deploys the contracts,
serves the chain's JSON-RPC at ``/rpc``, and credits the payments made on it. Another process
reaches the same chain through ``SYNOR_CHAIN_RPC`` and finds the same contracts."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
from web3 import Web3

from synor_economics.adapters.chain.evm import TESTER_KEYS, EvmChain
from tests.e2e.conftest import COMMAND, Cli
from tests.e2e.test_api import free_port, wait_until_healthy

SYNOR = 10**18


def test_serve_holds_the_chain_and_credits_a_payment_made_on_it(tmp_path: Path, cli: Cli) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNOR_")}
    env.update(
        SYNOR_DATA_DIR=str(cli.data_dir),
        SYNOR_PORT=str(port),
        SYNOR_PAYMENT_CONFIRMATIONS="1",
    )
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [*COMMAND, "serve", "--no-worker"],
            env=env,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            assert wait_until_healthy(proc, f"{base}/v1/health", log, timeout=40).status_code == 200
            # Another process on the same chain, through the server's JSON-RPC.
            info = cli.json("chain", "info", SYNOR_CHAIN_RPC=f"{base}/rpc")
            assert info["node"] == "JSON-RPC"
            contracts = info["contracts"]
            assert contracts["SynorToken"] in log.read_text()  # the ones serve deployed

            deposit = "0x" + "7e" * 20
            cli.ok("payments", "address", deposit, "--account", "acct_chain")
            client = EvmChain.rpc(f"{base}/rpc")
            token = client.contract("SynorToken", contracts["SynorToken"])
            owner = EvmChain.signer(TESTER_KEYS[0])  # the deployer holds the supply
            client.transact(
                token.functions.transfer(Web3.to_checksum_address(deposit), 5 * SYNOR), owner
            )

            deadline = time.monotonic() + 30
            payments: list[dict[str, str]] = []
            while time.monotonic() < deadline:
                payments = httpx.get(f"{base}/v1/payments", timeout=5).json()["payments"]
                if payments and payments[0]["status"] == "credited":
                    break
                time.sleep(0.5)
            assert [(p["status"], p["amount"]) for p in payments] == [
                ("credited", str(5 * SYNOR))
            ], log.read_text()
            account = httpx.get(
                f"{base}/v1/ledger/accounts/customer:acct_chain:prepaid", timeout=5
            ).json()
            assert account["balance"] == str(5 * SYNOR)
            number = httpx.post(
                f"{base}/rpc",
                json={"jsonrpc": "2.0", "id": 7, "method": "eth_blockNumber", "params": []},
                timeout=5,
            ).json()
            assert number["id"] == 7
            assert number["result"].startswith("0x")  # a quantity, as any node spells it
            bad = httpx.post(f"{base}/rpc", content=b"{not json", timeout=5).json()
            assert bad["error"]["code"] == -32700
        finally:
            proc.terminate()
            proc.wait(timeout=30)
