#!/usr/bin/env python3
"""How much does recording a tape cost?  gradviz against PyTorch, HIPS autograd and numpy.

Two measurements, each printed as a table with ratios:

1. Per-op overhead: a chain of N ops (mul, sin, add, tanh, repeated) on
   4-element float32 tensors, forward then ``.sum().backward()``, in
   microseconds per op.  The arithmetic is negligible here, so this is the
   cost of the machinery.  Target: gradviz <= 0.7x PyTorch's time per op.
2. Large arrays: the same block on 10^6-element float32 and float64 arrays,
   a short chain (20 ops).  Here the arithmetic dominates, and an engine should
   add little to a hand-written numpy forward and backward.  Target: gradviz
   <= 1.15x the numpy floor.

Method: every contender runs in its own process, imported once, so that one
library's live objects never add to another's garbage-collection work.  The
driver interleaves the repetitions (numpy, gradviz, torch, autograd, numpy,
gradviz, ...), so slow drifts of this shared machine hit every contender
alike, and reports the median.  Python's GC stays enabled, as users have it;
gradviz is also timed with GC disabled, to show what the collector costs.
Each contender's gradient is checked against the numpy floor before timing.

Usage::

    python bench/overhead.py                  # full run (about half a minute)
    python bench/overhead.py --quick          # smoke run
    python bench/overhead.py -n 50000 --repeats 11 --json out.json
    python bench/overhead.py --profile        # cProfile of the gradviz chain only

See bench/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from _common import (  # noqa: E402
    BLOCK, CONTENDERS, LABELS, blocks_for, floor_grad, make_inputs,
)

PER_OP_TARGET = 0.7     # gradviz time per op / PyTorch's
PER_OP_CEILING = 1.0    # never slower than PyTorch
TARGET_N = 20_000       # the per-op target is set for a chain of this many ops
LARGE_TARGET = 1.15     # gradviz time / the numpy floor's, on 10^6 elements
WRONG = "FAIL (gradviz's gradient is wrong: not timed)"


# -- talking to the contender processes ----------------------------------------------


class Worker:
    """One contender in its own Python process, answering JSON commands."""

    def __init__(self, name: str, env: dict, tmp: Path) -> None:
        self.name = name
        self.errlog = tmp / f"{name}.stderr"
        self._err = open(self.errlog, "w")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err, text=True,
            env=env, bufsize=1)
        hello = self._read()
        self.ready = bool(hello.get("ready"))
        self.error = hello.get("error")
        self.versions = hello.get("versions", {})

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=30)
            tail = self.errlog.read_text()[-2000:] if self.errlog.exists() else ""
            return {"ready": False, "ok": False,
                    "error": f"process exited ({self.proc.returncode}): {tail.strip()}"}
        return json.loads(line)

    def ask(self, **cmd) -> dict:
        if not self.ready:
            return {"ok": False, "error": self.error}
        try:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            self.ready, self.error = False, f"process gone: {exc}"
            return {"ok": False, "error": self.error}
        res = self._read()
        if not res.get("ok") and self.proc.poll() is not None:
            self.ready, self.error = False, res.get("error")
        return res

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"cmd": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._err.close()



def _timing_cells(key: str, s: dict, digits: int) -> list[str]:
    """A contender's label, median, range and forward/backward/free phases, as table cells."""
    ph = s.get("phases")
    phases = [f"{p:.{digits}f}" for p in ph[:3]] if ph else ["-", "-", "-"]
    return [LABELS[key], f"{s['median']:.{digits}f}",
            f"{s['min']:.{digits}f}-{s['max']:.{digits}f}"] + phases

def worker_env() -> dict:
    env = dict(os.environ)
    # One thread everywhere: PyTorch is also told so in its process; numpy's
    # elementwise ufuncs are single-threaded anyway.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = "1"
    env["PYTHONHASHSEED"] = "0"
    return env


# -- correctness -----------------------------------------------------------------------


