"""Synor economics: metering, rating, billing, ledger and fee distribution for the Synor network."""

__version__ = "0.1.0"
