"""The Tensor: a numpy array that remembers how it was made.

A tensor produced by an operation *is* a node of the tape: it holds the op,
its input tensors, the op's parameters and what the op saved for backward.
Adjoints are not stored on tensors: each backward pass keeps its own.  :mod:`gradviz.engine.tape` numbers these
nodes ``v0, v1, ...`` in execution order; :mod:`gradviz.engine.backward` walks
them in reverse.  Semantics follow PyTorch wherever a learner would notice.
"""

from __future__ import annotations

import itertools
import math
import operator
import threading
import warnings
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np

from gradviz.errors import AutogradError, GradvizTypeError, GradvizValueError, ShapeError

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
float16 = np.dtype(np.float16)
int64 = np.dtype(np.int64)
int32 = np.dtype(np.int32)
bool_ = np.dtype(np.bool_)
_DTYPE_NAMES = {float32: "float32", float64: "float64", float16: "float16",
                int64: "int64", int32: "int32", bool_: "bool"}

_seq = itertools.count()  # creation order: a node's inputs always have smaller seq


class _GradModeState(threading.local):
    """Grad mode, per thread as in PyTorch: a pass or a ``no_grad()`` in one thread
    never switches recording off in another."""

    enabled = True


_GradMode = _GradModeState()


class no_grad:
    """Context manager (and decorator) in which operations record no gradient path.

    Results made inside are constants: diagrams show them pruned, "made under no_grad()".
    """

    def __enter__(self) -> None:
        self._prev = _GradMode.enabled
        _GradMode.enabled = False

    def __exit__(self, *exc: Any) -> None:
        _GradMode.enabled = self._prev

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = getattr(fn, "__doc__", None)
        return wrapper


@contextmanager
def enable_grad() -> Iterator[None]:
    """Re-enable recording inside a ``no_grad`` block."""
    prev = _GradMode.enabled
    _GradMode.enabled = True
    try:
        yield
    finally:
        _GradMode.enabled = prev


def is_grad_enabled() -> bool:
    return _GradMode.enabled


class _CallRecorderState(threading.local):
    """``note``, set by :class:`gradviz.engine.calls.group_calls`, is called with each new
    node, per thread like grad mode."""

    note = None


_CallRecorder = _CallRecorderState()

#: How many ``group_calls()`` blocks are open, in any thread.  The tape recorder tests this
#: plain global first (about 17 ns), and reads the per-thread recorder (about 120 ns) only
#: while some block is open.
_grouping = 0


class Size(tuple):
    """A tensor's shape: a tuple that prints as PyTorch's ``torch.Size`` does."""

    def __repr__(self) -> str:
        return f"gradviz.Size({list(self)})"

    def numel(self) -> int:
        return int(np.prod(self, dtype=np.int64))


class GradFn:
    """What ``tensor.grad_fn`` returns: the backward node, named as PyTorch names it."""

    __slots__ = ("tensor",)

    def __init__(self, tensor: "Tensor") -> None:
        self.tensor = tensor

    def name(self) -> str:
        t = self.tensor
        return "AccumulateGrad" if t.is_leaf else t.op.backward_name(t)

    @property
    def next_functions(self) -> tuple:
        out = []
        for x in self.tensor.inputs:
            if not x.requires_grad:
                out.append((None, 0))
            else:
                out.append((GradFn(x), 0))
        return tuple(out)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GradFn) and other.tensor is self.tensor

    def __hash__(self) -> int:
        return id(self.tensor)

    def __repr__(self) -> str:
        return f"<{self.name()} object at {hex(id(self.tensor))}>"


