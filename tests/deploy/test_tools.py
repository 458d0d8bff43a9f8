"""The external tools the deploy tests need: skipped locally when absent, a failure in CI."""

from __future__ import annotations

import pytest

from tests.deploy import conftest as deploy_conftest


@pytest.mark.parametrize(("in_ci", "outcome"), [(False, pytest.skip.Exception),
                                                 (True, pytest.fail.Exception)])
def test_a_missing_tool_skips_locally_and_fails_in_ci(monkeypatch, in_ci, outcome):
    monkeypatch.setattr(deploy_conftest, "IN_CI", in_ci)
    with pytest.raises(outcome, match="tcgjobs-no-such-tool"):
        deploy_conftest.require_tool("tcgjobs-no-such-tool")


def test_hadolint_from_the_test_extras_is_found():
    assert deploy_conftest.require_tool("hadolint").endswith("hadolint")
