"""The `services` and `browser` markers mean what they say (tests/plugins/services.py):
they follow the fixtures a test needs, and a test that reaches PostgreSQL or NATS without
`services` fails instead of running under `-m "not services"`."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CONFTEST = 'pytest_plugins = ["tests.plugins.services"]\n'
INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\nmarkers =\n    services: PostgreSQL and NATS\n    browser: Chromium\n"


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    # Nothing here may reach a server: a closed port, and failures (not skips) if one is asked for.
    monkeypatch.setenv("BACKORDER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/closed")
    monkeypatch.setenv("BACKORDER_TEST_NATS_URL", "nats://127.0.0.1:1")
    monkeypatch.setenv("BACKORDER_REQUIRE_SERVICES", "1")
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI)
    return pytester


def collected(result: pytest.RunResult) -> set[str]:
    return {line.split("::", 1)[1] for line in result.outlines if "::" in line}


def test_a_test_is_marked_services_by_the_fixtures_it_needs_even_indirectly(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_kinds="""
        import pytest

        @pytest.fixture
        def bus(nats_server):
            return nats_server

        def test_through_a_fixture(bus): pass
        def test_postgresql(pg_database_url): pass
        def test_both_databases(database_url): pass
        def test_pure(): pass
        def test_sqlite(sqlite_database_url): pass
    """)
    services = suite.runpytest_subprocess("-p", "no:cacheprovider", "--co", "-q", "-m", "services")
    rest = suite.runpytest_subprocess("-p", "no:cacheprovider", "--co", "-q", "-m", "not services")
    assert collected(services) == {"test_through_a_fixture", "test_postgresql", "test_both_databases[postgresql]"}
    assert collected(rest) == {"test_both_databases[sqlite]", "test_pure", "test_sqlite"}


def test_reaching_postgresql_or_nats_without_the_marker_fails(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_sneaky="""
        from tests.plugins.services import NatsServer

        def test_asks_at_run_time(request):
            request.getfixturevalue("pg_database_url")

        def test_starts_a_server_by_hand():
            NatsServer().start()
    """)
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "-m", "not services")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*test_asks_at_run_time reaches PostgreSQL but is not marked `services`*",
        "*test_starts_a_server_by_hand reaches NATS but is not marked `services`*",
    ])


def test_everything_under_tests_browser_is_marked_browser() -> None:
    from tests.plugins.services import BROWSER_TESTS

    assert BROWSER_TESTS == ROOT / "tests" / "browser"
    assert any(BROWSER_TESTS.rglob("test_*.py"))
