"""The release's forecast-vs-actual SVG: the quantile band when the batch output has one, and a legend
whose labels never overlap."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from mlops.release.report import forecast_svg

SVG = "{http://www.w3.org/2000/svg}"


def _rows(band: bool) -> list[dict[str, str]]:
    rows = []
    for day in range(1, 9):
        row = {"date": f"2017-01-{day + 1:02d}", "forecast_origin": f"2017-01-{day:02d}",
               "predicted": str(100 + day), "count": str(98 + day), "file": "a.csv"}
        if band:
            row.update({"q0.1": str(90 + day), "q0.9": str(115 + day)})
        rows.append(row)
    return rows


def _legend(svg: str) -> list[tuple[float, str]]:
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    return [(float(t.get("x")), t.text or "") for t in root.iter(f"{SVG}text") if t.get("class") == "legend"]


def test_the_band_is_drawn_between_the_lowest_and_highest_quantile() -> None:
    svg = forecast_svg(_rows(band=True))
    root = ET.fromstring(svg)  # noqa: S314
    bands = [p for p in root.iter(f"{SVG}polygon") if p.get("class") == "band"]
    assert len(bands) == 1
    points = [tuple(map(float, pair.split(","))) for pair in bands[0].get("points").split()]
    assert len(points) == 16  # upper edge forward, lower edge back: 8 days each
    upper, lower = points[:8], points[8:][::-1]
    assert all(u[1] < lo[1] for u, lo in zip(upper, lower, strict=True))  # SVG y grows downwards
    assert [label for _, label in _legend(svg)] == ["actual", "forecast (1 day ahead)", "0.1-0.9 quantiles"]


def test_without_quantile_columns_there_is_no_band() -> None:
    svg = forecast_svg(_rows(band=False))
    assert "polygon" not in svg
    assert [label for _, label in _legend(svg)] == ["actual", "forecast (1 day ahead)"]


def test_legend_labels_do_not_overlap() -> None:
    """Each label starts after the previous one ends (at a generous 7.2 px a character at 12 px)."""
    for band in (False, True):
        legend = _legend(forecast_svg(_rows(band=band)))
        for (x0, text0), (x1, _text1) in zip(legend, legend[1:], strict=False):
            assert x1 >= x0 + 7.2 * len(text0), legend
        assert not re.search(r"<tspan", forecast_svg(_rows(band=band)))  # no runs of text inside one label


def test_the_batch_deployment_asks_for_the_quantile_columns_the_smoke_check_reads(tmp_path) -> None:
    """``endpoints/batch/deployment.yml`` sets ``MLOPS_BATCH_QUANTILES``; Azure writes the rows without a
    header, so the smoke check names seven fields by ``QUANTILE_OUTPUT_COLUMNS``."""
    import yaml

    from mlops.release.batch import QUANTILE_OUTPUT_COLUMNS, check_output
    from tests.release.helpers import REPO

    spec = yaml.safe_load((REPO / "endpoints/batch/deployment.yml").read_text())
    levels = [float(q) for q in spec["environment_variables"]["MLOPS_BATCH_QUANTILES"].split(",")]
    assert [f"q{q:g}" for q in levels] == list(QUANTILE_OUTPUT_COLUMNS[3:5])
    azure_shape = tmp_path / "predictions.csv"
    azure_shape.write_text("2017-01-02 2017-01-01 10.5 9.0 12.0 11.0 a.csv\n" * 12)
    problems, rows = check_output(azure_shape, min_rows=10)
    assert problems == [] and rows[0] == {"date": "2017-01-02", "forecast_origin": "2017-01-01", "predicted": "10.5",
                                          "q0.1": "9.0", "q0.9": "12.0", "count": "11.0", "file": "a.csv"}
    assert "polygon" in forecast_svg(rows)
    six = tmp_path / "six.csv"
    six.write_text("2017-01-02 2017-01-01 10.5 9.0 11.0 a.csv\n" * 12)
    assert any("'date' missing" in p for p in check_output(six, min_rows=1)[0])