def finite_difference_check() -> float:
    """Validate the numpy floor itself: its gradient vs central differences, in float64."""
    x0, w, b = make_inputs(4, "float64", "check", seed=7)
    blocks = 6
    g = floor_grad(x0, w, b, blocks)

    def loss(x):
        y = x
        for _ in range(blocks):
            y = np.tanh(np.sin(y * w) + b)
        return y.sum()

    h = 1e-6
    fd = np.array([(loss(x0 + h * e) - loss(x0 - h * e)) / (2 * h) for e in np.eye(4)])
    err = float(np.max(np.abs(fd - g)))
    if err > 1e-7:
        raise SystemExit(f"the numpy floor's gradient is wrong: max error {err:g} vs "
                         "finite differences")
    return err


def compare(got: np.ndarray, want: np.ndarray, rtol: float) -> tuple[bool, float]:
    """Elementwise closeness, with an absolute floor scaled to the gradient's size."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return False, float("inf")
    atol = rtol * float(np.max(np.abs(want))) * 1e-2
    err = np.abs(got - want) / (np.abs(want) + atol / rtol)
    worst = float(np.max(err)) if err.size else 0.0
    return bool(np.allclose(got, want, rtol=rtol, atol=atol)), worst


def check_contender(worker: Worker, config: dict, want: np.ndarray, rtol: float,
                    tmp: Path, tag: str) -> dict:
    """Run ``config`` once in ``worker`` and compare its gradient with ``want``."""
    path = tmp / f"{worker.name}-{tag}.npy"
    res = worker.ask(cmd="run", save=str(path), **config)
    if not res.get("ok"):
        return {"ok": False, "error": res.get("error"), "trace": res.get("trace")}
    ok, worst = compare(np.load(path), want, rtol)
    path.unlink(missing_ok=True)
    return {"ok": ok, "worst_rel_err": worst, "rtol": rtol,
            "error": None if ok else f"gradient differs from the numpy floor "
                                     f"(worst relative error {worst:.2e} > {rtol:g})"}


# -- timing ----------------------------------------------------------------------------


def interleave(slots: list[tuple[str, Worker, dict]], repeats: int,
               progress: str) -> dict[str, list[dict]]:
    """Run every slot once per round, ``repeats`` rounds: A B C D A B C D ..."""
    samples: dict[str, list[dict]] = {key: [] for key, _, _ in slots}
    tty = sys.stderr.isatty()
    for r in range(repeats):
        if tty:
            print(f"\r  {progress}: round {r + 1}/{repeats}", end="", file=sys.stderr,
                  flush=True)
        for key, worker, cmd in slots:
            res = worker.ask(cmd="run", **cmd)
            if res.get("ok"):
                samples[key].append(res)
            else:
                print(f"\n  {key}: {res.get('error')}", file=sys.stderr)
    if tty:
        print("\r" + " " * 60 + "\r", end="", file=sys.stderr, flush=True)
    return samples


def summarize(runs: list[dict], divisor: float) -> dict | None:
    """Median, min and max of the totals (divided by ``divisor``), phases and GC share."""
    if not runs:
        return None
    totals = [r["total"] / divisor for r in runs]
    out = {"median": statistics.median(totals), "min": min(totals), "max": max(totals),
           "n": len(totals), "samples": totals}
    phases = [r["phases"] for r in runs if r.get("phases")]
    if phases:
        out["phases"] = [statistics.median(p[i] for p in phases) / divisor for i in range(3)]
    out["gc_share"] = statistics.median(r["gc_s"] / r["total"] for r in runs)
    out["gc_counts"] = runs[len(runs) // 2]["gc_counts"]
    if all(r.get("cpu") for r in runs):
        out["cpu_median"] = statistics.median(r["cpu"] for r in runs) / divisor
        # > 1: the process sat waiting for a CPU (another load ran on this machine).
        out["wall_over_cpu"] = statistics.median(r["total"] / r["cpu"] for r in runs)
    if all(r.get("minor_faults") is not None for r in runs):
        out["minor_faults"] = statistics.median(r["minor_faults"] for r in runs)
        out["max_rss_mb"] = max(r["max_rss_kb"] for r in runs) / 1024
    return out


def noise_note(stats: dict) -> None:
    """Warn when the timed processes were not alone on their CPU."""
    waits = {k: s["wall_over_cpu"] for k, s in stats.items() if s and "wall_over_cpu" in s}
    worst = max(waits.values(), default=1.0)
    if worst > 1.05:
        print(f"  note: wall time exceeded CPU time by up to {100 * (worst - 1):.0f}% "
              f"(median per contender): something else was running; load average "
              f"{load_average()}. Prefer the paired ratios, or run again on a quiet machine.")


def machine_busy(seconds: float = 1.0) -> float | None:
    """Fraction of all CPUs' time spent busy over ``seconds`` (from /proc/stat), or None."""
    def sample():
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        vals = [int(v) for v in fields]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
        return sum(vals[:8]), idle
    try:
        t0, i0 = sample()
        time.sleep(seconds)
        t1, i1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1 - (i1 - i0) / max(1, t1 - t0)


