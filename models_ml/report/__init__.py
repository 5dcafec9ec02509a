"""The static report: one page of every stage's results (page) with its charts (charts)."""