class Tensor:
    """An n-dimensional array with automatic differentiation, as in PyTorch.

    Tape fields (read by the renderer and stepper):
        data: the forward value (a numpy array); kept for display after backward.
        op: the :class:`~gradviz.engine.op.Op` that made it, or None for a leaf.
        inputs: the input tensors of ``op``.
        params: the op's non-tensor arguments (``axis``, ``shape``, ...).
        saved: what ``op`` saved for backward; None once a backward pass freed it.
        seq: creation counter; inputs always have a smaller ``seq``.
        label: a user-facing name (``x``, ``loss``), set by ``name()`` or the CLI.
        made_without_grad: it was made under ``no_grad()`` from inputs that required grad.
        scope: the user function call it was made in (:mod:`gradviz.engine.calls`); set
            only inside ``group_calls()``, so read it with ``getattr(t, "scope", None)``.
    """

    __slots__ = ("data", "op", "inputs", "params", "saved", "seq", "requires_grad",
                 "is_leaf", "_grad", "label", "retains_grad", "_mark",
                 "made_without_grad", "scope", "_inplace", "__weakref__")
    __array_priority__ = 1000  # so ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        arr = _as_array(data, dtype)
        if requires_grad and arr.dtype.kind not in "fc":
            raise GradvizTypeError("only Tensors of floating point dtype can require gradients")
        self.data = arr
        self.op = None
        self.inputs = ()
        self.params = {}
        self.saved = None
        self.seq = next(_seq)
        self.requires_grad = bool(requires_grad)
        self.is_leaf = True
        self._grad = None
        self._mark = 0
        self.label = None
        self.retains_grad = False
        self.made_without_grad = False

    # -- autograd surface -----------------------------------------------------

    @property
    def grad(self) -> "Tensor | None":
        if not self.is_leaf and not self.retains_grad:
            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being "
                "accessed. Its .grad attribute won't be populated during "
                "autograd.backward(). If you indeed want the .grad field to be "
                "populated for a non-leaf Tensor, use .retain_grad() on the non-leaf "
                "Tensor. If you access the non-leaf Tensor by mistake, make sure you "
                "access the leaf Tensor instead.", UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value: "Tensor | None") -> None:
        self._grad = value

    @property
    def grad_fn(self) -> GradFn | None:
        if self.op is None or not self.requires_grad or self.is_leaf:
            return None
        return GradFn(self)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if not self.is_leaf:
            raise AutogradError(
                "you can only change requires_grad flags of leaf variables. If you want "
                "to use a computed variable in a subgraph that doesn't require "
                "differentiation use var_no_grad = var.detach().")
        if requires_grad and self.data.dtype.kind not in "fc":
            raise GradvizTypeError("only Tensors of floating point dtype can require gradients")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> None:
        if not self.requires_grad:
            raise AutogradError("can't retain_grad on Tensor that has requires_grad=False")
        if not self.is_leaf:
            self.retains_grad = True

    def backward(self, gradient: Any = None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs: Sequence["Tensor"] | None = None) -> None:
        """Accumulate d(self)/d(leaf) into the ``.grad`` of every leaf that requires grad."""
        from gradviz.engine.backward import backward
        backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph,
                 inputs=inputs)

    def name(self, label: str) -> "Tensor":
        """Give this node a name for diagrams; returns self (``x = gv.arange(4.).name("x")``)."""
        self.label = str(label)
        return self

    # -- array surface --------------------------------------------------------

    @property
    def shape(self) -> Size:
        return Size(self.data.shape)

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.data.shape[dim]

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def dim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise GradvizTypeError("len() of a 0-d tensor")
        return len(self.data)

    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise AutogradError("Can't call numpy() on Tensor that requires grad. "
                                "Use tensor.detach().numpy() instead.")
        return self.data

    def item(self) -> float | int | bool:
        if self.data.size != 1:
            raise AutogradError(f"a Tensor with {self.data.size} elements cannot be "
                                "converted to Scalar")
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise AutogradError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.data.item())

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def __hash__(self) -> int:
        return id(self)

    def __iter__(self):
        if self.data.ndim == 0:
            raise GradvizTypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def __repr__(self) -> str:
        from gradviz.engine.format import tensor_repr
        return tensor_repr(self)

    @property
    def _version(self) -> int:
        """How many in-place changes this tensor has had (PyTorch's version counter)."""
        return len(getattr(self, "_inplace", ()))

    def zero_(self) -> "Tensor":
        """Set every element to zero, in place (``x.grad.zero_()``)."""
        _modify_in_place(self, np.zeros_like(self.data), "zero_")
        return self

    def fill_(self, value: float) -> "Tensor":
        _modify_in_place(self, np.full_like(self.data, value), "fill_")
        return self

    def _augmented(self, other: Any, op: Any, name: str) -> Any:
        """``self op= other``: in place when the result is a constant, as PyTorch does.

        A result that is part of the graph (requires grad) cannot be written
        into ``self`` without rewriting the tape, so Python's fallback applies:
        ``x = x op other``, a new node, which gives the same values and gradients.
        """
        other_grad = isinstance(other, Tensor) and other.requires_grad
        if is_grad_enabled() and (self.requires_grad or other_grad):
            if self.is_leaf and self.requires_grad:
                raise AutogradError(LEAF_IN_PLACE)
            return NotImplemented
        result = op(self, other)
        value = result.data
        if value.dtype.kind in "fc" and self.data.dtype.kind not in "fc":
            raise GradvizTypeError(f"result type {_TORCH_TYPES.get(value.dtype, 'Float')} can't "
                                   "be cast to the desired output type "
                                   f"{_TORCH_TYPES.get(self.data.dtype, 'Long')}")
        if value.shape != self.data.shape:
            raise ShapeError(f"output with shape {list(self.data.shape)} doesn't match the "
                             f"broadcast shape {list(value.shape)}")
        _modify_in_place(self, value.astype(self.data.dtype, copy=False), name)
        return self

    def __iadd__(self, other: Any) -> Any:
        return self._augmented(other, operator.add, "add_")

    def __isub__(self, other: Any) -> Any:
        return self._augmented(other, operator.sub, "sub_")

    def __imul__(self, other: Any) -> Any:
        return self._augmented(other, operator.mul, "mul_")

    def __itruediv__(self, other: Any) -> Any:
        return self._augmented(other, operator.truediv, "div_")

    def float(self) -> "Tensor":
        return self.to(float32)

    def double(self) -> "Tensor":
        return self.to(float64)

    def __deepcopy__(self, memo: dict) -> "Tensor":
        """A copy of a leaf (its value, requires_grad, grad and name), as PyTorch allows.

        A computed tensor would drag its whole graph along (and recurse once per
        op): PyTorch refuses, and so does gradviz.
        """
        if not self.is_leaf:
            raise AutogradError(DEEPCOPY_LEAVES_ONLY)
        new = Tensor(self.data, requires_grad=self.requires_grad, dtype=self.data.dtype)
        memo[id(self)] = new
        new.label = self.label
        if self._grad is not None:
            new._grad = self._grad.__deepcopy__(memo)
        return new

    def __reduce_ex__(self, protocol: Any) -> tuple:
        """Pickle a leaf (value, requires_grad, grad, name); a computed tensor is refused."""
        if not self.is_leaf:
            raise AutogradError("gradviz can pickle only leaf tensors (made by the user, not "
                                "computed): a computed tensor carries its graph. Pickle "
                                "t.detach() to keep its value.")
        return (_rebuild, (self.data, self.requires_grad, self._grad, self.label))

    # -- operators ------------------------------------------------------------

    # Operators (+, *, <, ...), .T, .to(), .detach(), .clone() are bound to their ops
    # at the end of gradviz.ops: the engine knows no particular op.
    # Tensor methods that mirror module functions (x.sum(), x.sin(), ...) are
    # attached by gradviz.ops, next to the ops' definitions.