def wait_until_quiet(max_seconds: float) -> None:
    """Wait (up to ``max_seconds``) until other loads leave at least one CPU idle.

    The benchmark runs one process at a time, so one idle CPU is what it needs
    (a busy sibling hyperthread or memory bus still adds noise).
    """
    cores = os.cpu_count() or 1
    need = max(0.0, cores - 0.9)  # busy CPUs (in CPUs) that still leave ~1 idle
    deadline = time.monotonic() + max_seconds
    while True:
        busy = machine_busy(2.0)
        if busy is None or busy * cores <= need:
            return
        if time.monotonic() > deadline:
            print(f"  still {busy * cores:.1f} of {cores} CPUs busy after waiting "
                  f"{max_seconds:.0f} s; starting anyway", file=sys.stderr)
            return
        print(f"  {busy * cores:.1f} of {cores} CPUs busy; waiting for one to be idle",
              file=sys.stderr)
        time.sleep(8)


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def cpu_ratio(a: dict | None, b: dict | None) -> float | None:
    """Ratio of median CPU times: less hurt than wall time when other loads preempt us."""
    if not a or not b or "cpu_median" not in a or "cpu_median" not in b:
        return None
    return a["cpu_median"] / b["cpu_median"]


def paired_ratio(a: list[dict], b: list[dict]) -> float | None:
    """Median over rounds of a's time / b's time in the same round (robust to drift)."""
    pairs = [x["total"] / y["total"] for x, y in zip(a, b, strict=False)]
    return statistics.median(pairs) if pairs else None


# -- printing --------------------------------------------------------------------------


def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def verdict(ratio: float | None, target: float, ceiling: float | None = None) -> str:
    if ratio is None:
        return "n/a"
    if ratio <= target:
        return "PASS"
    if ceiling is not None and ratio > ceiling:
        return "FAIL (slower than the reference)"
    return "FAIL"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                     for i, (h, w) in enumerate(zip(headers, widths, strict=True)))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths, strict=True))))


# -- the two sections ------------------------------------------------------------------


