"""Pure rules of Synor economics: standard library only, no I/O, no clocks, no settings."""
