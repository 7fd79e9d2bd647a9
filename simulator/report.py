"""Summary statistics and a picture of a simulated network, from its output folder.

``write_report(out_dir)`` reads manifest.json, partners.json, stats.json, labels.jsonl and
lookalikes.jsonl, and writes report.json, report.md and network.png beside them. No Django here.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

KIND_COLOURS = {
    "manufacturer": "#d62728",
    "repackager": "#9467bd",
    "wholesaler": "#1f77b4",
    "3pl": "#8c564b",
    "dispenser": "#2ca02c",
    "hospital": "#ff7f0e",
}


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def summarize(out_dir: Path) -> dict[str, Any]:
    manifest = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
    partners = json.loads((out_dir / "partners.json").read_text(encoding="utf-8"))
    stats = json.loads((out_dir / "stats.json").read_text(encoding="utf-8"))
    labels = _jsonl(out_dir / "labels.jsonl")
    org_of_loc = {loc["gln"]: loc["organization_gln"] for loc in partners["locations"]}
    kind_of = {o["gln"]: o["kind"] for o in partners["organizations"]}
    role_of = {o["gln"]: o["role"] for o in partners["organizations"]}

    # organization-level trading graph: an edge when one shipped to the other (ownership or possession moved)
    out_nb: dict[str, set[str]] = defaultdict(set)
    in_nb: dict[str, set[str]] = defaultdict(set)
    pair_packages: Counter[tuple[str, str]] = Counter()
    for e in stats["edges"]:
        a, b = org_of_loc.get(e["from"], e["from"]), org_of_loc.get(e["to"], e["to"])
        if a == b:
            continue  # intra-company moves (chain DC to store, plant to own 3PL stock) are not trading edges
        out_nb[a].add(b)
        in_nb[b].add(a)
        pair_packages[(a, b)] += e["packages"]
    orgs = [o["gln"] for o in partners["organizations"]]
    degree = {g: len(out_nb[g] | in_nb[g]) for g in orgs}
    by_kind: dict[str, list[int]] = defaultdict(list)
    for g in orgs:
        by_kind[kind_of[g]].append(degree[g])
    hist = Counter(degree.values())
    degree_summary = {
        kind: {
            "partners": len(ds),
            "mean": round(statistics.fmean(ds), 2) if ds else 0,
            "median": statistics.median(ds) if ds else 0,
            "max": max(ds) if ds else 0,
        }
        for kind, ds in sorted(by_kind.items())
    }
    # volume concentration among wholesalers (the US has three national ones with most of the volume)
    wholesale_out: Counter[str] = Counter()
    for (a, _b), n in pair_packages.items():
        if kind_of.get(a) == "wholesaler":
            wholesale_out[a] += n
    total_w = sum(wholesale_out.values()) or 1
    top3 = sum(n for _, n in wholesale_out.most_common(3)) / total_w

    events = manifest["counts"]["events"]
    scen = Counter(r["scenario"] for r in labels)
    camo = Counter(r["scenario"] for r in labels if r["camouflaged"])
    incidents = Counter(i["scenario"] for i in manifest.get("incidents", []))
    scenario_share = {
        s: {
            "incidents": incidents.get(s, 0),
            "labelled_events": n,
            "camouflaged_events": camo.get(s, 0),
            "share_of_events": round(n / max(events, 1), 6),
            "share_of_labels": round(n / max(len(labels), 1), 4),
        }
        for s, n in sorted(scen.items())
    }
    for s, n in incidents.items():
        scenario_share.setdefault(
            s,
            {
                "incidents": n,
                "labelled_events": 0,
                "camouflaged_events": 0,
                "share_of_events": 0.0,
                "share_of_labels": 0.0,
            },
        )
    return {
        "run": manifest["run"],
        "seed": manifest["seed"],
        "scale": manifest["scale"],
        "start": manifest["start"],
        "days": manifest["days"],
        "region_states": manifest["region_states"],
        "counts": manifest["counts"],
        "organizations_by_role": dict(sorted(Counter(role_of.values()).items())),
        "locations": len(partners["locations"]),
        "trading_edges": len(pair_packages),
        "degree_by_kind": degree_summary,
        "degree_histogram": {str(k): v for k, v in sorted(hist.items())},
        "volume_by_kind": stats["volume_by_kind"],
        "events_by_biz_step": stats["by_biz_step"],
        "top3_wholesaler_share_of_wholesale_packages": round(top3, 3),
        "scenarios": scenario_share,
        "labelled_share_of_events": round(len(labels) / max(events, 1), 5),
        "lookalikes": stats["lookalikes"],
        "late_events": stats["late_events"],
        "error_declarations": stats["error_declarations"],
        "speed": _speed(out_dir),
    }


def _speed(out_dir: Path) -> dict[str, Any]:
    path = out_dir / "speed.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def markdown(summary: dict[str, Any]) -> str:
    c = summary["counts"]
    lines = [
        f"# Simulated supply network `{summary['run']}`",
        "",
        f"Seed {summary['seed']}, scale **{summary['scale']}**, {summary['days']} days from {summary['start']}, "
        f"dispensers in {', '.join(summary['region_states'])}.",
        "",
        f"- {c['events']:,} EPCIS events in {c['documents']:,} documents; {c['labelled_events']:,} labelled "
        f"({summary['labelled_share_of_events']:.2%}); {c['lookalike_tags']:,} look-alike tags",
        f"- {c['organizations']} organizations, {c['locations']} locations, {c['products']} products, "
        f"{c['lots']} lots, "
        f"{c['packages']:,} serialized packages",
        f"- {summary['trading_edges']} trading relationships; the three largest wholesalers ship "
        f"{summary['top3_wholesaler_share_of_wholesale_packages']:.0%} of wholesale packages",
        "",
        "## Partners and degree (distinct trading partners)",
        "",
        "| kind | partners | mean degree | median | max |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, d in summary["degree_by_kind"].items():
        lines.append(f"| {kind} | {d['partners']} | {d['mean']} | {d['median']} | {d['max']} |")
    lines += [
        "",
        "Degree histogram (degree: organizations): "
        + ", ".join(f"{k}: {v}" for k, v in summary["degree_histogram"].items()),
        "",
    ]
    lines += [
        "## Volume per partner kind",
        "",
        "| kind | shipments out | packages out | shipments in | packages in | dispensing events |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, v in summary["volume_by_kind"].items():
        lines.append(
            f"| {kind} | {v.get('shipments_out', 0):,} | {v.get('packages_out', 0):,} | "
            f"{v.get('shipments_in', 0):,} | {v.get('packages_in', 0):,} | {v.get('dispensing_events', 0):,} |"
        )
    lines += [
        "",
        "## Scenarios (ground truth)",
        "",
        "| scenario | incidents | labelled events | camouflaged | share of events |",
        "|---|---:|---:|---:|---:|",
    ]
    for s, v in summary["scenarios"].items():
        lines.append(
            f"| {s} | {v['incidents']} | {v['labelled_events']} | {v['camouflaged_events']} | "
            f"{v['share_of_events']:.3%} |"
        )
    lines += ["", "## Benign look-alikes and noise", "", "| kind | events |", "|---|---:|"]
    for k, v in summary["lookalikes"].items():
        lines.append(f"| {k} | {v:,} |")
    lines += [
        "",
        f"Late uploads: {summary['late_events']:,}; errorDeclarations: {summary['error_declarations']:,}.",
        "",
    ]
    lines += ["## Events by business step", "", "| bizStep | events |", "|---|---:|"]
    for k, v in summary["events_by_biz_step"].items():
        lines.append(f"| {k} | {v:,} |")
    if summary.get("speed"):
        sp = summary["speed"]
        lines += ["", f"Generated in {sp.get('seconds')} s ({sp.get('events_per_second'):,} events/s).", ""]
    lines += [
        "",
        "![network](network.png)",
        "",
        "Places and demand: The Washington Post ARCOS tables (ODbL); names are synthetic.",
        "",
    ]
    return "\n".join(lines)


def draw(out_dir: Path, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    partners = json.loads((out_dir / "partners.json").read_text(encoding="utf-8"))
    stats = json.loads((out_dir / "stats.json").read_text(encoding="utf-8"))
    kind_of = {o["gln"]: o["kind"] for o in partners["organizations"]}
    locs = {loc["gln"]: loc for loc in partners["locations"]}
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(15, 7), gridspec_kw={"width_ratios": [3, 1]})
    edges = sorted(stats["edges"], key=lambda e: e["packages"])
    top = max((e["packages"] for e in edges), default=1)
    for e in edges:
        a, b = locs.get(e["from"]), locs.get(e["to"])
        if a is None or b is None or a is b:
            continue
        w = math.log1p(e["packages"]) / math.log1p(top)
        ax.plot(
            [a["lon"], b["lon"]],
            [a["lat"], b["lat"]],
            color="#555555",
            linewidth=0.2 + 2.5 * w,
            alpha=0.08 + 0.5 * w,
            zorder=1,
        )
    for kind, colour in KIND_COLOURS.items():
        pts = [loc for loc in locs.values() if kind_of[loc["organization_gln"]] == kind]
        if not pts:
            continue
        size = 8 if kind in ("dispenser", "hospital") else 45
        ax.scatter(
            [p["lon"] for p in pts],
            [p["lat"] for p in pts],
            s=size,
            c=colour,
            label=f"{kind} ({len(pts)})",
            zorder=3 if size > 8 else 2,
            edgecolors="black" if size > 8 else "none",
            linewidths=0.4,
        )
    lats = [loc["lat"] for loc in locs.values()]
    if lats:
        mid = (min(lats) + max(lats)) / 2
        ax.set_aspect(1 / math.cos(math.radians(mid)))
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title("Locations by partner kind; lines: shipments (width and shade by packages, log scale)")
    ax.legend(loc="lower left", fontsize=8, framealpha=0.8)
    summary = (
        json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
        if (out_dir / "report.json").exists()
        else summarize(out_dir)
    )
    hist = {int(k): v for k, v in summary["degree_histogram"].items() if int(k) > 0}
    if hist:
        ax2.loglog(list(hist), list(hist.values()), "o", color="#1f77b4")
    ax2.set_xlabel("distinct trading partners (degree)")
    ax2.set_ylabel("organizations")
    ax2.set_title("Degree distribution")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out_dir: Path) -> dict[str, Any]:
    summary = summarize(out_dir)
    (out_dir / "report.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    (out_dir / "report.md").write_text(markdown(summary), encoding="utf-8")
    draw(out_dir, out_dir / "network.png")
    return summary
