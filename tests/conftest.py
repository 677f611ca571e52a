pytest_plugins = ["tests.plugins.services", "tests.plugins.sandbox"]