def per_op_section(workers: dict[str, Worker], args, tmp: Path) -> dict:
    blocks = blocks_for(args.n)
    n_ops = blocks * len(BLOCK)
    config = {"kind": "bench", "size": 4, "dtype": "float32", "blocks": blocks}
    print(f"\n== 1. Per-op overhead: {n_ops} ops ({'/'.join(BLOCK)} x {blocks}) on 4-element "
          f"float32, forward + .sum().backward() ==")

    # Correctness: a short chain with random weights, checked tightly, then the
    # timed chain itself (its warm-up run), checked loosely (float32 over N ops).
    x0, w, b = make_inputs(4, "float32", "check", seed=1)
    want_short = floor_grad(x0, w, b, 12)
    x0, w, b = make_inputs(4, "float32", "bench")
    want_long = floor_grad(x0, w, b, blocks)
    checks = {}
    for name, wk in workers.items():
        if not wk.ready:
            continue
        short = check_contender(wk, {"kind": "check", "size": 4, "dtype": "float32",
                                     "blocks": 12, "seed": 1}, want_short, 1e-4, tmp, "short")
        long = check_contender(wk, config, want_long, 2e-3, tmp, "long") if short["ok"] else short
        checks[name] = {"short_chain": short, "timed_chain": long}
        state = "ok" if short["ok"] and long["ok"] else "FAILED: " + str(
            short.get("error") if not short["ok"] else long.get("error"))
        print(f"  check {name:9s} gradient vs numpy floor: {state}")
    good = {n: w for n, w in workers.items() if w.ready and checks.get(n, {}).get(
        "timed_chain", {}).get("ok")}

    for _ in range(args.warmup - 1):  # the checks above were the first warm-up run
        for wk in good.values():
            wk.ask(cmd="run", **config)

    slots = []
    for name in CONTENDERS:
        if name in good:
            slots.append((name, good[name], config))
            if name == "gradviz":
                slots.append(("gradviz-nogc", good[name], dict(config, gc=False)))
    t = time.perf_counter()
    samples = interleave(slots, args.repeats, "per-op")
    elapsed = time.perf_counter() - t

    stats = {k: summarize(v, n_ops / 1e6) for k, v in samples.items()}  # us per op
    ref_t = stats.get("torch")
    ref_n = stats.get("numpy")
    rows = []
    for key, _, _ in slots:
        s = stats[key]
        if s is None:
            continue
        rows.append(_timing_cells(key, s, 2) + [
            f"{100 * s['gc_share']:.0f}%",
            fmt_ratio(s["median"] / ref_t["median"]) if ref_t else "-",
            fmt_ratio(s["median"] / ref_n["median"]) if ref_n else "-",
        ])
    print(f"\n  us/op, median of {args.repeats} interleaved rounds (each contender in its own "
          f"process; GC enabled unless noted); {elapsed:.1f} s")
    print_table(["contender", "us/op", "min-max", "fwd", "bwd", "free", "GC", "vs torch",
                 "vs numpy"], rows)

    ratio = stats["gradviz"]["median"] / ref_t["median"] if ref_t and stats.get("gradviz") \
        else None
    verdict_ = verdict(ratio, PER_OP_TARGET, PER_OP_CEILING)
    if "gradviz" in checks and "gradviz" not in good:
        verdict_ = WRONG
    paired = paired_ratio(samples.get("gradviz", []), samples.get("torch", []))
    gc_share = gc_off_share = None
    if stats.get("gradviz") and stats.get("gradviz-nogc"):
        gc_share = stats["gradviz"]["gc_share"]
        # paired: the GC-off run follows the GC-on run in the same round and process
        gc_off_share = 1 - paired_ratio(samples["gradviz-nogc"], samples["gradviz"])
    by_cpu = cpu_ratio(stats.get("gradviz"), ref_t)
    print(f"\n  gradviz / PyTorch per op: {fmt_ratio(ratio)} (paired per round: "
          f"{fmt_ratio(paired)}, by CPU time: {fmt_ratio(by_cpu)}); target <= "
          f"{PER_OP_TARGET}x, never above {PER_OP_CEILING}x: "
          f"{verdict_}"
          + ("" if n_ops == TARGET_N else f" (indicative: the target is set at N={TARGET_N:,})"))
    if gc_share is not None:
        counts = stats["gradviz"]["gc_counts"]
        print(f"  GC in gradviz's run: {100 * gc_share:.0f}% of its time inside the collector "
              f"(collections gen0/1/2: {counts[0]}/{counts[1]}/{counts[2]}); with GC disabled "
              f"it runs {100 * gc_off_share:.0f}% faster (paired per round)")
    noise_note(stats)
    return {"ops": n_ops, "config": config, "checks": checks, "stats": stats,
            "gradviz_vs_torch": ratio, "gradviz_vs_torch_paired": paired,
            "gradviz_vs_torch_cpu": by_cpu,
            "gradviz_vs_numpy": (stats["gradviz"]["median"] / ref_n["median"]
                                 if ref_n and stats.get("gradviz") else None),
            "gc_share_gradviz": gc_share, "gc_disabled_speedup": gc_off_share,
            "verdict": verdict_}


