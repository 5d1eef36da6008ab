"""Data jobs: synthetic generation and preparation of training-ready Parquet."""
