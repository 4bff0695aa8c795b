"""Tools for tests and benchmarks (starting a local Prefect server); not used by the product at run time."""
