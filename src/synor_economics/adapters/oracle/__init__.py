"""Price sources for the SYNOR/USD oracle (DEX pairs read on chain, off-chain JSON feeds) and the
publisher that submits the aggregate to the PriceOracle contract."""
