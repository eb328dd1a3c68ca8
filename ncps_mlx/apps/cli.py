"""The ``ncps-mlx`` command line (also ``python -m ncps_mlx``).

* ``ncps-mlx demo [--long] [--epochs N] [--out-dir DIR]`` trains a CfC with an AutoNCP wiring on
  scikit-learn's digits (8 steps × 8 pixels), prints its test accuracy and writes the wiring plot
  and the training curve (:func:`ncps_mlx.apps.demo.run_demo`).
* ``ncps-mlx wiring NAME [key=value ...] --input-dim N [--plot out.png] [--save out.json]``
  builds any wiring class, prints its summary and optionally writes its plot and JSON file;
  ``ncps-mlx wiring --list`` lists the classes and their arguments. A value ``@file.json`` is a
  saved wiring (for the wirings that wrap another, e.g. ``AdaptiveWiring``).
* ``ncps-mlx explore init|dream|search|leaderboard|export|dedup [--db PATH]`` composes,
  searches and tracks hybrid architectures (:mod:`ncps_mlx.explore`).
* ``ncps-mlx hybrid LAYER [LAYER ...] [option=value ...] --embed-size E --hidden-size H`` (or a
  named pattern: ``ncps-mlx hybrid jamba_like --layers 6 ...``) prints the stack's layer diagram
  and its exact parameter count.
* ``ncps-mlx bench [--quick] [--out DIR] [--only FAMILY[,FAMILY]] [--repeats N]`` runs the
  benchmark suite (:mod:`ncps_mlx.apps.bench.suite`) and writes ``DIR/bench.md`` and ``bench.json``.

``ncps-mlx --version`` prints the version. Bad arguments print one line,
``ncps-mlx <command>: error: ...``, and exit with code 2.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
from collections import Counter

from .. import wirings
from .._version import __version__
from ..explore.commands import add_explore
from ..viz import LAYOUTS, save_wiring_plot

#: Wiring classes the ``wiring`` command builds, by lower-case name.
_WIRINGS = {
    cls.__name__.lower(): cls
    for cls in (getattr(wirings, name) for name in wirings.__all__)
    if isinstance(cls, type)
    and issubclass(cls, wirings.Wiring)
    and cls not in (wirings.Wiring, wirings.GroupedWiring)
}


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (and exit code 2)."""

    def error(self, message):  # noqa: D102 - argparse's hook
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _wiring_names() -> str:
    return ", ".join(cls.__name__ for cls in _WIRINGS.values())


def _parse_value(text: str):
    """``"28"`` -> 28, ``"0.5"`` -> 0.5, ``"true"`` -> True, ``"null"`` -> None,
    ``"@w.json"`` -> the saved wiring, else the string."""
    if text.startswith("@"):
        return wirings.Wiring.load(text[1:])
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parse_pairs(pairs: list[str], parser: argparse.ArgumentParser, what: str) -> dict:
    arguments = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            parser.error(f"{what} must look like name=value, got {pair!r}")
        try:
            arguments[key] = _parse_value(value)
        except (OSError, ValueError, TypeError) as error:
            parser.error(f"{key}: {error}")
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


# ---------------------------------------------------------------------------- demo
def _run_demo(args, parser) -> int:
    from .demo import run_demo

    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")
    run_demo(
        long=args.long,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        out_dir=args.out_dir,
        progress=not args.no_progress,
    )
    return 0


def _add_demo(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="train a CfC + AutoNCP on handwritten digits and report test accuracy",
        description="Train a CfC with an AutoNCP(32, 10) wiring on scikit-learn's digits "
        "(each 8x8 image read as 8 time steps of 8 pixels), print the test accuracy and write "
        "demo_wiring.png and demo_training.png.",
    )
    demo.add_argument("--long", action="store_true", help="bigger circuit, more epochs")
    demo.add_argument("--epochs", type=int, help="override the number of epochs")
    demo.add_argument("--batch-size", type=int, default=32, help="digits per step (default 32)")
    demo.add_argument("--seed", type=int, default=0, help="seed of split, wiring, weights")
    demo.add_argument("--out-dir", default=".", help="where the plots go (default: .)")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    demo.set_defaults(run=_run_demo, subparser=demo)


