"""The end-to-end pipeline: run state, steps, and the report."""
