# pragma version 0.4.3
"""
@title PriceOracle
@notice SYNOR/USD price fed by several reporters. Prices are USD per SYNOR as 18-decimal fixed
        point integers (1.25 USD/SYNOR = 1250000000000000000). Each reporter's latest submission is
        kept; when at least `quorum` of them are fresh (at most `max_age` seconds old) their median
        is the candidate, published on a deviation of at least `deviation_bps` from the current
        price, on the heartbeat, or when there is no price yet.
@dev `cumulative` is a time-weighted accumulator of the published price (price × seconds), advanced
     on each publication with the price that held until then; `cumulative_now()` advances it to the
     current block, so a TWAP over [t0, t1] is (c1 − c0) / (t1 − t0).
"""

MAX_REPORTERS: constant(uint256) = 16
BPS: constant(uint256) = 10_000
# 10^18 USD per SYNOR: keeps |Δ| × 10^4 and the accumulator far from uint256 overflow
MAX_PRICE: constant(uint256) = 10**36


struct Submission:
    price: uint256
    timestamp: uint256


event Submitted:
    reporter: indexed(address)
    price: uint256
    timestamp: uint256


event PriceUpdated:
    round_id: indexed(uint256)
    price: uint256
    cumulative: uint256
    timestamp: uint256


event ReporterAdded:
    reporter: indexed(address)


event ReporterRemoved:
    reporter: indexed(address)


event Paused:
    guardian: indexed(address)


event Unpaused:
    guardian: indexed(address)


event GuardianSet:
    guardian: indexed(address)


event ParamsSet:
    quorum: uint256
    deviation_bps: uint256
    heartbeat: uint256
    max_age: uint256


owner: public(address)
guardian: public(address)
quorum: public(uint256)
deviation_bps: public(uint256)
heartbeat: public(uint256)
max_age: public(uint256)
paused: public(bool)

price: public(uint256)
updated_at: public(uint256)
round_id: public(uint256)
cumulative: public(uint256)

is_reporter: public(HashMap[address, bool])
submissions: public(HashMap[address, Submission])
_reporters: DynArray[address, MAX_REPORTERS]


@deploy
def __init__(
    guardian: address, quorum: uint256, deviation_bps: uint256, heartbeat: uint256, max_age: uint256
):
    assert guardian != empty(address), "zero guardian"
    self.owner = msg.sender
    self.guardian = guardian
    self._set_params(quorum, deviation_bps, heartbeat, max_age)


# --- administration ---


@external
def add_reporter(reporter: address):
    assert msg.sender == self.owner, "not owner"
    assert reporter != empty(address), "zero reporter"
    assert not self.is_reporter[reporter], "reporter exists"
    assert len(self._reporters) < MAX_REPORTERS, "too many reporters"
    self._reporters.append(reporter)
    self.is_reporter[reporter] = True
    log ReporterAdded(reporter=reporter)


@external
def remove_reporter(reporter: address):
    assert msg.sender == self.owner, "not owner"
    assert self.is_reporter[reporter], "unknown reporter"
    n: uint256 = len(self._reporters)
    for i: uint256 in range(n, bound=MAX_REPORTERS):
        if self._reporters[i] == reporter:
            # swap with the last and pop: order does not matter for a median
            self._reporters[i] = self._reporters[n - 1]
            self._reporters.pop()
            break
    self.is_reporter[reporter] = False
    # forget its submission, so that adding it back does not revive an old price
    self.submissions[reporter] = empty(Submission)
    log ReporterRemoved(reporter=reporter)


@external
def set_guardian(guardian: address):
    assert msg.sender == self.owner, "not owner"
    assert guardian != empty(address), "zero guardian"
    self.guardian = guardian
    log GuardianSet(guardian=guardian)


@external
def set_params(quorum: uint256, deviation_bps: uint256, heartbeat: uint256, max_age: uint256):
    assert msg.sender == self.owner, "not owner"
    self._set_params(quorum, deviation_bps, heartbeat, max_age)


@external
def pause():
    assert msg.sender == self.guardian, "not guardian"
    self.paused = True
    log Paused(guardian=msg.sender)