# ---------------------------------------------------------------------------- wiring
def _signature(cls) -> str:
    return f"{cls.__name__}{inspect.signature(cls.__init__)}".replace("(self, ", "(", 1)


def _run_wiring(args, parser) -> int:
    if args.list:
        print("\n".join(_signature(cls) for cls in _WIRINGS.values()))
        return 0
    if args.name is None or args.input_dim is None:
        parser.error("NAME and --input-dim are required (or use --list)")
    cls = _WIRINGS.get(args.name.lower())
    if cls is None:
        parser.error(f"unknown wiring {args.name!r}; choose from {_wiring_names()}")
    try:
        wiring = cls(**_parse_pairs(args.arguments, parser, "wiring arguments"))
        wiring.build(args.input_dim)
    except (TypeError, ValueError) as error:
        parser.error(f"{cls.__name__}: {error}; `ncps-mlx wiring --list` shows the arguments")
    print(wiring_summary(wiring))
    if args.save:
        wiring.save(args.save)
        print(f"saved wiring to {args.save}")
    if args.plot:
        save_wiring_plot(wiring, args.plot, layout=args.layout)
        print(f"wrote plot to {args.plot}")
    return 0


def _add_wiring(commands) -> None:
    wiring = commands.add_parser(
        "wiring",
        help="build a named wiring, print its summary, plot or save it",
        description="Build a wiring, e.g. `ncps-mlx wiring AutoNCP units=28 output_size=4 "
        "--input-dim 16 --plot ncp.png`. `--list` shows every class with its arguments.",
    )
    wiring.add_argument("name", nargs="?", help=f"wiring class: {_wiring_names()}")
    wiring.add_argument(
        "arguments",
        nargs="*",
        metavar="name=value",
        help="constructor arguments (JSON values; @file.json for a saved wiring)",
    )
    wiring.add_argument("--input-dim", type=int, help="number of sensory inputs")
    wiring.add_argument("--plot", metavar="PATH", help="write the wiring plot (PNG, SVG, PDF)")
    wiring.add_argument(
        "--layout", choices=LAYOUTS, default="layered", help="plot layout (default: layered)"
    )
    wiring.add_argument("--save", metavar="PATH", help="write the wiring as JSON")
    wiring.add_argument("--list", action="store_true", help="list wiring classes and arguments")
    wiring.set_defaults(run=_run_wiring, subparser=wiring, extra_dest="arguments")


# ---------------------------------------------------------------------------- hybrid
def _run_hybrid(args, parser) -> int:
    from ..hybrid import HybridBuilder

    layers = [item for item in args.items if "=" not in item]
    options = _parse_pairs([item for item in args.items if "=" in item], parser, "options")
    if args.wiring:
        try:
            options["wiring"] = wirings.Wiring.load(args.wiring)
        except (OSError, ValueError, TypeError) as error:
            parser.error(f"--wiring: {error}")
    shared = tuple(args.shared)
    try:
        if len(layers) == 1 and layers[0] in HybridBuilder.PATTERNS:
            layers, shared = HybridBuilder.named_pattern(layers[0], args.layers)
        text = HybridBuilder.visualize(layers)
        count = HybridBuilder.param_count(
            layers, args.embed_size, args.hidden_size, shared=shared, **options
        )
    except (TypeError, ValueError) as error:
        parser.error(str(error))
    print(text)
    print(
        f"Layers: {len(layers)} ({', '.join(layers)})"
        + (f"; shared: {list(shared)}" if shared else "")
    )
    print(f"Parameters: {count:,} (embed_size={args.embed_size}, hidden_size={args.hidden_size})")
    return 0


