"""The ``synor`` command line (Typer + Rich): a thin face over the services."""
