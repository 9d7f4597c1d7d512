"""Timings apart from results.

Wall-clock measurements (seconds, rates per second, latencies, load averages, peak memory)
differ between two runs of the same config on the same machine; results must not. So every
step writes its results and its timings to different files: the results file holds no
timing field, and the timing file (under a `timing/` folder of the stage, see
lmlab.paper.compare.is_timing) mirrors the results' structure with only the timing fields.
Readers that want both (the paper's cost and agents sections) merge them back with
`read_results(path, timing_path)`.

Which fields are timings is decided by their key, in one place (`is_timing_key`).
"""

from lmlab.core.io import read_json, write_json

# Keys that are wall-clock or load-dependent measurements whatever their suffix.
TIMING_KEYS = {
    "timing",
    "seconds",
    "load_average",
    "load_average_1m",
    "probe_gflops",
    "peak_memory_bytes",
    "peak_memory_mib",
}
# Seconds (`wall_s`, `train_s`, `generate_s`), rates (`tokens_per_s`, `tokens_per_s_wall`),
# latencies, and shares of a measured rate (`achieved_over_probe`).
TIMING_SUFFIXES = ("_s", "_seconds", "_s_total", "_seconds_total", "_s_per_item", "_s_max", "_wall")
TIMING_PARTS = ("latency", "_per_s_", "over_probe")


def is_timing_key(key):
    key = str(key)
    return key in TIMING_KEYS or key.endswith(TIMING_SUFFIXES) or any(part in key for part in TIMING_PARTS)


def split_timing(data):
    """(results, timing): `data` without its timing fields, and those fields alone in the
    same nesting (dicts only; lists are results unless under a timing key)."""
    if not isinstance(data, dict):
        return data, None
    results, timing = {}, {}
    for key, value in data.items():
        if is_timing_key(key):
            timing[key] = value
        elif isinstance(value, dict):
            sub_results, sub_timing = split_timing(value)
            results[key] = sub_results
            if sub_timing:
                timing[key] = sub_timing
        else:
            results[key] = value
    return results, timing


def strip_timing(value):
    """`value` without timing fields at any depth, lists of records included (trace rows)."""
    if isinstance(value, dict):
        return {k: strip_timing(v) for k, v in value.items() if not is_timing_key(k)}
    if isinstance(value, list):
        return [strip_timing(v) for v in value]
    return value


def merge_timing(results, timing):
    """The inverse of split_timing: results with the timing fields put back."""
    if not isinstance(results, dict) or not isinstance(timing, dict):
        return results if timing is None else timing
    merged = dict(results)
    for key, value in timing.items():
        merged[key] = merge_timing(merged[key], value) if key in merged else value
    return merged


def write_results(path, data, timing_path):
    """Write `data`'s results to `path` and its timing fields to `timing_path`; returns data."""
    results, timing = split_timing(data)
    write_json(path, results)
    write_json(timing_path, timing or {})
    return data


def read_results(path, timing_path=None):
    """A results file with its timings merged back (when `timing_path` is given)."""
    results = read_json(path)
    return merge_timing(results, read_json(timing_path)) if timing_path else results
