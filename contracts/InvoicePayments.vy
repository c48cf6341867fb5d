# pragma version 0.4.3
"""
@title InvoicePayments
@notice Pays an invoice in SYNOR: moves `amount` base units from the payer to the treasury (the payer
        approves this contract first) and logs the invoice reference beside it. The token's own
        Transfer event (payer → treasury) is logged too; the off-chain watcher credits a payment
        once per (chain_id, tx_hash, log_index) and de-duplicates the two.
"""

from ethereum.ercs import IERC20


event InvoicePaid:
    payer: indexed(address)
    reference: String[64]
    amount: uint256


token: public(IERC20)
treasury: public(address)


@deploy
def __init__(token: address, treasury: address):
    assert token != empty(address), "zero token"
    assert treasury != empty(address), "zero treasury"
    self.token = IERC20(token)
    self.treasury = treasury


@external
def pay(reference: String[64], amount: uint256):
    assert amount > 0, "zero amount"
    assert len(reference) > 0, "empty reference"
    ok: bool = extcall self.token.transferFrom(msg.sender, self.treasury, amount)
    assert ok, "transfer failed"
    log InvoicePaid(payer=msg.sender, reference=reference, amount=amount)
