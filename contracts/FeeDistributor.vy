# pragma version 0.4.3
"""
@title FeeDistributor
@notice Splits the SYNOR fees it holds among the configured parties and a burn share, once per
        epoch. The split is by largest remainder (SPEC §1): every part (the burn part and each
        party's) is floored, then the leftover base units go one each to the largest fractional
        remainders; ties go to the burn part first, then to parties in ascending address order.
        The parts always sum to the whole balance. The burn part is burned on the token for real.
"""

MAX_PARTIES: constant(uint256) = 16
# every part is balance × share // total: bounding the total keeps the product inside uint256 for
# any balance below 10^47 base units
MAX_TOTAL_SHARES: constant(uint256) = 10**30


interface BurnableToken:
    def balanceOf(owner: address) -> uint256: view
    def transfer(to: address, amount: uint256) -> bool: nonpayable
    def burn(amount: uint256): nonpayable


event Configured:
    parties: DynArray[address, MAX_PARTIES]
    shares: DynArray[uint256, MAX_PARTIES]
    burn_share: uint256


event Distributed:
    epoch: indexed(uint256)
    total: uint256
    burned: uint256


event Payout:
    epoch: indexed(uint256)
    party: indexed(address)
    amount: uint256


token: public(BurnableToken)
owner: public(address)
burn_share: public(uint256)
distributed: public(HashMap[uint256, bool])
_parties: DynArray[address, MAX_PARTIES]
_shares: DynArray[uint256, MAX_PARTIES]


@deploy
def __init__(token: address):
    assert token != empty(address), "zero token"
    self.token = BurnableToken(token)
    self.owner = msg.sender


@external
def configure(
    parties: DynArray[address, MAX_PARTIES],
    shares: DynArray[uint256, MAX_PARTIES],
    burn_share: uint256,
):
    assert msg.sender == self.owner, "not owner"
    assert len(parties) == len(shares), "length mismatch"
    assert len(parties) > 0, "no parties"
    assert burn_share <= MAX_TOTAL_SHARES, "shares too large"
    total: uint256 = burn_share
    previous: uint256 = 0
    for i: uint256 in range(len(parties), bound=MAX_PARTIES):
        key: uint256 = convert(parties[i], uint256)
        assert key != 0, "zero party"
        assert i == 0 or key > previous, "parties not ascending"
        previous = key
        assert shares[i] <= MAX_TOTAL_SHARES, "shares too large"
        total += shares[i]
    assert total > 0, "zero total share"
    assert total <= MAX_TOTAL_SHARES, "shares too large"
    self._parties = parties
    self._shares = shares
    self.burn_share = burn_share
    log Configured(parties=parties, shares=shares, burn_share=burn_share)


@external
def distribute(epoch: uint256) -> uint256:
    assert not self.distributed[epoch], "epoch already distributed"
    assert len(self._parties) > 0, "not configured"
    total: uint256 = staticcall self.token.balanceOf(self)
    assert total > 0, "nothing to distribute"
    self.distributed[epoch] = True

    parts: DynArray[uint256, MAX_PARTIES + 1] = self._split(total)
    burned: uint256 = parts[0]
    if burned > 0:
        extcall self.token.burn(burned)
    for i: uint256 in range(len(self._parties), bound=MAX_PARTIES):
        party: address = self._parties[i]
        amount: uint256 = parts[i + 1]
        if amount > 0:
            ok: bool = extcall self.token.transfer(party, amount)
            assert ok, "transfer failed"
        log Payout(epoch=epoch, party=party, amount=amount)
    log Distributed(epoch=epoch, total=total, burned=burned)
    return total


@view
@external
def parties() -> DynArray[address, MAX_PARTIES]:
    return self._parties


@view
@external
def shares() -> DynArray[uint256, MAX_PARTIES]:
    return self._shares


@view
@external
def preview(amount: uint256) -> (uint256, DynArray[uint256, MAX_PARTIES]):
    """
    @return (burn part, party parts) of `amount` under the current configuration.
    """
    assert len(self._parties) > 0, "not configured"
    parts: DynArray[uint256, MAX_PARTIES + 1] = self._split(amount)
    party_parts: DynArray[uint256, MAX_PARTIES] = []
    for i: uint256 in range(len(self._parties), bound=MAX_PARTIES):
        party_parts.append(parts[i + 1])
    return (parts[0], party_parts)


@view
@internal
def _split(amount: uint256) -> DynArray[uint256, MAX_PARTIES + 1]:
    """
    @dev Largest remainder. Index 0 is the burn part, then the parties in their (ascending) order,
         which is also the tie-break order: the first of equal remainders wins.
    """
    weights: DynArray[uint256, MAX_PARTIES + 1] = [self.burn_share]
    for share: uint256 in self._shares:
        weights.append(share)
    total_weight: uint256 = 0
    for w: uint256 in weights:
        total_weight += w

    parts: DynArray[uint256, MAX_PARTIES + 1] = []
    remainders: DynArray[uint256, MAX_PARTIES + 1] = []
    given: DynArray[bool, MAX_PARTIES + 1] = []
    assigned: uint256 = 0
    for w: uint256 in weights:
        product: uint256 = amount * w
        part: uint256 = product // total_weight
        parts.append(part)
        remainders.append(product % total_weight)
        given.append(False)
        assigned += part

    # each remainder is below total_weight, so fewer than len(weights) units are left over
    leftover: uint256 = amount - assigned
    n: uint256 = len(weights)
    for _: uint256 in range(leftover, bound=MAX_PARTIES + 1):
        best: uint256 = n
        for i: uint256 in range(n, bound=MAX_PARTIES + 1):
            if given[i]:
                continue
            if best == n or remainders[i] > remainders[best]:
                best = i
        given[best] = True
        parts[best] += 1
    return parts
