"""Payments as the chain logs them: SYNOR ``Transfer`` events to watched addresses, and
``InvoicePaid`` events of the InvoicePayments contract, read with ``eth_getLogs``.

Only logs emitted by the configured token and payments contracts are read (the address filter
of the query), so a look-alike token's Transfer never counts. An invoice payment logs twice, the
token's Transfer (payer → treasury) and InvoicePaid in the same transaction; the Transfer is
dropped there so the payment is credited once, against its invoice.

Logs are decoded here from topics and data rather than through web3's contract event helpers:
the same result at a fraction of the cost per log.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from eth_abi.abi import decode
from eth_typing import ChecksumAddress
from web3 import Web3

from synor_economics.adapters.chain.compiled import load_artifact
from synor_economics.adapters.chain.evm import EvmChain, event_topic
from synor_economics.ports import ChainPayment


def _address(topic: bytes) -> str:
    return Web3.to_checksum_address(topic[-20:])


def _padded(address: str) -> str:
    return "0x" + "00" * 12 + Web3.to_checksum_address(address)[2:].lower()


class EvmPaymentChain:
    """The payment logs of one chain, token and payments contract."""

    def __init__(
        self, chain: EvmChain, token: str, payments: str, treasury: str, *, first_block: int = 0
    ) -> None:
        self._chain = chain
        self._first_block = first_block
        self._token = Web3.to_checksum_address(token)
        self._payments = Web3.to_checksum_address(payments)
        self.treasury = Web3.to_checksum_address(treasury)
        self._transfer = event_topic(load_artifact("SynorToken"), "Transfer")
        self._paid = event_topic(load_artifact("InvoicePayments"), "InvoicePaid")

    @property
    def chain_id(self) -> int:
        return self._chain.chain_id

    def head(self) -> int:
        return self._chain.head()

    @property
    def first_block(self) -> int:
        return self._first_block

    def block_hash(self, number: int) -> str | None:
        if number > self._chain.head():
            return None
        return self._chain.block(number)[1]

    def payments(self, first: int, last: int, receivers: Collection[str]) -> list[ChainPayment]:
        if last < first:
            return []
        watched = sorted({self.treasury, *(Web3.to_checksum_address(r) for r in receivers)})
        transfers = self._logs(
            self._token, [self._transfer, None, [_padded(a) for a in watched]], first, last
        )
        invoices = self._logs(self._payments, [self._paid], first, last)
        paid_in: set[tuple[str, str]] = set()
        found: list[ChainPayment] = []
        for log in invoices:
            reference, amount = decode(["string", "uint256"], bytes(log["data"]))
            payer = _address(log["topics"][1])
            payment = self._payment(
                log,
                "invoice",
                payer=payer,
                receiver=self.treasury,
                amount=amount,
                reference=reference,
            )
            paid_in.add((payment.tx_hash, payment.payer))
            found.append(payment)
        for log in transfers:
            payer, receiver = _address(log["topics"][1]), _address(log["topics"][2])
            amount = int.from_bytes(bytes(log["data"]))
            payment = self._payment(
                log, "transfer", payer=payer, receiver=receiver, amount=amount, reference=None
            )
            if receiver == self.treasury and (payment.tx_hash, payer) in paid_in:
                continue  # the token's half of an invoice payment
            found.append(payment)
        found.sort(key=lambda p: (p.block_number, p.log_index))
        return found

    def _logs(
        self, address: ChecksumAddress, topics: list[Any], first: int, last: int
    ) -> list[Any]:
        return list(
            self._chain.w3.eth.get_logs(
                {"fromBlock": first, "toBlock": last, "address": address, "topics": topics}
            )
        )

    def _payment(
        self,
        log: Any,
        kind: str,
        *,
        payer: str,
        receiver: str,
        amount: int,
        reference: str | None,
    ) -> ChainPayment:
        return ChainPayment(
            chain_id=self._chain.chain_id,
            tx_hash=Web3.to_hex(log["transactionHash"]),
            log_index=int(log["logIndex"]),
            block_number=int(log["blockNumber"]),
            block_hash=Web3.to_hex(log["blockHash"]),
            kind=kind,
            payer=payer,
            receiver=receiver,
            amount=amount,
            reference=reference,
        )
