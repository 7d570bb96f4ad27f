"""Reports rendered from the release record: console text, a markdown summary for
``$GITHUB_STEP_SUMMARY`` (gate table + a mermaid chart of candidate vs live latency percentiles),
and a hand-written SVG of the batch smoke output's forecast against the actuals (no plotting
dependency). All pure functions of the typed ``Record``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from html import escape
from typing import Any

from mlops.release.baseline import BASELINE_SLOT, baseline_line
from mlops.release.record import Record
from mlops.release.sections.loadtest import DeploymentLoad
from mlops.release.sections.pins import EnvironmentPin, ModelPin
from mlops.release.sections.promotion import PromotionStep, ServedWindow


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _cell(text: object) -> str:
    """Text safe inside a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _trigger(trigger: Mapping[str, str]) -> str:
    if trigger.get("by") == "github-actions":
        return (f"GitHub Actions: {trigger.get('event_name', '?')} by {trigger.get('actor', '?')} "
                f"({trigger.get('repository', '')} {trigger.get('ref', '')} {trigger.get('sha', '')[:12]}, "
                f"run {trigger.get('run_id', '?')})")
    return f"{trigger.get('user', '?')} on {trigger.get('host', '?')}"


def _traffic(traffic: Mapping[str, int] | None) -> str:
    if not traffic:
        return "-"
    return " ".join(f"{name}={share}%" for name, share in sorted(traffic.items()))


def _pin(pin: ModelPin | EnvironmentPin | None) -> str:
    return f"{pin.name}:{pin.version}" if pin is not None else "-"


def provenance(record: Record) -> tuple[str, str]:
    """How the model was picked and how its environment was made, one phrase each ("" when plain)."""
    model, environment = record.model, record.environment
    trial = ""
    if model is not None and model.trial is not None:
        score = f" ({model.trial.primary_metric} {_fmt(_rounded(float(model.trial.score)))})" if model.trial.score else ""
        trial = f"best trial {model.trial.trial} of job {model.trial.job}{score}" + (
            "; pickles trusted" if model.trusted_pickles else "")
    made = ""
    if environment is not None and environment.source.startswith("model "):
        unpinned = ", ".join(f"{u.was} -> {u.now}" for u in environment.unpinned) or "no pin"
        made = f"from the model's {environment.source.rsplit(' ', 1)[-1]}, unpinned {unpinned}"
    return trial, made


def _latency(record: Record) -> tuple[str | None, str | None, DeploymentLoad | None, DeploymentLoad | None]:
    candidate, live = record.slots.candidate, record.slots.live
    deployments = record.loadtest.deployments if record.loadtest else {}
    return candidate, live, deployments.get(candidate or ""), deployments.get(live or "")


def _load_line(name: str | None, load: DeploymentLoad) -> str:
    return (f"{name}: {load.requests} req, p50/p95/p99 {_fmt(load.p50_ms)}/{_fmt(load.p95_ms)}/{_fmt(load.p99_ms)} ms, "
            f"errors {load.failures}")


def _window(window: ServedWindow | None) -> str:
    if window is None:
        return "-"
    kinds = " ".join(f"{kind} {count}" for kind, count in sorted(window.kinds.items()))
    text = (f"{window.deployment}: {window.requests} req" + (f" ({kinds})" if kinds else "")
            + f", p95 {_fmt(window.p95_ms)} ms, errors {window.failures}")
    return text + ("" if window.complete else f" [incomplete: {window.note}]")


def _step_views(step: PromotionStep) -> list[str]:
    """The evidence of a shadow or health step, one line each: what the candidate served (the endpoint's
    per-deployment metrics, users' requests included) beside live, and the synthetic load's verdict."""
    lines = []
    if step.shadow is not None:
        lines.append(f"         shadow  {_window(step.shadow.candidate)} | live {_window(step.shadow.live)}")
    if step.health is not None:
        if step.health.synthetic is not None:
            lines.append(f"         synthetic load {step.health.synthetic.phase}: "
                         + "; ".join(step.health.synthetic.reasons))
        metrics = step.health.deployment_metrics
        if metrics is not None:
            lines.append(f"         deployment metrics {metrics.verdict.phase}: {_window(metrics.candidate)} | live "
                         f"{_window(metrics.live)}")
    return lines


def _step_phase(step: PromotionStep) -> str:
    if step.shadow is not None:
        return str(step.shadow.verdict.phase)
    return str(step.health.verdict.phase) if step.health else ""


