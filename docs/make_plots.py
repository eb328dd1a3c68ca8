"""Write the wiring plots of the tutorials: ``docs/_static/wirings/<ClassName>.png``.

One small instance of every wiring class (``ncps_mlx.wirings.gallery.example_wirings``), drawn
with ``layout="layered"`` (sensory inputs on the left, then each layer of the circuit in signal
order). Run from anywhere:

    python docs/make_plots.py

The instances are small so that every synapse stays visible; the tutorials build circuits of
similar sizes. Each PNG must stay under ``MAX_BYTES`` (the script fails otherwise).
"""

from __future__ import annotations

import os
import sys

import matplotlib

matplotlib.use("Agg")

from ncps_mlx.viz import save_wiring_plot
from ncps_mlx.wirings.gallery import example_wirings

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_static", "wirings")
DPI = 80
MAX_BYTES = 150_000


def main() -> int:
    os.makedirs(OUT, exist_ok=True)
    too_big = []
    for name, wiring in example_wirings().items():
        path = os.path.join(OUT, f"{name}.png")
        save_wiring_plot(wiring, path, figsize=(7, 4.5), dpi=DPI, layout="layered", node_size=120)
        size = os.path.getsize(path)
        print(f"{path}: {wiring.units} neurons, {wiring.synapse_count} synapses, {size} bytes")
        if size > MAX_BYTES:
            too_big.append(path)
    if too_big:
        print(f"larger than {MAX_BYTES} bytes: {too_big}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
