from web_harness import dashboard  # noqa: F401 - fixture
