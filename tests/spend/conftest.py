from visibility_harness import make_served, simulator, sink  # noqa: F401 - fixtures
