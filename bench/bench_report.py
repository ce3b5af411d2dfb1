#!/usr/bin/python3
"""Turns bench/bench.py's results.json into BENCHMARKS.md and gnuplot plots.

usage: bench_report.py RESULTS_JSON OUT_DIR
Writes OUT_DIR/BENCHMARKS.md and OUT_DIR/bench/*.png (and the .dat files the plots read).
Regenerating from an existing results.json needs no servers: the report is only a view of it.
"""

import json
import os
import statistics
import subprocess
import sys

SYSTEM_NAMES = {"sluice": "Sluice", "redis": "Redis Streams", "nats": "NATS JetStream", "mock": "librdkafka mock"}
MODE_NAMES = {
    ("sluice", "durable"): "durable: fdatasync before ack (flush.messages=1), acks=all",
    ("sluice", "nondurable"): "not durable: flush.messages=2^63-1, flush.ms=1000, acks=1",
    ("redis", "durable"): "durable: AOF appendfsync always",
    ("redis", "nondurable"): "not durable: AOF appendfsync no",
    ("nats", "durable"): "durable, emulated: file store on a chattr +S directory",
    ("nats", "nondurable"): "as shipped: file store, acks after write(2), fsync every 2 min",
    ("mock", "nondurable"): "in memory (the client's ceiling)",
}


def median(values):
    return statistics.median(values) if values else None


def fmt(value, digits=0, unit=""):
    if value is None:
        return "—"
    if digits == 0:
        return f"{value:,.0f}{unit}"
    return f"{value:,.{digits}f}{unit}"


def window_text(results):
    """', N MiB a partition' for the page cache window the run's Sluice had (older results lack it)."""
    window = results.get("settings", {}).get("sluice_page_cache_window_bytes")
    if not isinstance(window, int):
        return ""
    return ", off" if window == 0 else f", {window / 2**20:g} MiB a partition"


def fmt_ms(value):
    if value is None:
        return "—"
    if value < 1:
        return f"{value:.3f}"
    if value < 100:
        return f"{value:.2f}"
    return f"{value:,.0f}"


class Cell:
    """The measured (not warm-up) runs of one workload x system x mode x label."""

    def __init__(self, runs):
        self.runs = runs
        first = runs[0]
        self.workload, self.system, self.mode, self.label = first["workload"], first["system"], first["mode"], first["label"]

    def values(self, key, source="load"):
        out = []
        for run in self.runs:
            holder = run["load"] if source == "load" else run
            if holder.get(key) is not None:
                out.append(holder[key])
        return out

    def med(self, key, source="load"):
        return median(self.values(key, source))

    def range_text(self, key, digits=0, source="load"):
        values = self.values(key, source)
        if not values:
            return "—"
        text = fmt(median(values), digits)
        if len(values) > 1:
            text += f" ({fmt(min(values), digits)}–{fmt(max(values), digits)})"
        return text

    def all_ok(self):
        return all(run["ok"] for run in self.runs)

    def cpu_us_per_message(self):
        per = []
        for run in self.runs:
            count = run["load"].get("acked") or run["load"].get("consumed")
            if run.get("broker_cpu_s") is not None and count:
                per.append(run["broker_cpu_s"] / count * 1e6)
        return median(per)


def cells_of(results, workload):
    groups = {}
    for run in results["runs"]:
        if run["workload"] != workload or run["warmup"]:
            continue
        groups.setdefault((run["system"], run["mode"], run["label"]), []).append(run)
    order = {("sluice", "durable"): 0, ("redis", "durable"): 1, ("nats", "durable"): 2,
             ("sluice", "nondurable"): 3, ("redis", "nondurable"): 4, ("nats", "nondurable"): 5,
             ("mock", "nondurable"): 6}
    keys = sorted(groups, key=lambda k: (order.get((k[0], k[1]), 9), groups[k][0]["params"].get("load_fraction") or 0))
    return [Cell(groups[k]) for k in keys]


