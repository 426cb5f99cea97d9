"""How fast the stepper answers: a key press on a 500-node graph, and --frames.

Two figures, each a ratio or a bound measured in this run (machines are noisy):

1. **Key press**: the median time from a key (next / back / jump) to the
   screen redrawn, for a 500-node graph, with Rich rendering into a captured
   terminal (120x40, colour on).  Target: under 50 ms.
2. **Slides**: ``gradviz step EXPR --frames DIR`` for a graph of about 100
   steps, against one ``gradviz render EXPR`` of the same graph, end to end
   (both are processes started the same way).  Target: at most 2x.

Usage::

    python bench/stepper.py [--quick] [--renderer embedded|system]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def chain_graph(n_nodes: int):
    """About ``n_nodes`` nodes: tanh(h * w + b) layers with a shared w, as in an RNN."""
    import gradviz as gv
    x = gv.tensor([0.5, -0.25], requires_grad=True).name("x")
    w = gv.tensor([1.01, 0.99], requires_grad=True).name("w")
    b = gv.tensor([0.1, -0.1]).name("b")
    h = x
    while len(gv.Tape(h)) < n_nodes:
        h = gv.tanh(h * w + b)
    return h.sum().name("loss")


def bench_keys(n_nodes: int, presses: int) -> dict:
    from rich.console import Console

    from gradviz.stepper.screen import Viewer
    from gradviz.stepper.session import Session
    from gradviz.stepper.text import Formatter

    out = chain_graph(n_nodes)
    session = Session(out, retain_graph=True)
    viewer = Viewer(session, Formatter(session))
    console = Console(file=io.StringIO(), width=120, height=40, force_terminal=True,
                      color_system="truecolor")
    keys = ["n"] * (presses // 2) + ["p"] * (presses // 4) + ["G", "g"] * (presses // 8)
    times = []
    for key in keys:
        start = time.perf_counter()
        viewer.press(key)
        console.print(viewer.render(120, 40))
        times.append(time.perf_counter() - start)
        console.file.seek(0)
        console.file.truncate()
    return {"nodes": len(session.tape.nodes), "steps": len(session), "presses": len(times),
            "median_ms": statistics.median(times) * 1e3, "p90_ms": sorted(times)[
                int(len(times) * 0.9)] * 1e3}


def _formula(layers: int) -> str:
    """A chain of ``layers`` x 3 ops.  No tensor is read by every layer: Graphviz lays out
    such graphs very slowly (long edges), which would time Graphviz, not the stepper."""
    lines = ["h0 = x"] + [f"h{i} = tanh(h{i - 1} * 1.01 + 0.1)" for i in range(1, layers + 1)]
    return "; ".join(lines) + f"; sum(h{layers})"


def bench_frames(renderer: str, repeats: int) -> dict:
    expr = _formula(33)  # 33 layers x 3 ops: about 100 steps
    values = ["-v", "x=[0.5, -0.25]", "--renderer", renderer]
    base = [sys.executable, "-m", "gradviz"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    work = Path(tempfile.mkdtemp())
    render_t, frames_t = [], []
    try:
        subprocess.run(base + ["render", expr, *values, "-o", str(work / "warm.svg")], env=env,
                       check=True, capture_output=True)  # the embedded module's cache
        for i in range(repeats):
            for cmd, bucket in (
                    (base + ["render", expr, *values, "-o", str(work / f"g{i}.svg")], render_t),
                    (base + ["step", expr, *values, "--frames", str(work / f"f{i}")], frames_t)):
                start = time.perf_counter()
                subprocess.run(cmd, env=env, check=True, capture_output=True)
                bucket.append(time.perf_counter() - start)
        steps = len(list((work / "f0").glob("step-*.svg"))) - 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    r, f = statistics.median(render_t), statistics.median(frames_t)
    return {"renderer": renderer, "steps": steps, "render_s": r, "frames_s": f, "ratio": f / r}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--renderer", action="append", choices=["embedded", "system"])
    args = parser.parse_args()
    renderers = args.renderer or (["embedded", "system"] if shutil.which("dot") else ["embedded"])
    keys = bench_keys(500, 40 if args.quick else 200)
    print(f"key press, {keys['nodes']}-node graph ({keys['steps']} steps), "
          f"{keys['presses']} presses: median {keys['median_ms']:.1f} ms, "
          f"p90 {keys['p90_ms']:.1f} ms  [{'PASS' if keys['median_ms'] < 50 else 'FAIL'} "
          "< 50 ms]")
    for renderer in renderers:
        fr = bench_frames(renderer, 2 if args.quick else 5)
        print(f"--frames, {fr['steps']} steps, {renderer}: {fr['frames_s']:.2f} s vs one render "
              f"{fr['render_s']:.2f} s = {fr['ratio']:.2f}x  "
              f"[{'PASS' if fr['ratio'] <= 2 else 'FAIL'} <= 2x]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
