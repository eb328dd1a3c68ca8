"""A tiny training loop shared by the tests that check a model learns."""

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim


def train(model, loss_fn, steps: int, learning_rate: float, after_step=None) -> list[float]:
    """Adam on ``loss_fn(model)`` for ``steps`` steps; returns the losses.

    ``after_step(step)`` runs after each update (e.g. to rewire an adaptive wiring).
    """
    optimizer = optim.Adam(learning_rate=learning_rate)
    loss_and_grad = nn.value_and_grad(model, loss_fn)
    losses = []
    for step in range(steps):
        loss, grads = loss_and_grad(model)
        optimizer.update(model, grads)
        mx.eval(model.parameters(), optimizer.state)
        losses.append(loss.item())
        if after_step is not None:
            after_step(step)
    return losses