LEAF_IN_PLACE = "a leaf Variable that requires grad is being used in an in-place operation."
DEEPCOPY_LEAVES_ONLY = ("Only Tensors created explicitly by the user (graph leaves) support the "
                        "deepcopy protocol at the moment.  If you were attempting to deepcopy a "
                        "module, this may be because of a torch.nn.utils.weight_norm usage, see "
                        "https://github.com/pytorch/pytorch/pull/103001")


def _rebuild(data: np.ndarray, requires_grad: bool, grad: "Tensor | None",
             label: str | None) -> "Tensor":
    """Unpickle a leaf tensor."""
    t = Tensor(data, requires_grad=requires_grad, dtype=data.dtype)
    t._grad = grad
    t.label = label
    return t
MODIFIED = ("one of the variables needed for gradient computation has been modified by an "
            "inplace operation: [{what}]{made_by} is at version {now}; expected version "
            "{then} instead. Hint: enable anomaly detection to find the operation that failed "
            "to compute its gradient, with torch.autograd.set_detect_anomaly(True).")
_TORCH_TYPES = {float32: "Float", float64: "Double", float16: "Half", int64: "Long",
                int32: "Int", bool_: "Bool"}

# The seq of the latest in-place change to any tensor (-1: none yet).  A node made
# after it cannot hold a stale saved value, so the backward pass checks nothing for it:
# ``if last_inplace[0] > node.seq: check_saved_versions(node)``.
last_inplace = [-1]