def sluice_cell(cells, mode, label=None):
    for cell in cells:
        if cell.system == "sluice" and cell.mode == mode and (label is None or cell.label == label):
            return cell
    return None


def ratio_text(cells, cell, key="msgs_per_s"):
    if cell.system == "sluice":
        return "—"
    # Peers as shipped (non-durable) compare with Sluice non-durable, durable rows with durable.
    sluice = sluice_cell(cells, cell.mode)
    if sluice is None or not cell.med(key) or sluice.med(key) is None:
        return "—"
    return f"{sluice.med(key) / cell.med(key):.2f}x"


def throughput_table(results, workload):
    cells = cells_of(results, workload)
    if not cells:
        return ["(not run)"]
    lines = ["| system | mode | msgs/s median (min–max) | MB/s | ack p50 / p99 / p99.9 ms | broker CPU s | "
             "broker CPU µs/msg | broker peak RSS MB | client CPU s | Sluice/peer | stored = acked |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|"]
    for cell in cells:
        lines.append(
            f"| {SYSTEM_NAMES[cell.system]} | {MODE_NAMES[(cell.system, cell.mode)]} | {cell.range_text('msgs_per_s')} | "
            f"{fmt(cell.med('mb_per_s'), 1)} | {fmt_ms(cell.med('ack_p50_ms'))} / {fmt_ms(cell.med('ack_p99_ms'))} / "
            f"{fmt_ms(cell.med('ack_p999_ms'))} | {fmt(cell.med('broker_cpu_s', 'run'), 2)} | "
            f"{fmt(cell.cpu_us_per_message(), 2)} | {fmt(max(cell.values('broker_peak_rss_mb', 'run') or [0]))} | "
            f"{fmt(cell.med('client_cpu_s', 'run'), 2)} | {ratio_text(cells, cell)} | "
            f"{'yes' if cell.all_ok() else '**NO**'} |")
    return lines


def latency_table(results):
    cells = cells_of(results, "w5")
    if not cells:
        return ["(not run)"]
    lines = ["| system | mode | load (of its w1 peak) | achieved msgs/s | end-to-end p50 / p99 / p99.9 ms | "
             "ack p50 / p99 / p99.9 ms | broker CPU s | broker peak RSS MB | Sluice e2e p99 ÷ peer's (> 1: Sluice slower) | all consumed |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|:---:|"]
    for cell in cells:
        ratio = "—"
        if cell.system != "sluice" and not cell.runs[0]["params"].get("client_floor_for"):
            fraction = cell.runs[0]["params"].get("load_fraction")
            for other in cells:
                if other.system == "sluice" and other.mode == cell.mode and \
                        other.runs[0]["params"].get("load_fraction") == fraction and cell.med("e2e_p99_ms"):
                    ratio = f"{other.med('e2e_p99_ms') / cell.med('e2e_p99_ms'):.2f}x"
        lines.append(
            f"| {SYSTEM_NAMES[cell.system]} | {MODE_NAMES[(cell.system, cell.mode)]} | {cell.label} | "
            f"{fmt(cell.med('msgs_per_s'))} | {fmt_ms(cell.med('e2e_p50_ms'))} / {fmt_ms(cell.med('e2e_p99_ms'))} / "
            f"{fmt_ms(cell.med('e2e_p999_ms'))} | {fmt_ms(cell.med('ack_p50_ms'))} / {fmt_ms(cell.med('ack_p99_ms'))} / "
            f"{fmt_ms(cell.med('ack_p999_ms'))} | {fmt(cell.med('broker_cpu_s', 'run'), 2)} | "
            f"{fmt(max(cell.values('broker_peak_rss_mb', 'run') or [0]))} | {ratio} | "
            f"{'yes' if cell.all_ok() else '**NO**'} |")
    return lines


