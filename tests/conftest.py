# pytester: tests/unit/test_markers.py runs pytest on small made-up suites.
pytest_plugins = ["tests.plugins.services", "tests.plugins.sandbox", "pytester"]
