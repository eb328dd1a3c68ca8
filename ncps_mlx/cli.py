"""The ``ncps-mlx`` command line (also ``python -m ncps_mlx``).

``ncps-mlx wiring NAME [key=value ...] --input-dim N [--plot out.png] [--save out.json]`` builds
a named wiring, prints its summary and optionally writes its plot and its JSON file. Bad
arguments print a one-line error and exit with code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from . import wirings
from .viz import LAYOUTS, save_wiring_plot

_WIRINGS = {
    cls.__name__.lower(): cls
    for cls in (wirings.FullyConnected, wirings.Random, wirings.NCP, wirings.AutoNCP)
}


def _wiring_names() -> str:
    return ", ".join(cls.__name__ for cls in _WIRINGS.values())


def _parse_value(text: str):
    """``"28"`` -> 28, ``"0.5"`` -> 0.5, ``"true"`` -> True, ``"null"`` -> None, else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parse_arguments(pairs: list[str], parser: argparse.ArgumentParser) -> dict:
    arguments = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            parser.error(f"wiring arguments must look like name=value, got {pair!r}")
        arguments[key] = _parse_value(value)
    return arguments


def wiring_summary(wiring) -> str:
    """A few lines describing a built wiring: sizes, synapse counts, density, neuron types."""
    types = Counter(wiring.neuron_types().tolist())
    density = wiring.synapse_count / wiring.units**2
    lines = [
        repr(wiring),
        f"  neuron types: {', '.join(f'{kind}={count}' for kind, count in types.items())}",
        f"  internal density: {density:.4f}",
    ]
    if wiring.is_built():
        sensory_density = wiring.sensory_synapse_count / (wiring.input_dim * wiring.units)
        lines.append(f"  sensory density: {sensory_density:.4f}")
    return "\n".join(lines)


def _run_wiring(args, parser) -> int:
    cls = _WIRINGS.get(args.name.lower())
    if cls is None:
        parser.error(f"unknown wiring {args.name!r}; choose from {_wiring_names()}")
    try:
        wiring = cls(**_parse_arguments(args.arguments, parser))
        wiring.build(args.input_dim)
    except (TypeError, ValueError) as error:
        parser.error(f"{cls.__name__}: {error}")
    print(wiring_summary(wiring))
    if args.save:
        wiring.save(args.save)
        print(f"saved wiring to {args.save}")
    if args.plot:
        save_wiring_plot(wiring, args.plot, layout=args.layout)
        print(f"wrote plot to {args.plot}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ncps-mlx", description="Neural circuit policies on MLX.")
    commands = parser.add_subparsers(dest="command", required=True)
    wiring = commands.add_parser(
        "wiring",
        help="build a named wiring, print its summary, plot or save it",
        description="Build a wiring, e.g. `ncps-mlx wiring AutoNCP units=28 output_size=4 "
        "--input-dim 16 --plot ncp.png`.",
    )
    wiring.add_argument("name", help=f"wiring class: {_wiring_names()}")
    wiring.add_argument(
        "arguments", nargs="*", metavar="name=value", help="constructor arguments (JSON values)"
    )
    wiring.add_argument("--input-dim", type=int, required=True, help="number of sensory inputs")
    wiring.add_argument("--plot", metavar="PATH", help="write the wiring plot (PNG, SVG, PDF)")
    wiring.add_argument(
        "--layout", choices=LAYOUTS, default="layered", help="plot layout (default: layered)"
    )
    wiring.add_argument("--save", metavar="PATH", help="write the wiring as JSON")
    wiring.set_defaults(run=_run_wiring, subparser=wiring)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ncps-mlx`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.run(args, args.subparser)


if __name__ == "__main__":
    sys.exit(main())