def backlog_table(results):
    cells = [c for c in cells_of(results, "w4") if c.label.startswith("read")]
    fills = [r for r in results["runs"] if r["workload"] == "w4" and r["label"].startswith("fill")]
    if not cells:
        return ["(not run)"]
    first_reads = [r for r in results["runs"] if r["workload"] == "w4" and r["label"].startswith("read") and r.get("warmup")]
    lines = ["| system | backlog | fill msgs/s (MB/s) | first read MB/s | read msgs/s median (min–max) | read MB/s | "
             "broker CPU s | broker peak RSS MB | Sluice/peer | read = stored |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|:---:|"]
    sluice = next((c for c in cells if c.system == "sluice"), None)
    for cell in cells:
        fill = next((r for r in fills if r["system"] == cell.system), None)
        fill_text = (f"{fmt(fill['load'].get('msgs_per_s'))} ({fmt(fill['load'].get('mb_per_s'), 0)})" if fill else "—")
        first = next((r for r in first_reads if r["system"] == cell.system), None)
        first_text = fmt(first["load"].get("consumed_mb_per_s"), 0) if first else "—"
        ratio = "—"
        if cell.system != "sluice" and sluice and cell.med("consumed_mb_per_s"):
            ratio = f"{sluice.med('consumed_mb_per_s') / cell.med('consumed_mb_per_s'):.2f}x"
        lines.append(
            f"| {SYSTEM_NAMES[cell.system]} | {cell.label.split(' ', 1)[1]} | {fill_text} | {first_text} | "
            f"{cell.range_text('msgs_per_s')} | "
            f"{fmt(cell.med('consumed_mb_per_s'), 0)} | {fmt(cell.med('broker_cpu_s', 'run'), 2)} | "
            f"{fmt(max(cell.values('broker_peak_rss_mb', 'run') or [0]))} | {ratio} | {'yes' if cell.all_ok() else '**NO**'} |")
    return lines


