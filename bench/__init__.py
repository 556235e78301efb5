"""`make bench`: the lead API (foundation), scoring (full and incremental rescoring) and routing
(decisions/s, speed to lead with a real Celery worker) against PostgreSQL.

Run with `make bench` (or `.venv/bin/python -m bench --help`). See bench/README.md.
"""