def github_outputs(record: Record) -> dict[str, str]:
    """The ``key=value`` outputs a workflow step reads (empty values are written too)."""
    return {
        "release_id": record.release_id,
        "status": str(record.status),
        "model_version": str(record.model.version) if record.model else "",
        "model": _pin(record.model) if record.model else "",
        "environment": _pin(record.environment) if record.environment else "",
        "candidate": record.slots.candidate or "",
        "live": record.slots.live or "",
        "verdict": str(record.verdict.phase) if record.verdict else "",
    }


def console_report(record: Record) -> str:
    """A readable multi-line summary for the terminal."""
    slots, traffic, verdict = record.slots, record.traffic, record.verdict
    trial, made = provenance(record)
    lines = [
        f"release {record.release_id}: {record.status}",
        f"  model        {_pin(record.model)}  ({record.model.source if record.model else ''})"
        + (f"  {trial}" if trial else ""),
        f"  environment  {_pin(record.environment)}" + (f"  ({made})" if made else ""),
        f"  endpoint     {record.endpoint}  candidate={slots.candidate or '-'} live={slots.live or '-'}",
        f"  traffic      before {_traffic(traffic.before)}  after {_traffic(traffic.after)}",
    ]
    if record.baseline is not None:
        lines.append(f"  baseline     {baseline_line(record.baseline)}")
    candidate, live, cand, live_stats = _latency(record)
    baseline_stats = record.loadtest.deployments.get(BASELINE_SLOT) if record.loadtest else None
    if cand:
        lines.append("  load test    " + _load_line(candidate, cand))
    if baseline_stats:
        lines.append("               " + _load_line(BASELINE_SLOT, baseline_stats) + "  (compared with)")
    if live_stats:
        lines.append("               " + _load_line(live, live_stats) + ("  (reported beside)" if baseline_stats else ""))
    if verdict:
        lines.append(f"  verdict      {verdict.phase}")
        for gate in verdict.results:
            lines.append(f"    [{gate.phase:<12}] {gate.reason}")
    for step in record.promotion.steps:
        extra = _traffic(step.traffic) if step.traffic else ""
        lines.append(f"  step {step.index:<2} {step.step:<32} {step.seconds:6.1f}s {extra}{_step_phase(step)}")
        lines += _step_views(step)
    batch = record.batch
    if batch:
        lines.append(f"  batch        {batch.endpoint} default {batch.default_before or '-'} -> "
                     f"{batch.default_after or '-'}" + (f", smoke {batch.smoke_rows} rows" if batch.smoke_rows else ""))
    prep = record.batch_prep
    if prep:
        lines.append(f"  batch prep   {prep.deployment} {prep.state} beside the online release ({prep.seconds:.1f}s)"
                     + (f": {prep.removed_because}" if prep.removed_because else "")
                     + (f" - {prep.error.splitlines()[0]}" if prep.error else ""))
    rollback = record.rollback
    if rollback:
        lines.append(f"  rollback     {rollback.reason} -> traffic {_traffic(rollback.traffic_after)}, "
                     f"candidate {rollback.candidate}")
    if record.steps:
        timing = "  ".join(f"{name} {step.seconds:.1f}s" for name, step in record.steps.items())
        lines.append(f"  timings      {timing}")
        lines.append(f"  overhead     {record.overhead_seconds():.1f}s excluding configured load and bake time")
    if record.error:
        lines.append(f"  error        {record.error}")
    return "\n".join(lines)


