"""Draw a small instance of every wiring class into one figure and print their sizes.

    python examples/wiring_gallery.py                   # layered layout, ~10 s on a 2-core CPU
    python examples/wiring_gallery.py --layout shell    # another layout (see --help)
    python examples/wiring_gallery.py --long            # also one plot per wiring

The wirings are ``ncps_mlx.wirings.gallery.example_wirings()`` (one built instance per public
wiring class). The script prints one line per wiring (class, neurons, synapses between neurons,
sensory synapses) and writes ``wiring_gallery_<layout>.png`` to ``--out-dir`` (default
``examples_output/``); ``--long`` adds ``wiring_<name>.png``, one larger plot per wiring.
"""

from __future__ import annotations

import argparse
import os

from ncps_mlx.viz import LAYOUTS, save_wiring_gallery, save_wiring_plot
from ncps_mlx.wirings.gallery import example_wirings


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", choices=LAYOUTS, default="layered")
    parser.add_argument("--columns", type=int, default=5, help="panels per row")
    parser.add_argument("--long", action="store_true", help="also write one plot per wiring")
    parser.add_argument("--out-dir", default="examples_output", help="where the PNGs go")
    args = parser.parse_args()
    wirings = example_wirings()
    print(f"{'class':24} {'neurons':>7} {'synapses':>8} {'sensory synapses':>16}")
    for wiring in wirings.values():
        print(
            f"{type(wiring).__name__:24} {wiring.units:7} {wiring.synapse_count:8}"
            f" {wiring.sensory_synapse_count:16}"
        )
    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, f"wiring_gallery_{args.layout}.png")
    save_wiring_gallery(
        wirings,
        path,
        columns=args.columns,
        panel_size=(3.8, 3.8),
        dpi=80,
        layout=args.layout,
        node_size=50,
    )
    print(f"wrote {path} ({len(wirings)} wirings)")
    if args.long:
        for name, wiring in wirings.items():
            save_wiring_plot(
                wiring, os.path.join(args.out_dir, f"wiring_{name}.png"), layout=args.layout
            )
        print(f"wrote {len(wirings)} wiring_<name>.png plots to {args.out_dir}")


if __name__ == "__main__":
    main()
