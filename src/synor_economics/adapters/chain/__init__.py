"""The chain adapters: the EVM client, the project's contract artifacts and bindings, price
sources read on chain or from off-chain feeds, and the reader of payment logs."""