def _modify_in_place(t: Tensor, value: np.ndarray, what: str) -> None:
    """Give ``t`` a new value in place, counting the change as PyTorch's version counter does.

    The array is replaced, never written into: what an op saved for backward stays
    as it was, and :func:`check_saved_versions` reports the change instead of a
    backward pass silently using either value.  Changing a leaf that requires grad
    is refused, and so is changing a computed value in grad mode, which gradviz
    cannot record (write it out of place, ``a = a * 0``, or under ``no_grad()``).
    """
    if is_grad_enabled() and t.requires_grad:
        if t.is_leaf:
            raise AutogradError(LEAF_IN_PLACE)
        raise AutogradError(
            f"{what}() would change a value of the graph in place, which gradviz does not "
            "record: write it out of place (a = zeros_like(a), a = a + 1) or under no_grad()")
    seq = next(_seq)
    changes = getattr(t, "_inplace", None)  # a list: appending must not copy the history
    if changes is None:
        t._inplace = changes = []
    changes.append(seq)
    t.data = value
    last_inplace[0] = seq


def check_saved_versions(node: Tensor) -> None:
    """Raise PyTorch's error if a value ``node``'s op saved for backward was changed in place since.

    Each tensor keeps the seq of each in-place change it had; one made after
    ``node`` means the saved value is stale (gradviz kept the old array, PyTorch
    would read the new one: either gradient would be wrong).  Every saved value
    is checked, where PyTorch checks only those its formula needs for the inputs
    that require grad.
    """
    for kind, i in node.op._picks:
        if kind == "shape":
            continue
        saved = node if kind == "out" else node.inputs[i]
        changes = getattr(saved, "_inplace", ())
        if changes and changes[-1] > node.seq:
            then = sum(1 for seq in changes if seq < node.seq)
            shape = ", ".join(str(n) for n in saved.data.shape)
            what = f"torch.{_TORCH_TYPES.get(saved.data.dtype, 'Float')}Tensor [{shape}]"
            made_by = "" if saved.is_leaf else \
                f", which is output 0 of {saved.op.backward_name(saved)},"
            raise AutogradError(MODIFIED.format(what=what, made_by=made_by,
                                                now=len(changes), then=then))


def _contains_tensor(data: Any) -> bool:
    """Whether nested lists or tuples hold a Tensor anywhere (iteratively: lists can be deep)."""
    stack = [data]
    while stack:
        for item in stack.pop():
            if isinstance(item, Tensor):
                return True
            if isinstance(item, (list, tuple)):
                stack.append(item)
    return False


def _as_array(data: Any, dtype: Any = None) -> np.ndarray:
    """Convert user data to an array with PyTorch's default dtypes.

    Python floats and float lists become float32 (as torch.tensor does); a numpy
    array keeps its dtype; integers stay int64, booleans bool.
    """
    if isinstance(data, Tensor):
        data = data.data
    elif isinstance(data, (list, tuple)) and _contains_tensor(data):
        # numpy would read the tensors' values and drop their graph: a gradient
        # would silently go missing.  PyTorch raises a TypeError here too.
        raise GradvizTypeError(
            "expected a Tensor or a (nested) list of numbers, but got a list holding "
            "Tensors: use stack([...]) or concatenate([...]) to combine tensors")
    if dtype is not None:
        return np.array(data, dtype=np.dtype(dtype))
    if isinstance(data, np.ndarray):
        arr = data.copy()
    elif isinstance(data, np.generic):
        arr = np.array(data)
    else:
        try:
            arr = np.array(data)
        except ValueError:
            raise GradvizValueError("could not make a tensor: the nested lists have different "
                                    "lengths (every row must have as many numbers)") from None
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
    if arr.dtype.kind not in "biuf":
        raise GradvizTypeError(f"could not make a tensor from {type(data).__name__} "
                               f"(dtype {arr.dtype}): expected numbers, a (nested) list of "
                               "numbers, or a numeric array")
    return arr


def _freeze_index(index: Any) -> Any:
    """Make an index hashable-ish and free of tensors (lists become arrays)."""
    if isinstance(index, tuple):
        return tuple(_freeze_index(i) for i in index)
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        return np.asarray(index)
    return index


