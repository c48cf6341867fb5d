# pragma version 0.4.3
"""
@title SynorToken
@notice The SYNOR ERC-20 token (18 decimals) for local and test chains. The deployer holds the
        initial supply and is the minter. `burn`/`burnFrom` destroy tokens for real: the supply
        falls and a Transfer to the zero address is logged, which is how the fee distributor's
        burn share leaves circulation.
"""

from ethereum.ercs import IERC20

implements: IERC20


event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256


event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256


name: public(String[32])
symbol: public(String[8])
decimals: public(constant(uint8)) = 18
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
minter: public(address)


@deploy
def __init__(name: String[32], symbol: String[8], initial_supply: uint256):
    self.name = name
    self.symbol = symbol
    self.minter = msg.sender
    self._mint(msg.sender, initial_supply)


@external
def transfer(to: address, amount: uint256) -> bool:
    self._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    self._spend_allowance(owner, msg.sender, amount)
    self._transfer(owner, to, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def mint(to: address, amount: uint256):
    assert msg.sender == self.minter, "not minter"
    self._mint(to, amount)


@external
def burn(amount: uint256):
    self._burn(msg.sender, amount)


@external
def burnFrom(owner: address, amount: uint256):
    self._spend_allowance(owner, msg.sender, amount)
    self._burn(owner, amount)


@internal
def _transfer(sender: address, receiver: address, amount: uint256):
    assert receiver != empty(address), "transfer to zero address"
    balance: uint256 = self.balanceOf[sender]
    assert balance >= amount, "insufficient balance"
    self.balanceOf[sender] = balance - amount
    self.balanceOf[receiver] += amount
    log Transfer(sender=sender, receiver=receiver, value=amount)


@internal
def _mint(receiver: address, amount: uint256):
    assert receiver != empty(address), "mint to zero address"
    self.totalSupply += amount
    self.balanceOf[receiver] += amount
    log Transfer(sender=empty(address), receiver=receiver, value=amount)


@internal
def _burn(owner: address, amount: uint256):
    balance: uint256 = self.balanceOf[owner]
    assert balance >= amount, "insufficient balance"
    self.balanceOf[owner] = balance - amount
    self.totalSupply -= amount
    log Transfer(sender=owner, receiver=empty(address), value=amount)


@internal
def _spend_allowance(owner: address, spender: address, amount: uint256):
    # the maximum allowance is "unlimited" and is never spent down (the common ERC-20 convention)
    allowed: uint256 = self.allowance[owner][spender]
    if allowed == max_value(uint256):
        return
    assert allowed >= amount, "insufficient allowance"
    self.allowance[owner][spender] = allowed - amount
