"""The metrics table of a report: anchors are found among metrics, then among timings."""

from sciprob.report import metrics_table


def _rows(table: str) -> dict[str, list[str]]:
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def test_an_anchor_on_a_timing_shows_the_measured_value_and_ratio():
    anchors = {"speedup": {"value": 1000.0, "source": "paper"}, "nme": {"value": 0.01, "source": "Table 1"}}
    rows = _rows(metrics_table({"nme": 0.02}, anchors, {"speedup": 250.0, "train_seconds": 3.0}))
    assert rows["`nme`"] == ["0.02", "0.01", "2", "Table 1"]
    assert rows["`speedup` (timing)"] == ["250", "1000", "0.25", "paper"]
    assert "`train_seconds` (timing)" not in rows  # only anchored timings join the metrics table


def test_an_anchor_found_nowhere_is_marked_not_measured():
    rows = _rows(metrics_table({}, {"speedup": {"value": 1000.0, "source": "paper"}}, {}))
    assert rows["`speedup`"] == ["(not measured)", "1000", "", "paper"]