def _constant_like(value: Any, ref: np.ndarray) -> "Tensor":
    """Wrap a Python number or array operand as a constant leaf.

    Python numbers take the dtype of the tensor they meet (``x * 2`` stays
    float32), as PyTorch's wrapped numbers do.
    """
    if isinstance(value, (int, float, bool)) and not isinstance(value, np.ndarray):
        kind = ref.dtype.kind
        if kind in "fc":
            dt = ref.dtype
        elif isinstance(value, float):
            dt = float32
        elif isinstance(value, bool):
            dt = bool_
        else:
            dt = ref.dtype if kind in "iu" else int64
        t = Tensor.__new__(Tensor)
        t.data = np.array(value, dtype=dt)
    else:
        t = Tensor.__new__(Tensor)
        t.data = value.copy() if isinstance(value, np.ndarray) else _as_array(value)
    t.op = None
    t.inputs = ()
    t.params = {}
    t.saved = None
    t.seq = next(_seq)
    t.requires_grad = False
    t.is_leaf = True
    t._grad = None
    t._mark = 0
    t.label = None
    t.retains_grad = False
    t.made_without_grad = False
    return t


def record(op: Any, args: tuple, params: dict) -> Tensor:
    """Run ``op`` on tensors and append the result to the tape as a new node.

    This runs once per operation, so it is written for speed: one- and
    two-input ops take a direct path.
    """
    if len(args) == 2:
        a, b = args
        if not isinstance(a, Tensor):
            a = _constant_like(a, b.data)
        elif not isinstance(b, Tensor):
            b = _constant_like(b, a.data)
        inputs = (a, b)
        arrays = (a.data, b.data)
        if arrays[0].dtype is not arrays[1].dtype:
            arrays = promote(arrays)
        if arrays[0].size * arrays[1].size > MAX_ELEMENTS \
                and arrays[0].shape != arrays[1].shape:  # a bound on what op can make
            check_output_size(op, arrays)
        wants = a.requires_grad or b.requires_grad
    elif len(args) == 1 and isinstance(args[0], Tensor):
        inputs = args
        arrays = (args[0].data,)
        wants = args[0].requires_grad
    else:
        # Python numbers take the dtype of a floating tensor operand (where(c, x, 0) stays float32).
        tensors = [a.data for a in args if isinstance(a, Tensor)]
        ref = next((d for d in tensors if d.dtype.kind in "fc"),
                   tensors[0] if tensors else np.zeros(0, np.float32))
        inputs = tuple(a if isinstance(a, Tensor) else _constant_like(a, ref) for a in args)
        arrays = promote([x.data for x in inputs])
        wants = any(x.requires_grad for x in inputs)
        # A cheap bound first (the product of the sizes): the exact check is rarely needed.
        if len(arrays) > 1 and math.prod(a.size for a in arrays) > MAX_ELEMENTS:
            check_output_size(op, arrays)
    try:
        out = op.forward(*arrays, **params)
    except (ValueError, IndexError) as exc:
        shapes = " and ".join(str(tuple(x.shape)) for x in arrays)
        raise ShapeError(f"{op.name}: cannot apply to shapes {shapes}: {exc}") from None
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    t = _new(Tensor)
    t.data = out
    t.op = op
    t.inputs = inputs
    t.params = params
    t.seq = next(_seq)
    requires = wants and op.differentiable
    if requires and not _GradMode.enabled:
        requires = False
        t.made_without_grad = True
    else:
        t.made_without_grad = False
    t.requires_grad = requires
    t.is_leaf = not requires
    t.saved = op.pick_saved(arrays, out) if requires else None
    t._grad = None
    t._mark = 0
    t.label = None
    t.retains_grad = False
    if _grouping and _CallRecorder.note is not None:  # grouping by user call is on here
        _CallRecorder.note(t)
    return t


_new = object.__new__

#: The most elements an op may produce (400 MB of float32).  Checked before the op
#: runs, so ``broadcast_to(x, (100000, 100000))`` is an error, not 40 GB asked of the
#: system; raise it for bigger work.
MAX_ELEMENTS = 100_000_000


