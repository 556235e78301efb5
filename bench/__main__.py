import sys

from bench.cli import main

try:
    raise SystemExit(main())
except KeyboardInterrupt:
    print("bench: interrupted; gunicorn, Celery workers and jobs were stopped", file=sys.stderr)
    raise SystemExit(130) from None