def retention_table(results):
    runs = [r for r in results["runs"] if r["workload"] == "w6"]
    if not runs:
        return ["(not run)"]
    lines = ["| system | mode | target | achieved msgs/s | ack p50 / p99 / p99.9 ms | stored at end / acked | "
             "RSS over the run MB (min–max) | broker peak RSS MB | broker CPU s | data on disk at end MB |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for run in runs:
        load = run["load"]
        samples = [s[1] for s in run.get("rss_samples_mb", [])]
        rss = f"{min(samples):,.0f}–{max(samples):,.0f}" if samples else "—"
        disk = fmt(run["data_bytes_after"] / 1e6) if run.get("data_bytes_after") is not None else "—"
        lines.append(
            f"| {SYSTEM_NAMES[run['system']]} | {MODE_NAMES[(run['system'], run['mode'])]} | {run['label']} | "
            f"{fmt(load.get('msgs_per_s'))} | {fmt_ms(load.get('ack_p50_ms'))} / {fmt_ms(load.get('ack_p99_ms'))} / "
            f"{fmt_ms(load.get('ack_p999_ms'))} | {fmt(load.get('stored'))} / {fmt(load.get('acked'))} | {rss} | "
            f"{fmt(run.get('broker_peak_rss_mb'))} | {fmt(run.get('broker_cpu_s'), 2)} | {disk} |")
    return lines


def limits_table(results):
    lines = ["| when | limit | result |", "|---|---|---|"]
    for limit in results["limits"]:
        when = limit.get("context", "")
        if limit["mode"] == "disk":
            spread = (f" ({limit['mb_per_s_min']:,.1f}–{limit['mb_per_s_max']:,.1f})"
                      if "mb_per_s_min" in limit and limit["mb_per_s_min"] != limit["mb_per_s_max"] else "")
            over = f", over {limit['elapsed_s']:.0f} s" if limit.get("elapsed_s", 0) > 5 else ""
            lines.append(f"| {when} | pwrite + fdatasync, {limit['sync_bytes']:,} B per sync (appending to a new file{over}) | "
                         f"{limit['mb_per_s']:,.1f} MB/s{spread}, {limit['syncs_per_s']:,.0f} syncs/s, "
                         f"sync p50 {fmt_ms(limit['sync_p50_ms'])} ms, p99 {fmt_ms(limit['sync_p99_ms'])} ms |")
        else:
            lines.append(f"| {when} | loopback TCP, one connection, {limit['chunk_bytes']:,} B writes | "
                         f"{limit['mb_per_s']:,.0f} MB/s |")
            lines.append(f"| {when} | loopback TCP, 100 B ping-pong round trip | p50 {limit['rtt_p50_ms'] * 1000:,.0f} µs, "
                         f"p99 {limit['rtt_p99_ms'] * 1000:,.0f} µs, p99.9 {limit['rtt_p999_ms'] * 1000:,.0f} µs |")
    return lines


def disk_limit_at(results, sync_bytes, context=None):
    """The raw-sync measurement taken right after `context` (else the nearest size)."""
    candidates = [l for l in results["limits"] if l["mode"] == "disk"]
    matching = [l for l in candidates if context and l.get("context") == context]
    if matching:
        return matching[0]
    if not candidates or not sync_bytes:
        return None
    return min(candidates, key=lambda l: abs(l["sync_bytes"] - sync_bytes))


def targets(results):
    """Issue 8's targets, each with the measured value and whether it holds."""
    w1 = cells_of(results, "w1")
    w2 = cells_of(results, "w2")
    w5 = cells_of(results, "w5")
    get = lambda cells, system, mode: next((c for c in cells if c.system == system and c.mode == mode), None)
    rows = []

    def ratio_row(name, numerator, denominator, goal):
        if numerator is None or denominator is None or not denominator.med("msgs_per_s"):
            rows.append(f"| {name} | not measured | — |")
            return
        ratio = numerator.med("msgs_per_s") / denominator.med("msgs_per_s")
        rows.append(f"| {name} | {fmt(numerator.med('msgs_per_s'))} / {fmt(denominator.med('msgs_per_s'))} msgs/s = "
                    f"**{ratio:.2f}x** | {'yes' if ratio >= goal else f'no ({ratio / goal:.0%} of the target)'} |")
    ratio_row("durable w1 >= 3x Redis (appendfsync always)", get(w1, "sluice", "durable"), get(w1, "redis", "durable"), 3)
    ratio_row("durable w1 >= 3x NATS as shipped (unsynced)", get(w1, "sluice", "durable"), get(w1, "nats", "nondurable"), 3)
    ratio_row("non-durable w1 >= 0.8x librdkafka mock", get(w1, "sluice", "nondurable"), get(w1, "mock", "nondurable"), 0.8)
    sluice_w2 = get(w2, "sluice", "durable")
    if sluice_w2 and sluice_w2.med("bytes_per_fsync", "run"):
        sync = sluice_w2.med("bytes_per_fsync", "run")
        limit = disk_limit_at(results, sync, "after w2 sluice durable")
        holds = False
        if limit:
            share = sluice_w2.med("mb_per_s") / limit["mb_per_s"]
            holds = share >= 0.7
            rows.append(f"| durable w2 MB/s >= 70% of raw fdatasync at the same sync size | {fmt(sluice_w2.med('mb_per_s'), 1)} MB/s "
                        f"vs {fmt(limit['mb_per_s'], 1)} MB/s raw at {limit['sync_bytes']:,} B/sync = **{share:.1%}** | "
                        f"{'yes' if holds else 'no'} |")
        # What the 2 vCPUs allow: the load client and the broker share them, the raw loop did not.
        client, broker, wall = (sluice_w2.med(key, "run") for key in ("client_cpu_s", "broker_cpu_s", "wall_s"))
        if client and broker and wall:
            cores = (client + broker) / wall
            ceiling = sluice_w2.med("mb_per_s") * 2 / (client / wall) if client else None
            label = "(context)" if holds else "(why)"
            rows.append(f"| {label} CPU in the durable w2 runs | client {client / wall:.2f} + broker {broker / wall:.2f} = "
                        f"{cores:.2f} of 2 vCPUs; the client alone caps any broker at ~{fmt(ceiling, 1)} MB/s here | — |")
            # The CPU the target rate itself needs: the client at its cheapest (against the mock,
            # which does no work) plus Sluice's broker at its own measured cost per MB.
            mock_w2 = get(w2, "mock", "nondurable")
            if limit and mock_w2 and mock_w2.med("mb_per_s"):
                goal = 0.7 * limit["mb_per_s"]
                per_mb = lambda cell, key: cell.med(key, "run") / (cell.med("mb_per_s") * cell.med("wall_s", "run"))
                client_per_mb = per_mb(mock_w2, "client_cpu_s")
                broker_per_mb = per_mb(sluice_w2, "broker_cpu_s")
                client_cores = goal * client_per_mb
                broker_cores = goal * broker_per_mb
                rows.append(f"| {label} CPU the target rate needs | at {fmt(goal, 0)} MB/s: the client at its cost against the mock "
                            f"({client_per_mb * 1e3:.2f} ms CPU/MB) {client_cores:.2f} + Sluice's broker at its measured "
                            f"{broker_per_mb * 1e3:.2f} ms/MB {broker_cores:.2f} = {client_cores + broker_cores:.2f} "
                            f"of 2 vCPUs, before the kernel's writeback, softirq and loopback work | — |")
    else:
        rows.append("| durable w2 MB/s >= 70% of raw fdatasync at the same sync size | not measured | — |")
    def at_half(system, mode):
        return next((c for c in w5 if c.system == system and c.mode == mode
                     and c.runs[0]["params"].get("load_fraction") == 0.5), None)
    half = at_half("sluice", "durable")
    if half and half.med("e2e_p99_ms") is not None:
        p99 = half.med("e2e_p99_ms")
        rows.append(f"| durable e2e p99 at 50% load <= 2 ms | **{fmt_ms(p99)} ms** | {'yes' if p99 <= 2 else 'no'} |")
        floor = next((c for c in w5 if c.system == "mock" and c.runs[0]["params"].get("client_floor_for")), None)
        if floor and floor.med("ack_p99_ms") is not None:
            rows.append(f"| (why) the client alone at that rate: librdkafka's ack p99 against the in-memory mock at "
                        f"{floor.label.split('= ')[-1]} | {fmt_ms(floor.med('ack_p99_ms'))} ms (Sluice durable's ack p99 there: "
                        f"{fmt_ms(half.med('ack_p99_ms'))} ms) | — |")
        # What else misses it, each at half its own workload-1 peak: Sluice with no fdatasync on any
        # message's path, and the peers (docs/performance.md has the rest of the diagnosis).
        seen = []
        for system, mode, name in (("sluice", "nondurable", "Sluice non-durable (no fdatasync on the path)"),
                                   ("redis", "durable", "Redis Streams durable"),
                                   ("nats", "durable", "NATS JetStream durable")):
            cell = at_half(system, mode)
            if cell and cell.med("e2e_p99_ms") is not None:
                seen.append(f"{name} at {cell.label.split('= ')[-1]}: {fmt_ms(cell.med('e2e_p99_ms'))} ms")
        if seen:
            rows.append(f"| (why) others at half their own peak, e2e p99 | {'; '.join(seen)} | — |")
    else:
        rows.append("| durable e2e p99 at 50% load <= 2 ms | not measured | — |")
    light = next((c for c in w5 if c.system == "sluice" and c.mode == "durable"
                  and not c.runs[0]["params"].get("load_fraction")), None)
    if light and light.med("e2e_p99_ms") is not None:
        rows.append(f"| (for reference) durable e2e p99 at a light {light.label.split()[-1]} | "
                    f"{fmt_ms(light.med('e2e_p99_ms'))} ms | — |")
    sluice_rss = [r.get("broker_peak_rss_mb") for r in results["runs"] if r["system"] == "sluice" and r.get("broker_peak_rss_mb")]
    if sluice_rss:
        rows.append(f"| broker RSS bounded under every workload | peak {max(sluice_rss):,.0f} MB over all Sluice runs | see w6 |")
    return ["| target (issue 8) | measured | holds |", "|---|---|---|"] + rows


# ---- plots ----

def gnuplot(script, out_dir):
    result = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True, cwd=out_dir)
    if result.returncode != 0:
        print(f"bench_report: gnuplot: {result.stderr}", file=sys.stderr)
        return False
    return True


