"""The operator's side: the ``exec-reports`` command line (``flows.operate.cli``), the local Prefect
server that ``make run`` keeps, the delivery records of a period, and report diffs for pull requests."""
