"""`make bench`: throughput and latency of the lead API against gunicorn on PostgreSQL.

Run with `make bench` (or `.venv/bin/python -m bench --help`). See bench/README.md.
"""