def plot_throughput(results, workload, key, ylabel, name, bench_dir):
    cells = cells_of(results, workload)
    if not cells:
        return None
    data = os.path.join(bench_dir, f"{name}.dat")
    with open(data, "w") as out:
        for cell in cells:
            values = cell.values(key)
            label = f"{SYSTEM_NAMES[cell.system]}\\n{'durable' if cell.mode == 'durable' else 'not durable'}"
            out.write(f"\"{label}\" {median(values)} {min(values)} {max(values)}\n")
    script = f"""
set terminal pngcairo size 1000,520 font "Sans,10"
set output "{name}.png"
set title "{WORKLOAD_TITLES[workload]}: {ylabel} (median, min-max over runs)"
set style data histogram
set style histogram errorbars gap 1 lw 1
set style fill solid 0.7 border -1
set ylabel "{ylabel}"
set logscale y
set yrange [*:*]
set grid ytics
set xtics font ",9"
set bmargin 5
set key off
plot "{name}.dat" using 2:3:4:xtic(1) lc rgb "#3b75af"
"""
    return f"bench/{name}.png" if gnuplot(script, bench_dir) else None


def plot_latency(results, bench_dir):
    cells = cells_of(results, "w5")
    if not cells:
        return None
    series = {}
    for cell in cells:
        if cell.med("e2e_p99_ms") is not None and cell.runs[0]["params"].get("load_fraction"):
            series.setdefault((cell.system, cell.mode), []).append(cell)
    plots = []
    for index, ((system, mode), group) in enumerate(series.items()):
        data = os.path.join(bench_dir, f"latency-{system}-{mode}.dat")
        with open(data, "w") as out:
            for cell in sorted(group, key=lambda c: c.runs[0]["params"]["load_fraction"]):
                out.write(f"{cell.runs[0]['params']['load_fraction'] * 100:.0f} {cell.med('e2e_p50_ms') or 'NaN'} "
                          f"{cell.med('e2e_p99_ms') or 'NaN'} {cell.med('e2e_p999_ms') or 'NaN'}\n")
        title = f"{SYSTEM_NAMES[system]} {'durable' if mode == 'durable' else 'not durable'}"
        plots.append(f'"latency-{system}-{mode}.dat" using 1:3 with linespoints lw 2 pt {index + 4} title "{title}"')
    if not plots:
        return None
    script = f"""
set terminal pngcairo size 1000,560 font "Sans,10"
set output "latency-w5.png"
set title "Workload 5: end-to-end p99 latency from the intended send time, by load (share of each system's own w1 peak)"
set xlabel "offered load, % of the system's workload-1 peak"
set ylabel "p99 end-to-end latency, ms"
set logscale y
set grid
set key outside right
set xrange [20:80]
plot {", ".join(plots)}
"""
    return "bench/latency-w5.png" if gnuplot(script, bench_dir) else None