def _add_hybrid(commands) -> None:
    from ..hybrid import HybridBuilder

    hybrid = commands.add_parser(
        "hybrid",
        help="show a hybrid layer pattern and its exact parameter count",
        description="Show a HybridBuilder stack and count its parameters exactly, e.g. "
        "`ncps-mlx hybrid mamba attention ffn --embed-size 16 --hidden-size 64 "
        "attention_num_heads=4` or `ncps-mlx hybrid jamba_like --layers 6`. Layer types: "
        f"{', '.join(HybridBuilder.layer_types())}; named patterns: "
        f"{', '.join(HybridBuilder.PATTERNS)}; options: {', '.join(HybridBuilder.options())}.",
    )
    hybrid.add_argument(
        "items",
        nargs="+",
        metavar="LAYER|option=value",
        help="layer types, or one named pattern, then builder options (JSON values)",
    )
    hybrid.add_argument("--embed-size", type=int, default=64, help="input width (default 64)")
    hybrid.add_argument("--hidden-size", type=int, default=256, help="model width (default 256)")
    hybrid.add_argument("--layers", type=int, default=6, help="layers of a named pattern")
    hybrid.add_argument(
        "--shared",
        nargs="*",
        default=[],
        metavar="LAYER",
        help="layer types whose blocks share one module",
    )
    hybrid.add_argument(
        "--wiring", metavar="PATH", help="a saved wiring (JSON) masking the projections"
    )
    hybrid.set_defaults(run=_run_hybrid, subparser=hybrid, extra_dest="items")


# ---------------------------------------------------------------------------- bench
def _run_bench(args, parser) -> int:
    from .bench.suite import markdown, parse_families, run_suite

    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    try:
        families = parse_families(args.only)
    except ValueError as error:
        parser.error(f"--only: {error}")
    report = run_suite(
        families,
        quick=args.quick,
        repeats=args.repeats,
        out=args.out,
        torch_device=args.torch_device,
    )
    print(markdown(report))
    print(f"wrote {os.path.join(args.out, 'bench.md')} and {os.path.join(args.out, 'bench.json')}")
    return 1 if any("error" in family for family in report["families"]) else 0


def _add_bench(commands) -> None:
    from .bench.suite import FAMILIES

    bench = commands.add_parser(
        "bench",
        help="run the benchmark suite against ncps, mlx-lm and step loops",
        description="Run every benchmark family in its own process and write bench.md and "
        "bench.json: ncps_mlx time, the reference's time in the same run, their ratio (ours / "
        "reference; below 1 means ncps_mlx is faster) and peak memory. Families: "
        + "; ".join(f"{name} ({what})" for name, what in FAMILIES.items())
        + ". References that are not installed (torch + ncps, mlx-lm) are reported as such.",
    )
    bench.add_argument("--quick", action="store_true", help="small sizes (a CI smoke test)")
    bench.add_argument(
        "--out",
        default="bench_results",
        metavar="DIR",
        help="output folder (default bench_results)",
    )
    bench.add_argument(
        "--only", metavar="FAMILY[,FAMILY]", help=f"run only these: {', '.join(FAMILIES)}"
    )
    bench.add_argument(
        "--repeats", type=int, default=3, metavar="N", help="timed runs, best of (default 3)"
    )
    bench.add_argument(
        "--torch-device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="device of the PyTorch references (default cpu; MLX uses its default device)",
    )
    bench.set_defaults(run=_run_bench, subparser=bench)


def build_parser() -> argparse.ArgumentParser:
    """The ``ncps-mlx`` argument parser with its ``demo``, ``wiring``, ``hybrid``, ``explore``
    and ``bench`` commands."""
    parser = _Parser(prog="ncps-mlx", description="Neural circuit policies on MLX.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_demo(commands)
    _add_wiring(commands)
    _add_hybrid(commands)
    add_explore(commands, _Parser)
    _add_bench(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ncps-mlx`` console script."""
    parser = build_parser()
    # Positional name=value pairs may follow options (`hybrid mamba --hidden-size 64 k=v`):
    # argparse leaves them over, and they join the command's positional list here.
    args, extra = parser.parse_known_args(argv)
    unknown = [item for item in extra if item.startswith("-")]
    if unknown or (extra and not hasattr(args, "extra_dest")):
        args.subparser.error(f"unrecognized arguments: {' '.join(unknown or extra)}")
    if extra:
        setattr(args, args.extra_dest, getattr(args, args.extra_dest) + extra)
    try:
        return args.run(args, args.subparser)
    except BrokenPipeError:  # `ncps-mlx ... | head`: stop quietly, like other tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as error:  # unwritable output paths and the like: one line, no traceback
        print(f"ncps-mlx {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