def large_section(workers: dict[str, Worker], args, tmp: Path) -> dict:
    blocks = blocks_for(args.large_ops)
    n_ops = blocks * len(BLOCK)
    print(f"\n== 2. Large arrays: {n_ops} ops on {args.large_size:,} elements, forward + "
          f".sum().backward() ==")
    results = {}
    for dtype in ("float32", "float64"):
        config = {"kind": "bench", "size": args.large_size, "dtype": dtype, "blocks": blocks}
        x0, w, b = make_inputs(args.large_size, dtype, "bench")
        want = floor_grad(x0, w, b, blocks)
        del x0, w, b
        checks, good = {}, {}
        for name, wk in workers.items():
            if not wk.ready:
                continue
            checks[name] = check_contender(wk, config, want,
                                           1e-4 if dtype == "float32" else 1e-10, tmp, dtype)
            if checks[name]["ok"]:
                good[name] = wk
            else:
                print(f"  check {name} {dtype}: FAILED: {checks[name]['error']}")
        del want
        for _ in range(args.warmup - 1):
            for wk in good.values():
                wk.ask(cmd="run", **config)
        slots = [(n, good[n], config) for n in CONTENDERS if n in good]
        samples = interleave(slots, args.large_repeats, f"large {dtype}")
        stats = {k: summarize(v, 1e-3) for k, v in samples.items()}  # milliseconds
        ref_n = stats.get("numpy")
        rows = []
        for key, _, _ in slots:
            s = stats[key]
            if s is None:
                continue
            rows.append(_timing_cells(key, s, 1) + [
                f"{s['minor_faults'] / 1000:.1f}k" if "minor_faults" in s else "-",
                f"{s['max_rss_mb']:.0f}" if "max_rss_mb" in s else "-",
                fmt_ratio(s["median"] / ref_n["median"]) if ref_n else "-",
            ])
        print(f"\n  {dtype}: ms per forward+backward, median of {args.large_repeats} "
              "interleaved rounds; gradients checked against the numpy floor")
        print_table(["contender", "ms", "min-max", "fwd", "bwd", "free", "faults", "RSS MB",
                     "vs numpy"], rows)
        ratio = stats["gradviz"]["median"] / ref_n["median"] if ref_n and stats.get("gradviz") \
            else None
        paired = paired_ratio(samples.get("gradviz", []), samples.get("numpy", []))
        by_cpu = cpu_ratio(stats.get("gradviz"), ref_n)
        verdict_ = WRONG if "gradviz" in checks and "gradviz" not in good \
            else verdict(ratio, LARGE_TARGET)
        print(f"  gradviz / numpy floor ({dtype}): {fmt_ratio(ratio)} (paired per round: "
              f"{fmt_ratio(paired)}, by CPU time: {fmt_ratio(by_cpu)}); target <= "
              f"{LARGE_TARGET}x: {verdict_}")
        noise_note(stats)
        results[dtype] = {"config": config, "checks": checks, "stats": stats,
                          "gradviz_vs_numpy": ratio, "gradviz_vs_numpy_paired": paired,
                          "gradviz_vs_numpy_cpu": by_cpu,
                          "torch_vs_numpy": (stats["torch"]["median"] / ref_n["median"]
                                             if ref_n and stats.get("torch") else None),
                          "verdict": verdict_}
    return {"ops": n_ops, "size": args.large_size, "by_dtype": results}


# -- summary ---------------------------------------------------------------------------


