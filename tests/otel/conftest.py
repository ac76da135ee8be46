from run_harness import make_server, simulator  # noqa: F401 - fixtures
