"""Adapters: implementations of the ports (SQL, memory fakes, later streams, chain, notify)."""