def machine_info(workers: dict[str, Worker]) -> dict:
    info = {"cpu": _common.cpu_model(), "cores": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "gradviz_rev": _common.git_revision()}
    for name in ("gradviz", "torch", "autograd"):
        wk = workers.get(name)
        info[name] = wk.versions.get(name) if wk and wk.ready else "not available"
    return info


def _ms(stats: dict, key: str) -> str:
    s = stats.get(key)
    return f"{s['median']:.1f}" if s else "-"


def summary_block(info: dict, per_op: dict | None, large: dict | None, args) -> str:
    """The figures as markdown, to paste in bench/README.md."""
    lines = [(f"Machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}, "
              f"numpy {info['numpy']}, torch {info['torch']}, autograd {info['autograd']}; "
              f"gradviz {info['gradviz']} at {info['gradviz_rev']}.")]
    if per_op:
        st = per_op["stats"]
        t, n = st.get("torch"), st.get("numpy")
        lines += ["",
                  (f"Per-op overhead ({per_op['ops']} ops of {'/'.join(BLOCK)} on 4-element "
                   f"float32, forward + backward, median of {args.repeats} rounds):"),
                  "",
                  "| contender | us/op | vs PyTorch | vs numpy floor |",
                  "| --- | ---: | ---: | ---: |"]
        for key in ("numpy", "gradviz", "gradviz-nogc", "torch", "autograd"):
            s = st.get(key)
            if s:
                lines.append(f"| {LABELS[key]} | {s['median']:.2f} | "
                             f"{fmt_ratio(s['median'] / t['median']) if t else '-'} | "
                             f"{fmt_ratio(s['median'] / n['median']) if n else '-'} |")
        note = (f"Target gradviz <= {PER_OP_TARGET}x PyTorch: **{per_op['verdict']}** "
                f"({fmt_ratio(per_op['gradviz_vs_torch'])}; paired "
                f"{fmt_ratio(per_op['gradviz_vs_torch_paired'])}, by CPU time "
                f"{fmt_ratio(per_op['gradviz_vs_torch_cpu'])})"
                + ("." if per_op["ops"] == TARGET_N else
                   f", indicative only: the target is set at N={TARGET_N:,}."))
        if per_op.get("gc_share_gradviz") is not None:
            note += (f" GC: {100 * per_op['gc_share_gradviz']:.0f}% of gradviz's time; "
                     f"{100 * per_op['gc_disabled_speedup']:.0f}% faster with GC off.")
        lines += ["", note]
    if large:
        lines += ["",
                  (f"Large arrays ({large['ops']} ops on {large['size']:,} elements, "
                   f"forward + backward, ms, median of {args.large_repeats} rounds):"),
                  "",
                  ("| dtype | numpy floor | gradviz | PyTorch | autograd | gradviz vs numpy "
                   f"(paired) | target <= {LARGE_TARGET}x |"),
                  "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
        for dtype, r in large["by_dtype"].items():
            st = r["stats"]
            lines.append(f"| {dtype} | {_ms(st, 'numpy')} | {_ms(st, 'gradviz')} | "
                         f"{_ms(st, 'torch')} | {_ms(st, 'autograd')} | "
                         f"{fmt_ratio(r['gradviz_vs_numpy'])} "
                         f"({fmt_ratio(r['gradviz_vs_numpy_paired'])}) | **{r['verdict']}** |")
    return "\n".join(lines)


# -- profiling -------------------------------------------------------------------------


def profile_gradviz(args) -> None:
    """cProfile of one gradviz chain in this process (which imports nothing else)."""
    import cProfile
    import gc
    import pstats

    _common.import_contender("gradviz")
    blocks = blocks_for(args.n)
    x0, w, b = make_inputs(4, "float32", "bench")
    step = _common.prepare_gradviz(x0, w, b, blocks)
    step()
    gc.collect()
    prof = cProfile.Profile()
    prof.enable()
    step()
    prof.disable()
    print(f"cProfile of one gradviz chain of {blocks * len(BLOCK)} ops (GC enabled), "
          "sorted by own time:")
    pstats.Stats(prof).sort_stats("tottime").print_stats(args.profile_top)


# -- main ------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=TARGET_N, help="ops in the per-op chain (20000)")
    p.add_argument("--repeats", type=int, default=None,
                   help="interleaved rounds for the per-op chain (7; --quick: 3)")
    p.add_argument("--large-repeats", type=int, default=None,
                   help="interleaved rounds for the large arrays (11; --quick: 3)")
    p.add_argument("--large-size", type=int, default=1_000_000, help="elements (10^6)")
    p.add_argument("--large-ops", type=int, default=20, help="ops in the large chain (20)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs per contender (2)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: 3 rounds, N=4000, fewer large rounds")
    p.add_argument("--skip", action="append", default=[], choices=("per-op", "large"),
                   help="skip a section (repeatable)")
    p.add_argument("--only", action="append", default=[], choices=("torch", "autograd"),
                   help="compare with only these (repeatable; numpy and gradviz always run)")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                   help="first wait up to SECONDS until other processes leave a CPU idle "
                        "(on a shared 2-core machine, another load doubles the noise)")
    p.add_argument("--json", metavar="PATH", help="write all figures and samples to PATH")
    p.add_argument("--profile", action="store_true",
                   help="print a cProfile of the gradviz chain and exit")
    p.add_argument("--profile-top", type=int, default=25, help=argparse.SUPPRESS)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        if args.n == TARGET_N:
            args.n = 4_000
        args.repeats = args.repeats or 3
        args.large_repeats = args.large_repeats or 3
        args.warmup = min(args.warmup, 1)
    args.repeats = args.repeats or 7
    args.large_repeats = args.large_repeats or 11
    args.warmup = max(1, args.warmup)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        _common.worker_main(args.worker)
        return 0
    if args.profile:
        profile_gradviz(args)
        return 0

    fd_err = finite_difference_check()
    if args.wait_quiet:
        wait_until_quiet(args.wait_quiet)
    busy = machine_busy(1.0)
    names = [n for n in CONTENDERS
             if not args.only or n in args.only or n in ("numpy", "gradviz")]
    with tempfile.TemporaryDirectory(prefix="gradviz-bench-") as tmpdir:
        tmp = Path(tmpdir)
        env = worker_env()
        workers = {n: Worker(n, env, tmp) for n in names}
        try:
            info = machine_info(workers)
            print("gradviz overhead benchmark")
            print(f"  machine: {info['cpu']} ({info['cores']} cores), {info['platform']}")
            print(f"  python {info['python']}, numpy {info['numpy']}, torch {info['torch']}, "
                  f"autograd {info['autograd']}, gradviz {info['gradviz']} "
                  f"({info['gradviz_rev']})")
            print("  each contender runs in its own process (no library's objects add to "
                  "another's GC work);\n  rounds are interleaved; Python's GC is enabled; "
                  f"numpy floor checked against finite differences (err {fd_err:.1e})")
            busy_cpus = "?" if busy is None else f"{busy * (os.cpu_count() or 1):.1f}"
            print(f"  load average at start: {load_average()}; CPUs busy in the second "
                  f"before: {busy_cpus} of {info['cores']}")
            info["busy_before"] = busy
            for n, wk in workers.items():
                if not wk.ready:
                    print(f"  skipped {n}: {wk.error}")
            per_op = None if "per-op" in args.skip else per_op_section(workers, args, tmp)
            large = None if "large" in args.skip else large_section(workers, args, tmp)
        finally:
            for wk in workers.values():
                wk.close()

    block = summary_block(info, per_op, large, args)
    print("\n== Summary (markdown, for bench/README.md) ==\n")
    print(block)
    if args.json:
        payload = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": info,
                   "args": {k: v for k, v in vars(args).items() if k != "worker"},
                   "block": list(BLOCK), "per_op": per_op, "large": large,
                   "summary_markdown": block}
        Path(args.json).write_text(json.dumps(payload, indent=2, default=float))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
