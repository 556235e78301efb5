"""The test tiers: which tests `make test` (the everyday loop) leaves out, and which `make test-all`
runs alone. Applied as the markers `slow` and `serial` by conftest.py's pytest_collection_modifyitems."""

# `make test` runs `-m "not slow"`, the everyday loop; `make test-all` (and .ci/run)
# runs everything: `-m "not serial"` on two pytest-xdist workers (each with a test database of its
# own), then `-m serial` alone. Picked by measured duration (`pytest --durations`, SQLite and
# PostgreSQL on two cores); a file can also mark its own tests `pytest.mark.slow`. Browser tests are
# slow too. Entries are node id prefixes (a file, or a file::test).
SLOW = (
    "tests/test_api_schema.py",  # schemathesis over the whole API: ~35 s
    "tests/test_access_matrix.py",  # every URL for every persona: ~12 s
    "tests/test_deploy_check.py",  # `check --deploy` and production settings in subprocesses: ~8 s
    "leads/tests/test_seed_demo.py",  # seeds the whole demo, twice: ~10 s
    "partners/tests/test_demo.py",  # demo seeding: ~4 s
    "scoring/tests/test_write_path_model.py",  # hypothesis stateful: ~12 s
    "leads/tests/test_partnerorganization_move.py",  # migrates back and forth: ~5 s
    # long hypothesis runs: 1,500 and 400 examples (~3 s, ~2.5 s); the scoring engine's six
    # properties at 200 examples each (~12 s together; its worked examples stay in the fast tier)
    "leads/tests/test_event_validation.py::test_the_fast_path_accepts_only_what_the_full_validation_accepts",
    "routing/tests/test_engine.py::test_the_compiled_engine_decides_as_rule_by_rule_evaluation_does",
    "scoring/tests/test_engine.py::test_the_breakdown_adds_up_to_the_total",
    "scoring/tests/test_engine.py::test_caps_hold",
    "scoring/tests/test_engine.py::test_the_order_of_activities_does_not_matter",
    "scoring/tests/test_engine.py::test_decay_never_makes_a_contribution_larger",
    "scoring/tests/test_engine.py::test_with_positive_behaviour_points_time_never_raises_the_score",
    "scoring/tests/test_engine.py::test_scoring_is_deterministic",
    # a hundred wrong passwords, twice; guessers on many addresses: ~5 s together
    "tests/test_login_throttle.py::test_100_wrong_passwords_then_the_right_one_is_refused",
    "tests/test_login_throttle.py::test_guessers_on_many_addresses_lock_the_account",
    # PostgreSQL races (threads on connections of their own, transactional): 1-3 s each with the flush
    "routing/tests/test_pool_races.py",
    "scoring/tests/test_races.py",
    "leads/tests/test_changes_races.py",  # the changes feed: 6 writers, transactions held open: ~10 s
    # the changes feed: 40 hypothesis interleavings of 3 connections and a reader: ~20 s (more when
    # other sessions' transactions on the server hold the feed's horizon)
    "leads/tests/test_changes_interleavings.py",
    "leads/tests/test_capture.py::test_simultaneous_captures_of_one_email_make_one_lead",
    "leads/tests/test_capture_many.py::test_a_concurrent_capture_of_an_email_in_the_batch_makes_one_lead",
    "scoring/tests/test_workers.py::test_rows_another_worker_holds_are_left_to_it",
    "tests/test_login_throttle.py::test_21_reset_requests_at_once_still_send_exactly_3_emails",
    "tests/test_login_throttle.py::test_8_parallel_guessers_get_at_most_a_few_guesses_past_the_limit",
)
# Real Celery workers and beat, private redis-servers, outages and timing (seconds to minutes each, on
# PostgreSQL): they compete for the CPU and their deadlines assume they have it, so they run alone,
# after the parallel run. Serial implies slow.
SERIAL = (
    "routing/tests/test_parallel.py",  # four worker processes route 1,000 MQLs: ~92 s
    "tests/test_soak.py",  # ~55 s
    "tests/test_pg_outage.py",  # ~33 s
    "tests/test_redis_outage_converges.py",  # ~25 s
    "tests/test_outages.py",  # ~21 s (SQLite) and ~27 s (PostgreSQL)
    "tests/test_mail_outage.py",  # a private Redis stopped and started, a worker: ~10 s
    "tests/test_worker_helpers.py",  # ~15 s
    "loop/tests/test_transient_worker.py",  # ~8 s
    "scoring/tests/test_real_worker.py",  # ~6 s
    "tests/test_rabbitmq.py",  # real workers on RabbitMQ
    "webhooks/tests/test_real_worker.py",  # a worker on a private Redis delivering to a real receiver: ~15 s
    "imports/tests/test_workers.py",  # a real worker imports; another is killed mid-import: ~20 s
)
