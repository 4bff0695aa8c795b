"""exec-reports, the engine, laid out as the pipeline it runs (each stage imports only the ones above it):

    core          errors, config, period, located YAML, addresses, cache, secrets: what every stage uses
    templating    the sandbox report writers work in: escaping, formatters, tables, agenda, chart specs, limits
    plan          reports/*.md -> ReportDefinition -> which reports, for which tenants, need which metrics
    gather        each (tenant, source) gathered once, with retries; derived metrics after
    render        checks, the template, Markdown -> HTML and text, charts drawn: a finished RenderedEmail
    delivery      Email -> outbox, SES or SMTP, exactly once (records and claims); the agenda hand-off
    orchestrator  the one orchestrator (plan -> gather -> render -> deliver -> summary) the flow and the CLI call
    flow          the only Prefect module: the flow, its tasks, run naming, the alert hook
    operate       the ``exec-reports`` command line and operator tools (local server, deliveries, diff)
    trigger       the Lambda/API handler's boundary (JWT, SQS, EventBridge): no Prefect, no pydantic

tests/test_import_graph.py fails on an import cycle or an arrow from a lower stage to a higher one.
"""
