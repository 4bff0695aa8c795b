"""What every stage uses and no stage owns: the error hierarchy, the portfolio config, the reporting
period, YAML with line numbers, strictly parsed mailboxes, the on-disk cache, and secrets. Imports no
other stage."""
