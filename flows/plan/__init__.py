"""Planning a run: report files (``reports/*.md``) are loaded and validated into ``ReportDefinition``s
(every error located at file:line), then ``plan_run`` decides which report instances the run renders
(a role for the portfolio, or for each tenant) and which metrics each (tenant, source) must gather."""
