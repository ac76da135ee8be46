from api_harness import make_api  # noqa: F401 - fixture
