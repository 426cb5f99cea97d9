"""Teaching the autograd lesson from the terminal: each of its points as a library function.

* :mod:`gradviz.teach.lesson`: the lesson's runnable samples (shipped in
  ``samples/`` beside this file), listed from their own docstrings, run, drawn;
* :mod:`gradviz.teach.cost`: forward versus reverse accumulation, measured on a tape;
* :mod:`gradviz.teach.paths`: the chain rule as a sum over paths, checked against
  the adjoint;
* :mod:`gradviz.teach.plot`: f and df/dx of an elementwise function, the derivative
  from the tape.

The CLI commands ``gradviz lesson``, ``cost``, ``explain`` and ``plot`` print what
these return; nothing here computes a derivative itself: every number comes from
the engine (``BackwardPass``, ``ForwardSweep`` and the ops' rules).
"""
