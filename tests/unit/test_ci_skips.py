"""tests/conftest.py: with CI=true a skipped test fails and says why (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ("pytester",)

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

SKIPPING = """
import os
import pytest

needs_tool = pytest.mark.skipif(True, reason="needs a tool this machine lacks")

@needs_tool
def test_marked():
    pass

def test_called():
    pytest.skip("cannot create network namespaces")

@pytest.fixture
def netns():
    pytest.skip("no namespace in the fixture")

def test_fixture(netns):
    pass

def test_runs():
    pass

@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_skipping=SKIPPING)
    return pytester


def test_without_ci_a_skip_is_a_skip(project: pytest.Pytester,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    res = project.runpytest("-rs")
    res.assert_outcomes(passed=1, skipped=3, xfailed=1)


@pytest.mark.parametrize("value", ["true", "1"])
def test_in_ci_every_skip_fails_with_its_reason(project: pytest.Pytester,
                                                monkeypatch: pytest.MonkeyPatch,
                                                value: str) -> None:
    monkeypatch.setenv("CI", value)
    res = project.runpytest()
    # skipif marks and fixtures skip in setup: reported as errors; a skip in the body
    # as a failure.  Either way the run is red, and xfail stays xfail.
    res.assert_outcomes(passed=1, failed=1, errors=2, xfailed=1)
    assert res.ret != 0
    out = res.stdout.str()
    for reason in ("needs a tool this machine lacks", "cannot create network namespaces",
                   "no namespace in the fixture"):
        assert reason in out
    assert "skipped in CI (CI=true)" in out


def test_a_module_level_importorskip_fails_in_ci(pytester: pytest.Pytester,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_importing="""
import pytest
pytest.importorskip("no_such_module_mipvpn")

def test_never():
    pass
""")
    monkeypatch.setenv("CI", "true")
    res = pytester.runpytest()
    assert res.ret != 0
    res.assert_outcomes(errors=1)
    assert "no_such_module_mipvpn" in res.stdout.str()
    monkeypatch.setenv("CI", "false")
    pytester.runpytest().assert_outcomes(skipped=1)


def test_an_allow_listed_skip_stays_a_skip(pytester: pytest.Pytester,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    conftest = CONFTEST.read_text().replace(
        "CI_ALLOWED_SKIPS: dict[str, str] = {}",
        'CI_ALLOWED_SKIPS: dict[str, str] = {"test_skipping.py::test_called": "why"}')
    pytester.makeconftest(conftest)
    pytester.makepyfile(test_skipping=SKIPPING)
    monkeypatch.setenv("CI", "true")
    pytester.runpytest().assert_outcomes(passed=1, skipped=1, errors=2, xfailed=1)


def test_the_allow_list_is_empty() -> None:
    """Each entry is an exception to be argued in docs/decisions.md; today there is none."""
    import tests.conftest as conftest
    assert conftest.CI_ALLOWED_SKIPS == {}
