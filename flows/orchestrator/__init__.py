"""The one orchestrator: plan -> gather -> render -> deliver -> summarise. The Prefect flow
(``flows.flow``) and the plain path (``check``, ``preview``, benchmarks) call the same functions here;
nothing in this package imports Prefect."""