WORKLOAD_TITLES = {"w1": "Workload 1", "w2": "Workload 2", "w3": "Workload 3", "w4": "Workload 4"}


# ---- the document ----

def write_report(results, out_dir):
    bench_dir = os.path.join(out_dir, "bench")
    os.makedirs(bench_dir, exist_ok=True)
    machine = results["machine"]
    versions = machine["versions"]
    settings = results["settings"]
    lines = ["# Benchmarks: Sluice side by side with its peers", "",
             f"Generated by `{results['command']}` on {results['generated']} in {results['elapsed_s'] / 60:.1f} min "
             f"({'SMOKE run: one short run per cell, numbers meaningless' if results['smoke'] else 'full run'}). "
             "Do not edit by hand: rerun the script. Machine-readable: [`bench/results.json`](bench/results.json) "
             "(every run, with its exact load-client command).", "",
             "## Machine", "",
             f"* {machine['nproc']} vCPUs ({machine['cpu']}), {machine['memory_gib']} GiB RAM, kernel {machine['kernel']}, "
             f"{machine['os']}",
             f"* disk: {machine['disk']['device']} ({machine['disk']['filesystem']}, "
             f"the kernel reports it {'rotational' if machine['disk']['rotational'] else 'non-rotational'}; a virtual disk); "
             "every data directory under "
             f"`{machine['disk']['work_dir']}`",
             f"* load average {results['load_average']['start'][0]:.1f} at the start, {results['load_average']['end'][0]:.1f} "
             "at the end (1-minute). Client, broker and anything else running share the same cores: the client's CPU "
             "is in every table, and numbers move by ±30% between runs on this shared machine.",
             f"* versions: {versions['sluice']} (commit {versions['sluice_commit']}, {machine['build_type']} build); "
             f"{versions['redis'].split(' sha=')[0]}; nats-server {versions['nats']}; librdkafka {versions['librdkafka']}; "
             f"hiredis {versions['hiredis']}; libnats {versions['libnats']}; {versions['compiler']}", "",
             "## Method", "",
             f"* Every run starts a fresh server (loopback, free ports, data in a temporary directory) and stops it "
             f"afterwards. Each cell is {settings['runs_per_cell']} measured run(s) of {settings['duration_s']:g} s"
             f"{', after a discarded warm-up run of %g s' % settings['warmup_s'] if settings['warmup_s'] else ''}; "
             "tables show the median and (min–max).",
             "* msgs/s = acknowledged messages / (last ack - first send); MB = 10^6 bytes of message value. Ack latency "
             "is from the intended send time to the ack (in saturated runs that is mostly time queued in the client).",
             "* Broker CPU s = utime+stime of the server process over the run (/proc/PID/stat); peak RSS = VmHWM, "
             "reset before each run (/proc/PID/clear_refs). Client CPU s = the load client's utime+stime.",
             "* Every run checks the stored count against the acks: Sluice and the mock through ListOffsets "
             "(high watermark - log start) from a fresh client, and Sluice again with `sluice topic describe --json`; "
             "Redis with XLEN; NATS with stream info. A mismatch fails the run (and `ci/bench.sh`).",
             "* Load clients (bench/peers, C++): `sluice-kafka-load` (librdkafka; linger.ms=5 for throughput, 1 for "
             "latency and workload 3; at most 32 MiB of message values unacknowledged per producer, the Java producer's "
             "default buffer.memory: 32,768 messages of 1 KiB, 335,544 of 100 B), `sluice-redis-load` (hiredis, pipelined XADD, "
             "1000 commands in flight per connection), `sluice-nats-load` (libnats, js_PublishAsync, 4096 in flight).",
             "* Latency (workload 5) is open loop: message i is due at start + i/rate and its latency counts from "
             "then, so stalls are not hidden by a slowed-down sender (coordinated omission). End-to-end = due time "
             "to arrival at a consumer in the same process (librdkafka consumer, XREAD BLOCK, ordered push consumer).",
             f"* Sluice not durable syncs every {settings['nondurable_flush_ms']} ms (flush.ms); as in Kafka, what it "
             "acknowledges is readable at once, before the sync.",
             "* The mock cluster keeps only the last few MB of each partition, less than a consumer can keep up with at its "
             "rates: its workload-5 rows have ack latency only, and it is not in workload 4.",
             "", "Durability modes:", ""]
    for (system, mode), text in MODE_NAMES.items():
        lines.append(f"* {SYSTEM_NAMES[system]}, {text}")
    lines += ["", "## Issue 8 targets", ""] + targets(results)
    sections = [("w1", "Workload 1: one producer, one partition, 100 B", "msgs_per_s", "msgs/s"),
                ("w2", "Workload 2: 1 KiB messages over 16 partitions", "mb_per_s", "MB/s"),
                ("w3", "Workload 3: 50 producers, keyed small batches", "msgs_per_s", "msgs/s")]
    for workload, title, key, ylabel in sections:
        lines += ["", f"## {title}", "", results["workloads"][workload] + ".", ""] + throughput_table(results, workload)
        if workload == "w2":
            sluice = sluice_cell(cells_of(results, "w2"), "durable")
            if sluice and sluice.med("bytes_per_fsync", "run"):
                limit = disk_limit_at(results, sluice.med("bytes_per_fsync", "run"), "after w2 sluice durable")
                lines += ["", f"Sluice durable wrote {fmt(sluice.med('bytes_per_fsync', 'run'))} B per fdatasync "
                              f"(median); the raw pwrite+fdatasync loop at {limit['sync_bytes']:,} B, measured right "
                              f"after these runs, reaches {limit['mb_per_s']:,.1f} MB/s on this disk."]
        if workload == "w1":
            sluice = sluice_cell(cells_of(results, "w1"), "durable")
            if sluice and sluice.med("bytes_per_fsync", "run"):
                lines += ["", f"Sluice durable wrote {fmt(sluice.med('bytes_per_fsync', 'run'))} B per fdatasync (median)."]
        plot = plot_throughput(results, workload, key, ylabel, f"throughput-{workload}", bench_dir)
        if plot:
            lines += ["", f"![{title}]({plot})"]
    lines += ["", "## Workload 5: end-to-end latency at fixed rates", "", results["workloads"]["w5"] + ".", ""]
    lines += latency_table(results)
    plot = plot_latency(results, bench_dir)
    if plot:
        lines += ["", f"![latency]({plot})"]
    lines += ["", "## Workload 4: catch-up read of a backlog", "", results["workloads"]["w4"] +
              " (filled once in non-durable mode; one consumer reads it once right after the fill, then in the measured runs; not the mock, which keeps only the last few MB of each partition)."
              f" Sluice drops synced data more than its page cache window (`storage.page_cache_window_bytes`{window_text(results)}) behind the end from the page cache,"
              " so its first read comes from the disk; what a read brings back stays cached, so its measured reads, like the peers' (Redis holds streams in RAM,"
              " NATS's file store stays in the page cache), are from memory.", ""]
    lines += backlog_table(results)
    lines += ["", "## Workload 6: retention", "", results["workloads"]["w6"] +
              " (Sluice retention.bytes per partition, segments of a quarter of that, retention checked every second; Redis XADD MAXLEN ~; NATS MaxBytes; the peers non-durable so that their rate fills the limit).", ""]
    lines += retention_table(results)
    sustained = next((l for l in results["limits"] if l.get("context") == "before w6, sustained"), None)
    if sustained:
        lines += ["", f"Just before these runs the raw pwrite+fdatasync loop (1 MiB per sync) sustained "
                      f"{sustained['mb_per_s']:,.1f} MB/s for {sustained['elapsed_s']:.0f} s on this disk (its short runs reach more: "
                      f"a virtual disk absorbs bursts), so no row can sustain more than that; a row whose achieved rate is "
                      f"below its target ran into the disk, and its ack latency is then time queued in the client."]
    lines += ["", "## Physical limits, measured in the same run", ""] + limits_table(results)
    if results["failures"]:
        lines += ["", "## Failures", ""] + [f"* {f.splitlines()[0]}" for f in results["failures"]]
    if results["notes"]:
        lines += ["", "## Notes", ""] + [f"* {n}" for n in results["notes"]]
    with open(os.path.join(out_dir, "BENCHMARKS.md"), "w") as out:
        out.write("\n".join(lines) + "\n")


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1]) as source:
        results = json.load(source)
    write_report(results, os.path.abspath(sys.argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