@external
def unpause():
    assert msg.sender == self.guardian, "not guardian"
    self.paused = False
    log Unpaused(guardian=msg.sender)


# --- reporting ---


@external
def submit(price: uint256):
    assert self.is_reporter[msg.sender], "not reporter"
    assert not self.paused, "paused"
    assert price > 0, "zero price"
    assert price <= MAX_PRICE, "price too large"
    self.submissions[msg.sender] = Submission(price=price, timestamp=block.timestamp)
    log Submitted(reporter=msg.sender, price=price, timestamp=block.timestamp)

    fresh: DynArray[uint256, MAX_REPORTERS] = []
    for reporter: address in self._reporters:
        s: Submission = self.submissions[reporter]
        if s.price != 0 and block.timestamp - s.timestamp <= self.max_age:
            fresh.append(s.price)
    if len(fresh) < self.quorum:
        return
    candidate: uint256 = self._median(fresh)
    if self._should_publish(candidate):
        self._publish(candidate)


# --- views ---


@view
@external
def reporters() -> DynArray[address, MAX_REPORTERS]:
    return self._reporters


@view
@external
def latest() -> (uint256, uint256, uint256, bool):
    """
    @return (price, updated_at, round_id, stale); stale when there is no price yet, when paused,
            or when the price is older than max_age.
    """
    stale: bool = (
        self.round_id == 0 or self.paused or block.timestamp - self.updated_at > self.max_age
    )
    return (self.price, self.updated_at, self.round_id, stale)


@view
@external
def cumulative_now() -> (uint256, uint256):
    """
    @return (cumulative, timestamp): the accumulator as if a publication happened now.
    """
    if self.round_id == 0:
        return (0, block.timestamp)
    return (
        self.cumulative + self.price * (block.timestamp - self.updated_at),
        block.timestamp,
    )


# --- internals ---


@internal
def _set_params(quorum: uint256, deviation_bps: uint256, heartbeat: uint256, max_age: uint256):
    assert quorum >= 1, "quorum below one"
    assert quorum <= MAX_REPORTERS, "quorum above max reporters"
    assert deviation_bps <= BPS, "deviation above 10000 bps"
    assert heartbeat > 0, "zero heartbeat"
    assert max_age > 0, "zero max age"
    self.quorum = quorum
    self.deviation_bps = deviation_bps
    self.heartbeat = heartbeat
    self.max_age = max_age
    log ParamsSet(quorum=quorum, deviation_bps=deviation_bps, heartbeat=heartbeat, max_age=max_age)


@pure
@internal
def _median(values: DynArray[uint256, MAX_REPORTERS]) -> uint256:
    """
    @dev Median of a non-empty list; for an even count the floor of the mean of the middle two.
    """
    a: DynArray[uint256, MAX_REPORTERS] = values
    n: uint256 = len(a)
    # insertion sort: at most 16 values
    for i: uint256 in range(1, n, bound=MAX_REPORTERS):
        v: uint256 = a[i]
        j: uint256 = i
        for _k: uint256 in range(MAX_REPORTERS):
            if j == 0 or a[j - 1] <= v:
                break
            a[j] = a[j - 1]
            j -= 1
        a[j] = v
    mid: uint256 = n // 2
    if n % 2 == 1:
        return a[mid]
    lo: uint256 = a[mid - 1]
    hi: uint256 = a[mid]
    # floor((lo + hi) / 2) without the sum
    return lo // 2 + hi // 2 + (lo % 2 + hi % 2) // 2


@view
@internal
def _should_publish(candidate: uint256) -> bool:
    if self.round_id == 0:
        return True
    if block.timestamp - self.updated_at >= self.heartbeat:
        return True
    current: uint256 = self.price
    diff: uint256 = 0
    if candidate > current:
        diff = candidate - current
    else:
        diff = current - candidate
    return diff * BPS >= self.deviation_bps * current


@internal
def _publish(candidate: uint256):
    if self.round_id != 0:
        self.cumulative += self.price * (block.timestamp - self.updated_at)
    self.price = candidate
    self.updated_at = block.timestamp
    self.round_id += 1
    log PriceUpdated(
        round_id=self.round_id,
        price=candidate,
        cumulative=self.cumulative,
        timestamp=block.timestamp,
    )
