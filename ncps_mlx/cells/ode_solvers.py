"""Fixed-step explicit ODE solvers shared by the cells: Euler, Heun and classic Runge-Kutta.

:func:`integrate` advances ``dy/dt = f(y)`` over a span ``dt`` in ``unfolds`` equal steps. The
solvers use only arithmetic on their arguments, so they run inside ``mx.compile``\\ d steps
(and on numpy arrays), and ``dt`` may be a float or an array that broadcasts against ``y``
(e.g. per-sample timespans ``(B, 1)``).

=========  =====  ==========================  ======================
solver     order  evaluations of ``f``/step   update
=========  =====  ==========================  ======================
``euler``  1      1                           ``y + h k1``
``heun``   2      2                           ``y + h (k1 + k2) / 2``
``rk4``    4      4                           ``y + h (k1 + 2 k2 + 2 k3 + k4) / 6``
=========  =====  ==========================  ======================
"""

from __future__ import annotations

from collections.abc import Callable

from .._validation import check_int

__all__ = ["SOLVERS", "euler_step", "heun_step", "rk4_step", "check_solver", "integrate"]


def euler_step(f: Callable, y, h):
    """One explicit Euler step of length ``h``: ``y + h f(y)``."""
    return y + h * f(y)


def heun_step(f: Callable, y, h):
    """One Heun step (explicit trapezoid): the mean of the slopes at ``y`` and at its Euler
    prediction."""
    k1 = f(y)
    k2 = f(y + h * k1)
    return y + (0.5 * h) * (k1 + k2)


def rk4_step(f: Callable, y, h):
    """One step of the classic fourth-order Runge-Kutta method."""
    k1 = f(y)
    k2 = f(y + (0.5 * h) * k1)
    k3 = f(y + (0.5 * h) * k2)
    k4 = f(y + h * k3)
    return y + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


#: Solvers by name.
SOLVERS = {"euler": euler_step, "heun": heun_step, "rk4": rk4_step}


def check_solver(solver: str) -> str:
    """Validate a solver name (a key of :data:`SOLVERS`); ValueError naming ``solver``."""
    if not isinstance(solver, str) or solver not in SOLVERS:
        raise ValueError(f"solver must be one of {sorted(SOLVERS)}, got {solver!r}")
    return solver


def integrate(f: Callable, y, dt, unfolds: int = 1, solver: str = "rk4"):
    """Advance ``dy/dt = f(y)`` from ``y`` over ``dt`` with ``unfolds`` steps of ``dt / unfolds``.

    Args:
        f (Callable): The vector field, ``f(y)`` shaped like ``y``.
        y: The initial value (an ``mx.array`` or numpy array).
        dt (float | mx.array): The span to integrate over; arrays broadcast against ``y``.
        unfolds (int): Number of equal steps (>= 1).
        solver (str): ``"euler"``, ``"heun"`` or ``"rk4"``.

    Returns:
        The approximation of ``y(t + dt)``.
    """
    step = SOLVERS[check_solver(solver)]
    h = dt * (1.0 / check_int(unfolds, "unfolds", minimum=1))
    for _ in range(unfolds):
        y = step(f, y, h)
    return y
