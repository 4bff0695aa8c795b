"""exec-reports pipeline: report definitions -> metrics -> rendered emails -> delivery.

Only ``flows.flow`` imports Prefect; every other module here is a plain function library.
"""