def check_output_size(op: Any, arrays: Sequence[np.ndarray],
                      shape: tuple | None = None) -> None:
    """Raise a clear error if ``op`` on ``arrays`` (or an output of ``shape``) is too large."""
    if shape is None:
        shapes = [tuple(a.shape) for a in arrays]
        try:
            shape = op.out_shape(*shapes) if op.out_shape is not None else \
                np.broadcast_shapes(*shapes)
        except ValueError:
            return  # shapes that do not fit: the op says so itself
    count = math.prod(int(n) for n in shape)
    if count > MAX_ELEMENTS:
        raise ShapeError(f"{op.name}: the result would have {count:,} elements (shape "
                         f"{tuple(shape)}), over gradviz's limit of {MAX_ELEMENTS:,} "
                         "(gradviz.engine.tensor.MAX_ELEMENTS)")


def promote(arrays: Sequence[np.ndarray]) -> tuple:
    """PyTorch's rule where it differs from numpy's: integer operands meeting floating ones
    take the floating type (``arange(4) * 0.5`` is float32, not float64).

    Booleans are left alone: numpy already keeps ``x * mask`` in x's type, and a
    ``where`` condition must stay boolean.
    """
    floats = [a.dtype for a in arrays if a.dtype.kind == "f"]
    if not floats or not any(a.dtype.kind in "iu" for a in arrays):
        return tuple(arrays)
    target = np.result_type(*floats)
    return tuple(a.astype(target) if a.dtype.kind in "iu" else a for a in arrays)


# -- creation -------------------------------------------------------------------

def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """Make a leaf tensor (``gradviz.tensor([1., 2.], requires_grad=True)``)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def as_tensor(data: Any, dtype: Any = None) -> Tensor:
    """``data`` itself if it is already a Tensor, else a new constant tensor."""
    if isinstance(data, Tensor) and (dtype is None or data.dtype == np.dtype(dtype)):
        return data
    return Tensor(data, dtype=dtype)


def _factory(arr: np.ndarray, dtype: Any, requires_grad: bool) -> Tensor:
    if dtype is not None:
        arr = arr.astype(np.dtype(dtype))
    elif arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    t = Tensor.__new__(Tensor)
    Tensor.__init__(t, arr, requires_grad=requires_grad, dtype=arr.dtype)
    return t


def _sizes(size: Sequence[Any]) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


def arange(start: float, end: float | None = None, step: float = 1, *, dtype: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Evenly spaced values in [start, end); integers unless any bound is a float, as in PyTorch."""
    if end is None:
        start, end = 0, start
    arr = np.arange(start, end, step)
    if arr.dtype.kind == "i":
        arr = arr.astype(np.int64)
    return _factory(arr, dtype, requires_grad)


def linspace(start: float, end: float, steps: int, *, dtype: Any = None,
             requires_grad: bool = False) -> Tensor:
    return _factory(np.linspace(start, end, int(steps)), dtype, requires_grad)


def ones(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _factory(np.ones(_sizes(size)), dtype, requires_grad)


def zeros(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _factory(np.zeros(_sizes(size)), dtype, requires_grad)


def full(size: Sequence[int], fill_value: float, *, dtype: Any = None,
         requires_grad: bool = False) -> Tensor:
    return _factory(np.full(tuple(size), float(fill_value)), dtype, requires_grad)


def ones_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _factory(np.ones_like(as_tensor(t).data), dtype, requires_grad)


def zeros_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _factory(np.zeros_like(as_tensor(t).data), dtype, requires_grad)


_rng: Any = None  # made on first use: importing numpy.random costs start-up time


def _generator() -> Any:
    global _rng
    if _rng is None:
        _rng = np.random.default_rng()
    return _rng


def manual_seed(seed: int) -> None:
    """Seed gradviz's random generator (``randn``), for reproducible runs."""
    global _rng
    seed = int(seed)
    if not -2 ** 63 <= seed < 2 ** 64:
        raise GradvizValueError("Overflow when unpacking long")  # PyTorch's text
    _rng = np.random.default_rng(seed % 2 ** 64)  # negative seeds wrap, as in PyTorch


def randn(*sizes: Any, size: Sequence[int] | None = None, dtype: Any = None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal samples; ``randn(size=())`` gives a scalar, as in the lesson."""
    shape = tuple(size) if size is not None else _sizes(sizes)
    return _factory(_generator().standard_normal(shape), dtype, requires_grad)


def rand(*sizes: Any, size: Sequence[int] | None = None, dtype: Any = None,
         requires_grad: bool = False) -> Tensor:
    shape = tuple(size) if size is not None else _sizes(sizes)
    return _factory(_generator().random(shape), dtype, requires_grad)
