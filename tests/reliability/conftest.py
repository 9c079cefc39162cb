"""Fixtures of the fault tests; their figures are printed in the run's summary."""

from __future__ import annotations

import pytest

from tests.support.faults import figures_report, figures_terminal_summary


def pytest_terminal_summary(terminalreporter):
    figures_terminal_summary(terminalreporter)


@pytest.fixture
def figures(request, record_property):
    """figures(**values): keep what a fault test measured (summary at the end, JUnit properties)."""

    def report(**values) -> None:
        for name, value in values.items():
            record_property(name, value)
        figures_report(request.node.name, **values)

    return report
