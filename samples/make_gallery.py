"""Regenerate the README's gallery: the lesson's examples drawn by gradviz.

Run from the repo root:  python samples/make_gallery.py  (writes samples/gallery/*.svg)
Uses the embedded renderer, so it needs no system Graphviz.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "gallery"

EXAMPLES = [
    ("dot", ["dot(x, x)", "-v", "x=arange(4)"]),
    ("hadamard", ["y = x * x; sum(y)", "-v", "x=arange(4)"]),
    ("detach", ["y = x * x; u = detach(y); z = u * x; sum(z)", "-v", "x=arange(4)"]),
    ("least_squares", ["r = X @ w - y; norm(r) ** 2", "-v", "X=[[1, 2], [3, 4], [5, 6]]",
                       "-v", "w=[1, -1]", "-v", "y=[0, 1, 2]", "--const", "X,y"]),
    ("least_squares_jacobians", ["r = X @ w - y; norm(r) ** 2", "-v", "X=[[1, 2], [3, 4], [5, 6]]",
                                 "-v", "w=[1, -1]", "-v", "y=[0, 1, 2]", "--const", "X,y",
                                 "--edge-labels", "jacobian", "--theme", "print"]),
    ("explicit_structure", ["y = x * x; u = detach(y); z = u * x; sum(z)", "-v", "x=arange(4)",
                            "--show", "structure"]),
    ("control_flow_rolled", [str(HERE / "lesson" / "05_control_flow.py") + ":d", "--roll",
                             "--title", "the lesson's f(a): while b.norm() < 1000: b = b * 2"]),
    ("mlp", ["sum(relu(W1 @ x + b1) * w2)", "-v", "W1=[[1, -2], [0.5, 1], [-1, 0.3]]",
             "-v", "x=[1, 2]", "-v", "b1=[0.1, 0.2, 0.3]", "-v", "w2=[1, -1, 2]"]),
    ("mlp_slide", ["sum(relu(W1 @ x + b1) * w2)", "-v", "W1=[[1, -2], [0.5, 1], [-1, 0.3]]",
                   "-v", "x=[1, 2]", "-v", "b1=[0.1, 0.2, 0.3]", "-v", "w2=[1, -1, 2]",
                   "--slide"]),
    ("wrt_pruned", ["sin(a) * b + exp(c)", "-v", "a=0.5", "-v", "b=2", "-v", "c=[1, 2]",
                    "--wrt", "a", "--theme", "dark"]),
]


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, args in EXAMPLES:
        target = OUT / f"{name}.svg"
        cmd = [sys.executable, "-m", "gradviz", "render", *args, "-o", str(target),
               "--renderer", "embedded", "--seed", "0"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        print("wrote", target.relative_to(HERE.parent))
    # The step-by-step slides of the README (gradviz step --frames).
    steps = OUT / "steps"
    subprocess.run([sys.executable, "-m", "gradviz", "step", EXAMPLES[2][1][0], *EXAMPLES[2][1][1:],
                    "--frames", str(steps), "--renderer", "embedded"],
                   check=True, stdout=subprocess.DEVNULL)
    print("wrote", steps.relative_to(HERE.parent))


if __name__ == "__main__":
    main()
