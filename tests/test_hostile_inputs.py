"""Bounded time and memory, one line of error: the hostile inputs of issue 8, items 9-17.

Each case was a traceback, a hang, an unbounded allocation or a silently
accepted bad value before; each now gets one ``error:`` line (CLI) or a
``GradvizError`` (API), or works.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import gradviz as gv
from gradviz.errors import AutogradError, GradvizError, GradvizTypeError, GradvizValueError, ShapeError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_cli_robust import gradviz, one_error_line  # noqa: E402


# -- item 9: check is bounded: random projections for big inputs ------------------------


def test_check_of_a_big_input_uses_projections_and_finishes() -> None:
    x = gv.randn(30000, dtype=np.float64)
    result = gv.check(lambda t: gv.sin(t) * 2, x)
    assert result.ok and result.methods == ["projection"]
    assert len(result.numeric[0]) == 6  # six ⟨u, J v⟩ numbers, no 30000 x 30000 Jacobian


def test_check_by_projection_still_catches_a_wrong_rule() -> None:
    # Wrong on about 7% of the elements only, by 1%: a projection sees it.
    bad = gv.defop("bad_cube", lambda x: x ** 3, saves=("x0",),
                   vjps=(lambda g, x: g * 3 * x ** 2 * (1 + 0.01 * (x > 1.5)),),
                   jvps=(lambda t, x: t * 3 * x ** 2,))
    gv.manual_seed(0)
    result = gv.check(bad, gv.randn(1000, dtype=np.float64))
    assert not result.ok and result.methods == ["projection"]
    assert result.forward_error[0] < 1e-6 < result.reverse_error[0]


def test_small_inputs_are_still_checked_element_by_element() -> None:
    result = gv.check(lambda a, b: gv.tanh(a * b), gv.tensor([0.5, -1.0]), gv.tensor([2.0, 3.0]))
    assert result.ok and result.methods == ["elementwise", "elementwise"]
    assert result.numeric[0].shape == (2, 2)


def test_cli_check_of_30000_elements_says_how_it_checked() -> None:
    run = gradviz("check", "sin(x)", "-v", "x=randn(30000)", timeout=300)
    assert run.returncode == 0, run.stderr
    out = " ".join(run.stdout.decode().split())
    assert "checked by 6 random projections ⟨u, J v⟩" in out and "agree" in out


@pytest.mark.parametrize("eps", ["inf", "nan", "-1", "0", "2"])
def test_check_eps_must_be_finite_and_small(eps) -> None:
    assert "--eps" in one_error_line(gradviz("check", "sin(x)", "-v", "x=1", "--eps", eps))


@pytest.mark.parametrize("eps", [float("inf"), float("nan"), 0.0, -1e-6])
def test_check_api_refuses_a_bad_eps(eps) -> None:
    with pytest.raises(GradvizValueError, match="eps must be a finite number"):
        gv.check(gv.sin, gv.tensor([1.0]), eps=eps)


# -- item 10: every op's output size is checked before allocating ------------------------


@pytest.mark.parametrize("make", [
    lambda x: gv.broadcast_to(x, (100000, 100000)),
    lambda x: x.expand(100000, 100000),
    lambda x: gv.reshape(gv.ones(10000), (10000, 1)) * gv.ones(100000) * x,
    lambda x: gv.reshape(gv.ones(20000), (20000, 1)) @ gv.ones(1, 20000),
    lambda x: gv.where(gv.reshape(gv.ones(20000), (20000, 1)) > 0, gv.ones(20000), x),
], ids=["broadcast_to", "expand", "mul", "matmul", "where"])
def test_an_op_too_large_is_refused_before_it_allocates(make) -> None:
    x = gv.tensor(1.0, requires_grad=True)
    with pytest.raises(ShapeError, match=r"the result would have [\d,]+ elements .* over "
                                         r"gradviz's limit of 100,000,000"):
        make(x)


def test_cli_sum_of_a_huge_broadcast_is_one_error_line_quickly() -> None:
    run = gradviz("render", "sum(broadcast_to(x, (100000, 100000)))", "-v", "x=1", "-o", "-",
                  timeout=60)
    assert "10,000,000,000 elements" in one_error_line(run)


def test_sizes_under_the_limit_still_work() -> None:
    a = gv.ones(300, 300, requires_grad=True)
    y = (a @ a).sum()
    y.backward()
    assert y.item() == 300 ** 3 and a.grad.shape == (300, 300)


# -- item 11: option bounds and Graphviz's label limit -------------------------------------


@pytest.mark.parametrize("option", [["--max-nodes", "1000000"], ["--max-elems", "5000"],
                                    ["--precision", "40"], ["--max-nodes", "1"]])
def test_options_out_of_range_are_one_error_line(option) -> None:
    line = one_error_line(gradviz("render", "sin(x)", "-v", "x=1", *option, "-o", "-"))
    assert option[0] in line and "range" in line


def test_the_largest_labels_stay_under_graphviz_limit(tmp_path) -> None:
    run = gradviz("render", "X * 1.5", "-v", "X=randn(120, 120)", "--max-elems", "100",
                  "--precision", "12", "-o", str(tmp_path / "g.dot"), "--renderer", "system")
    assert run.returncode == 0, run.stderr
    dot = (tmp_path / "g.dot").read_text()
    labels = re.findall(r'\blabel="((?:[^"\\]|\\.)*)"', dot)
    assert max(len(label) for label in labels) > 5_000  # big labels, fewer elements than asked
    assert max(len(label) for label in labels) < 16_384
    if run.returncode == 0 and os.path.exists("/usr/bin/dot"):
        laid = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True,
                              timeout=120)
        assert laid.returncode == 0, laid.stderr[:300]


def test_a_huge_title_is_cut(tmp_path) -> None:
    run = gradviz("render", "sin(x)", "-v", "x=1", "--title", "t" * 50_000, "-o",
                  str(tmp_path / "g.svg"), "--renderer", "embedded")
    assert run.returncode == 0, run.stderr
    # The title is wrapped into lines of 60: joined again, it is cut at 1,000 characters.
    texts = "".join("".join(ET.parse(tmp_path / "g.svg").getroot().itertext()).split())
    assert "t" * 999 + "…" in texts and "t" * 1001 not in texts


@pytest.mark.parametrize("options, error", [
    (dict(precision=-3), "precision must be from 1 to 17"),
    (dict(max_elems=10 ** 6), "max_elems must be from 2 to 100"),
    (dict(max_nodes=10 ** 7), "max_nodes must be from 2 to 10000"),
    (dict(precision=2.5), "precision must be an integer"),
])
def test_render_api_bounds_its_options(options, error) -> None:
    x = gv.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(GradvizError, match=error):
        gv.render((x * x).sum(), None, **options)


def test_render_api_path_types(tmp_path) -> None:
    x = gv.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    with pytest.raises(GradvizTypeError, match="path must be a string or a path, not int"):
        gv.render(y, 12)
    gv.render(y, os.fsencode(tmp_path / "b.svg"), renderer="embedded")  # bytes, as os accepts
    ET.parse(tmp_path / "b.svg")


# -- item 14: tracebacks that are now one error line ------------------------------------------


@pytest.mark.parametrize("args, says", [
    (["render", "sin(x)", "-v", "x=randn(2)", "--seed", "-1", "-o", "-", "-f", "dot"], None),
    (["render", "sin(x)", "--seed", "9" * 30], "--seed"),
    (["render", "sin(x)", "-v", "x=" + "9" * 400], "too large for a floating point number"),
    (["render", "sum(x, A)", "-v", "x=[1, 2]", "-v", "A=[1, 2]"],
     "an axis must be an integer, got a tensor of shape (2,)"),
    (["render", "sin(x)", "-v", "x=1", "--bogus"], "No such option '--bogus'"),
    (["render", "a" * 300 + ".py"], "File name too long"),
    (["check", "sin(x)", "-v", "x=1", "-o", "g.svg"], "No such option '-o'"),
])
def test_one_error_line_not_a_traceback(args, says, tmp_path) -> None:
    run = gradviz(*args, cwd=tmp_path)
    if says is None:
        assert run.returncode == 0, run.stderr
        return
    assert says in one_error_line(run)


def test_invalid_utf8_in_the_expression_or_a_value(tmp_path) -> None:
    for args in ([b"render", b"sin(x\xff)", b"-v", b"x=1"], [b"render", b"sin(x)", b"-v", b"x=\xff"]):
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
        run = subprocess.run([sys.executable.encode(), b"-m", b"gradviz", *args], cwd=tmp_path,
                             capture_output=True, env=env, timeout=120)
        assert "not valid UTF-8" in one_error_line(run)


def test_an_ascii_terminal_gets_escapes_not_a_traceback(tmp_path) -> None:
    run = gradviz("render", "sin(x)", "-v", "x=1", "-o", "g.svg", cwd=tmp_path,
                  env={"PYTHONIOENCODING": "ascii"})
    assert run.returncode == 0, run.stderr
    assert b"\\u2202out" in run.stdout and b"wrote g.svg" in run.stdout


def test_a_script_raising_a_base_exception_is_reported(tmp_path) -> None:
    (tmp_path / "boom.py").write_text("class Boom(BaseException):\n    pass\n\n"
                                      "raise Boom('bang')\n")
    run = gradviz("render", "boom.py", cwd=tmp_path)
    err = run.stderr.decode()
    assert run.returncode == 2
    # The script's own traceback (its frames only), then our one error line.
    assert err.strip().splitlines()[-1] == "error: boom.py raised Boom: bang"
    assert "gradviz" not in "".join(err.strip().splitlines()[:-1])


def test_a_script_in_an_unreadable_folder(tmp_path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any folder")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        assert "cannot read the script" in one_error_line(gradviz("render", "locked/s.py",
                                                                  cwd=tmp_path))
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("exc, line, status", [
    (MemoryError(), "error: out of memory: make the inputs smaller", 2),
    (KeyboardInterrupt(), "error: interrupted", 130),
    (RecursionError(), "error: the graph is nested too deeply", 2),
    (ZeroDivisionError("x"), "error: internal error, a bug in gradviz (please report it; "
                             "GRADVIZ_DEBUG=1 shows the traceback): ZeroDivisionError: x", 2),
])
def test_the_cli_turns_any_failure_into_one_line(exc, line, status, capsys, monkeypatch) -> None:
    from gradviz.cli import _run

    monkeypatch.delenv("GRADVIZ_DEBUG", raising=False)

    def job() -> None:
        raise exc
    with pytest.raises(SystemExit) as info:
        _run(job)
    assert info.value.code == status
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith(line)


# -- item 15: long names, chdir ------------------------------------------------------------------


@pytest.mark.parametrize("length", [243, 250, 255])
def test_output_names_up_to_the_system_limit(tmp_path, length) -> None:
    name = "g" * (length - 4) + ".svg"
    run = gradviz("render", "sin(x)", "-v", "x=1", "-o", name, "--renderer", "embedded",
                  cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert [p.name for p in tmp_path.iterdir()] == [name]
    ET.parse(tmp_path / name)


def test_a_script_changing_folder_does_not_move_the_output(tmp_path) -> None:
    (tmp_path / "wander.py").write_text(
        "import os\nimport gradviz as gv\nos.makedirs('elsewhere', exist_ok=True)\n"
        "os.chdir('elsewhere')\nx = gv.tensor([1.], requires_grad=True)\ny = x * 2\n")
    run = gradviz("render", "wander.py", "-o", "here.svg", "--renderer", "embedded",
                  cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "here.svg").is_file()
    assert list((tmp_path / "elsewhere").iterdir()) == []


# -- item 16: API errors are GradvizErrors -------------------------------------------------------


@pytest.mark.parametrize("saves", [("zz",), (1,), ("x",)])
def test_defop_unknown_saved_token(saves) -> None:
    with pytest.raises(GradvizValueError, match="unknown saved-value token"):
        gv.defop("c", lambda x: x, saves=saves)


def test_a_vjp_rule_returning_none_names_the_op() -> None:
    nothing = gv.defop("nothing", lambda x: x * 2, vjps=(lambda g: None,))
    x = gv.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(AutogradError, match="op 'nothing': the VJP rule of input 0 returned "
                                            "NoneType, not an array"):
        nothing(x).sum().backward()


def test_a_vjp_rule_of_the_wrong_shape_is_a_shape_error() -> None:
    wrong = gv.defop("wrong", lambda x: x * 2, vjps=(lambda g: np.ones(3),))
    x = gv.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ShapeError, match=r"op 'wrong': its VJP rule for input 0 returned shape "
                                         r"\(3,\), which input 0's shape \(2,\) does not "
                                         r"broadcast to"):
        wrong(x).sum().backward()


def test_a_vjp_rule_too_small_for_its_input_is_not_spread_silently() -> None:
    """A (1,) result for a (3,) input would broadcast into a wrong gradient: refused, named."""
    small = gv.defop("small", lambda x: x * 2, vjps=(lambda g: g[:1],))
    x = gv.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(ShapeError, match=r"op 'small': its VJP rule for input 0 returned "
                                         r"shape \(1,\)"):
        small(x).backward(gv.ones(3))


def test_defop_arguments_are_checked() -> None:
    with pytest.raises(GradvizTypeError, match="forward must be a function"):
        gv.defop("f", 3)
    with pytest.raises(GradvizTypeError, match=r"vjps\[0\] must be a function or None"):
        gv.defop("f", lambda x: x, vjps=(3,))


# -- item 13: the embedded renderer runs in 1 GB of address space ---------------------------


@pytest.mark.skipif(not os.path.exists("/usr/bin/prlimit"), reason="needs util-linux prlimit")
def test_embedded_renderer_under_a_1gb_address_space_limit(tmp_path) -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]),
               GRADVIZ_CACHE_DIR=str(tmp_path / "cache"))
    for attempt in ("compiles", "loads from the cache"):
        run = subprocess.run(["prlimit", "--as=1000000000", sys.executable, "-m", "gradviz",
                              "render", "x = tanh(w * 2); sum(x * x)", "-v", "w=randn(3)",
                              "--renderer", "embedded", "-o", "g.svg"],
                             cwd=tmp_path, env=env, capture_output=True, timeout=300)
        assert run.returncode == 0, (attempt, run.stderr[-500:])
        ET.parse(tmp_path / "g.svg")


# -- item 16: deepcopy and pickle as PyTorch ---------------------------------------------------


def test_deepcopy_and_pickle_of_a_leaf_keep_value_grad_and_name() -> None:
    import copy
    import pickle

    x = gv.tensor([1.0, 2.0], requires_grad=True).name("x")
    (x * x).sum().backward()
    for twin in (copy.deepcopy(x), pickle.loads(pickle.dumps(x))):
        assert twin is not x and twin.is_leaf and twin.requires_grad and twin.label == "x"
        assert twin.tolist() == [1.0, 2.0] and twin.grad.tolist() == [2.0, 4.0]
        twin.grad.zero_()
        assert x.grad.tolist() == [2.0, 4.0]  # a copy, not shared
    pair = copy.deepcopy([x, x])
    assert pair[0] is pair[1]  # the memo is honoured


def test_deepcopy_and_pickle_of_a_computed_tensor_are_refused_even_deep_chains() -> None:
    import copy
    import pickle

    x = gv.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    with pytest.raises(AutogradError, match=r"^Only Tensors created explicitly by the user "
                                            r"\(graph leaves\) support the deepcopy protocol"):
        copy.deepcopy(y)
    with pytest.raises(AutogradError, match="can pickle only leaf tensors"):
        pickle.dumps(y)
    assert pickle.loads(pickle.dumps(y.detach())).tolist() == [1.0]


# -- item 17: the smaller ones --------------------------------------------------------------------


def test_a_flat_sum_of_101_terms_is_not_nested_too_deeply() -> None:
    run = gradviz("render", " + ".join(["x"] * 101), "-v", "x=1", "-o", "-", "-f", "dot")
    assert run.returncode == 0, run.stderr
    assert b"101." in run.stderr  # the summary (on stderr with -o -): 101 x


def test_a_tuple_output_is_called_a_tuple() -> None:
    line = one_error_line(gradviz("render", "(x, x)", "-v", "x=1", "-o", "-"))
    assert "the output is a tuple of 2 values" in line


def test_v_names_are_normalised_as_the_formula_names_are() -> None:
    # NFKC: the full-width ｘ of -v is the x of the formula, as Python's ast reads it.
    run = gradviz("render", "sin(x)", "-v", "ｘ=0", "-o", "-", "-f", "dot")
    assert run.returncode == 0, run.stderr


def test_a_variable_named_out_keeps_its_name_and_the_output_gets_another() -> None:
    run = gradviz("render", "sum(x * out)", "-v", "x=1", "-v", "out=2", "-o", "-", "-f", "dot")
    assert run.returncode == 0, run.stderr
    dot = run.stdout.decode()
    assert "{out\\nAccumulateGrad" in dot and "∂output/∂out\\ " in dot
    summary = run.stderr.decode()
    assert "∂output/∂·" in summary and "\nout " in summary


# -- item 12: Ctrl-C stops a long embedded layout; SIGTERM leaves no temporary file -----------

LONG_CHAIN = """\
import gradviz as gv
x = gv.tensor([0.5], requires_grad=True)
y = x
for i in range(4000):
    y = gv.tanh(y * 1.001) + 0.001 * i
"""


@pytest.mark.parametrize("sig, status, line", [(2, 130, "error: interrupted"),
                                               (15, 143, "error: terminated")])
def test_a_signal_stops_a_long_layout_promptly_and_leaves_no_file(tmp_path, sig, status,
                                                                  line) -> None:
    import signal
    import time

    (tmp_path / "chain.py").write_text(LONG_CHAIN)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    # 10,000 boxes: the embedded layout alone takes 10 s or more.
    proc = subprocess.Popen([sys.executable, "-m", "gradviz", "render", "chain.py",
                             "--max-nodes", "10000", "--renderer", "embedded", "-o", "g.svg"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # The layout takes about 4 s of a 5 s run on a quiet machine; an earlier signal (while
    # the graph is built, on a loaded one) must be handled the same way.
    time.sleep(2.5)
    assert proc.poll() is None, "the layout finished before the signal: make the graph bigger"
    sent = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    # Well before the layout's end (over 10 s more), allowing for a loaded machine.
    assert time.monotonic() - sent < 8, "the signal was not acted on promptly"
    assert proc.returncode in (status, 130), err
    assert err.decode().strip().splitlines()[-1] in (line, "error: interrupted")
    assert "Traceback" not in err.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain.py"]  # no g.svg, no .tmp
