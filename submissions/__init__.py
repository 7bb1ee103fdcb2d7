"""The submission registry: teams, phases, submissions, jobs and results in a database."""