def markdown_summary(record: Record) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``: outcome, versions, gate table, latency chart, timings."""
    slots, traffic, verdict = record.slots, record.traffic, record.verdict
    trial, made = provenance(record)
    out = [
        f"## Release `{record.release_id}`: **{record.status}**",
        "",
        "| | |", "|---|---|",
        f"| Model | `{_pin(record.model)}`" + (f" ({_cell(trial)})" if trial else "") + " |",
        f"| Environment | `{_pin(record.environment)}`" + (f" ({_cell(made)})" if made else "") + " |",
        f"| Endpoint | `{record.endpoint}` (candidate `{slots.candidate or '-'}`, live `{slots.live or '-'}`) |",
        f"| Traffic before | {_traffic(traffic.before)} |",
        f"| Traffic after | {_traffic(traffic.after)} |",
        f"| Trigger | {_cell(_trigger(record.trigger))} |",
        "",
    ]
    if verdict:
        out += [f"### Gates: {verdict.phase}", "", "| Gate | Result | Value | Limit | Detail |",
                "|---|---|---|---|---|"]
        for gate in verdict.results:
            mark = {"Passed": "pass", "Failed": "FAIL", "Inconclusive": "inconclusive"}.get(str(gate.phase),
                                                                                          str(gate.phase))
            out.append(f"| {gate.name} | {mark} | {_fmt(_rounded(gate.value))} | {_fmt(_rounded(gate.limit))} | "
                       f"{_cell(gate.reason)} |")
        out.append("")
    candidate, live, cand, live_stats = _latency(record)
    if cand:
        def series(stats: DeploymentLoad) -> str:
            return ", ".join(f"{float(v or 0):.1f}" for v in (stats.p50_ms, stats.p95_ms, stats.p99_ms))

        peak = max(float(v or 0) for s in (cand, live_stats) if s for v in (s.p95_ms, s.p99_ms)) or 1.0
        out += ["### Latency (ms): candidate bars" + (", live line" if live_stats else ""), "",
                "```mermaid", "xychart-beta",
                f'    title "{candidate} (bars) vs {live or "no live"} (line)"',
                "    x-axis [p50, p95, p99]", f'    y-axis "ms" 0 --> {peak * 1.2:.0f}',
                f"    bar [{series(cand)}]"]
        if live_stats:
            out.append(f"    line [{series(live_stats)}]")
        out += ["```", ""]
    if record.steps:
        out += ["### Steps", "", "| Step | State | Wall time (s) | of which configured load/bake (s) |",
                "|---|---|---|---|"]
        for name, step in record.steps.items():
            out.append(f"| {name} | {step.state} | {step.seconds:.1f} | {step.configured_wait_s:.1f} |")
        out.append("")
    if record.baseline is not None:
        out += [f"Baseline: {_cell(baseline_line(record.baseline))}", ""]
    if record.promotion.steps:
        out += ["### Traffic shift", "",
                "| # | Step | Traffic | Verdict | Deployment metrics (candidate / live) | Synthetic load | s |",
                "|---|---|---|---|---|---|---|"]
        for step in record.promotion.steps:
            served, synthetic = "", ""
            if step.shadow is not None:
                served = f"{_window(step.shadow.candidate)} / {_window(step.shadow.live)}"
            elif step.health is not None:
                metrics = step.health.deployment_metrics
                if metrics is not None:
                    served = f"{metrics.verdict.phase}: {_window(metrics.candidate)} / {_window(metrics.live)}"
                synthetic = str(step.health.synthetic.phase) if step.health.synthetic else ""
            out.append(f"| {step.index} | {step.step} | {_traffic(step.traffic)} | {_step_phase(step)} | "
                       f"{_cell(served)} | {synthetic} | {step.seconds:.1f} |")
        out.append("")
    batch = record.batch
    if batch:
        out += [f"### Batch: `{batch.endpoint}` default `{batch.default_before or '-'}` -> "
                f"`{batch.default_after or '-'}`", ""]
        if batch.smoke_rows:
            out += [f"Smoke job `{batch.smoke_job}`: {batch.smoke_rows} rows checked.", ""]
    prep = record.batch_prep
    if prep:
        out += [f"Batch deployment `{prep.deployment}` prepared beside the online release: **{prep.state}** "
                f"({prep.seconds:.1f} s)" + (f", {_cell(prep.removed_because)}" if prep.removed_because else "")
                + (f" - {_cell(prep.error.splitlines()[0])}" if prep.error else "") + ".", ""]
    if record.rollback:
        rollback = record.rollback
        out += [f"### Rolled back: {_cell(rollback.reason)}",
                f"Traffic after: {_traffic(rollback.traffic_after)}; candidate {rollback.candidate}.", ""]
    if record.error:
        out += ["```", str(record.error), "```", ""]
    return "\n".join(out)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def _parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text[:10])
    except (TypeError, ValueError):
        return None


def _band_columns(row: Mapping[str, str]) -> tuple[str, str] | None:
    """The lowest and highest quantile columns (``q0.1`` .. ``q0.9``, from ``MLOPS_BATCH_QUANTILES``)."""
    levels = []
    for key in row:
        if key.startswith("q"):
            try:
                levels.append((float(key[1:]), key))
            except ValueError:
                continue
    if len(levels) < 2:
        return None
    levels.sort()
    return levels[0][1], levels[-1][1]


def forecast_svg(rows: Sequence[Mapping[str, str]], *, title: str = "forecast vs actual",
                 width: int = 800, height: int = 340) -> str:
    """An SVG line chart: actual ``count`` and the 1-step-ahead ``predicted`` value per date, and -
    when the rows have quantile columns (``q0.1``, ``q0.9``) - the band between the lowest and the
    highest quantile of that same forecast.

    With several forecasts per date (a rolling forecast), the one from the latest origin before the
    date is plotted - the 1-day-ahead forecast. The legend is a row of its own under the title, each
    entry a swatch and a label placed one after the other, so no label is drawn over another."""
    band_columns = _band_columns(rows[0]) if rows else None
    best: dict[date, tuple[date | None, float, tuple[float, float] | None]] = {}
    actual: dict[date, float] = {}
    for row in rows:
        day = _parse_day(row.get("date", ""))
        if day is None:
            continue
        try:
            predicted = float(row["predicted"])
        except (KeyError, TypeError, ValueError):
            continue
        band = None
        if band_columns:
            try:
                band = (float(row[band_columns[0]]), float(row[band_columns[1]]))
            except (KeyError, TypeError, ValueError):
                band = None
        origin = _parse_day(row.get("forecast_origin", "") or "")
        if day not in best or (origin is not None and (best[day][0] is None or origin > best[day][0])):
            best[day] = (origin, predicted, band)
        try:
            actual[day] = float(row["count"])
        except (KeyError, TypeError, ValueError):
            pass
    days = sorted(best)
    pad, top = 50, 60
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="{pad}" y="20" font-size="14">{escape(title)}</text>']
    if not days:
        parts.append(f'<text x="{pad}" y="{height // 2}">no forecast rows</text></svg>')
        return "\n".join(parts)
    bands = {d: best[d][2] for d in days if best[d][2] is not None}
    values = ([best[d][1] for d in days] + [actual[d] for d in days if d in actual]
              + [v for lo_hi in bands.values() for v in lo_hi])
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    first, last = days[0], days[-1]
    total_days = max((last - first).days, 1)

    def x(day: date) -> float:
        return pad + (width - 2 * pad) * (day - first).days / total_days

    def y(value: float) -> float:
        return height - pad - (height - pad - top) * (value - low) / span

    def polyline(points: list[tuple[float, float]], color: str, dash: str = "") -> str:
        coords = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        return f'<polyline fill="none" stroke="{color}" stroke-width="1.8"{extra} points="{coords}"/>'

    parts.append(f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#888"/>')
    parts.append(f'<line x1="{pad}" y1="{top}" x2="{pad}" y2="{height - pad}" stroke="#888"/>')
    parts.append(f'<text x="{pad}" y="{height - pad + 18}">{first.isoformat()}</text>')
    parts.append(f'<text x="{width - pad}" y="{height - pad + 18}" text-anchor="end">{last.isoformat()}</text>')
    parts.append(f'<text x="{pad - 4}" y="{y(high):.1f}" text-anchor="end">{high:,.0f}</text>')
    parts.append(f'<text x="{pad - 4}" y="{y(low):.1f}" text-anchor="end">{low:,.0f}</text>')
    legend: list[tuple[str, str]] = []
    if bands:
        band_days = sorted(bands)
        outline = ([(x(d), y(bands[d][1])) for d in band_days]
                   + [(x(d), y(bands[d][0])) for d in reversed(band_days)])
        coords = " ".join(f"{px:.1f},{py:.1f}" for px, py in outline)
        parts.append(f'<polygon class="band" fill="#1f77b4" fill-opacity="0.18" stroke="none" points="{coords}"/>')
        legend.append(('<rect x="{x}" y="32" width="18" height="10" fill="#1f77b4" fill-opacity="0.18"/>',
                       f"{band_columns[0][1:]}-{band_columns[1][1:]} quantiles"))
    actual_points = [(x(d), y(actual[d])) for d in days if d in actual]
    if actual_points:
        parts.append(polyline(actual_points, "#222"))
    parts.append(polyline([(x(d), y(best[d][1])) for d in days], "#1f77b4", "5,3"))
    legend[:0] = [('<line x1="{x}" y1="37" x2="{x18}" y2="37" stroke="#222" stroke-width="1.8"/>', "actual"),
                  ('<line x1="{x}" y1="37" x2="{x18}" y2="37" stroke="#1f77b4" stroke-width="1.8" '
                   'stroke-dasharray="5,3"/>', "forecast (1 day ahead)")]
    cursor = float(pad)
    for swatch, label in legend:
        parts.append(swatch.replace("{x18}", f"{cursor + 18:.0f}").replace("{x}", f"{cursor:.0f}"))
        parts.append(f'<text class="legend" x="{cursor + 24:.0f}" y="41">{escape(label)}</text>')
        cursor += 24 + 7.2 * len(label) + 24  # a generous width per character at 12px, then a gap
    parts.append("</svg>")
    return "\n".join(parts)
