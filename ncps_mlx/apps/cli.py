"""The ``ncps-mlx`` command line (also ``python -m ncps_mlx``).

* ``ncps-mlx demo [--long] [--epochs N] [--out-dir DIR]`` trains a CfC with an AutoNCP wiring on
  scikit-learn's digits (8 steps × 8 pixels), prints its test accuracy and writes the wiring plot
  and the training curve (:func:`ncps_mlx.apps.demo.run_demo`).
* ``ncps-mlx wiring NAME [key=value ...] --input-dim N [--plot out.png] [--save out.json]``
  builds any wiring class, prints its summary and optionally writes its plot and JSON file;
  ``ncps-mlx wiring --load FILE [--plot out.png]`` (or ``ncps-mlx wiring @FILE``) does the same
  for a saved wiring (our JSON or ncps's config JSON); ``ncps-mlx wiring --list`` lists the
  classes and their arguments. A ``key=@file.json`` value is a saved wiring (for the wirings
  that wrap another, e.g. ``AdaptiveWiring``, and the hybrid ``wiring`` option).
* ``ncps-mlx explore init|dream|search|leaderboard|export|dedup [--db PATH]`` composes,
  searches and tracks hybrid architectures (:mod:`ncps_mlx.explore`); ``explore export --rank N``
  writes the N-th best.
* ``ncps-mlx hybrid LAYER [LAYER ...] [option=value ...] --embed-size E --hidden-size H`` (or a
  named pattern: ``ncps-mlx hybrid jamba_like --layers 6 ...``; in a list of layers a pattern
  stands for one cycle of it) prints the stack's layer diagram and its exact parameter count.
* ``ncps-mlx bench [--quick] [--out DIR] [--only FAMILY[,FAMILY]] [--repeats N]`` runs the
  benchmark suite (:mod:`ncps_mlx.apps.bench.suite`) and writes ``DIR/bench.md`` and ``bench.json``.

``ncps-mlx --version`` prints the version. Every failure (bad argument or value, unwritable
path, unknown plot format, missing or corrupt file) is one line, ``ncps-mlx <command>: error:
...``, and exit code 2; output paths and formats are checked before any work, and results are
printed only once every file is written. Warnings raised while a command runs are printed at
its end, one line each: ``ncps-mlx <command>: note: ...``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import warnings
from collections import Counter

from .. import wirings
from .._version import __version__
from ..explore.commands import add_explore
from ..viz import LAYOUTS, save_wiring_plot
from .parsing import SEED_RANGE, CommandParser, check_ranges, one_line

#: Wiring classes the ``wiring`` command builds, by lower-case name.
_WIRINGS = {
    cls.__name__.lower(): cls
    for cls in (getattr(wirings, name) for name in wirings.__all__)
    if isinstance(cls, type)
    and issubclass(cls, wirings.Wiring)
    and cls not in (wirings.Wiring, wirings.GroupedWiring)
}


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


def _parse_pairs(pairs: list[str], parser: CommandParser, what: str) -> dict:
    arguments = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            parser.error(f"{what} must look like name=value, got {pair!r}")
        with parser.reporting(key):
            arguments[key] = _parse_value(value)
    return arguments


def wiring_summary(wiring) -> str:
    """A few lines describing a wiring: sizes, synapse counts, densities, neuron types."""
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

    parser.output_path(args.out_dir, "--out-dir", kind="dir")
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
    demo.set_defaults(
        run=_run_demo,
        subparser=demo,
        ranges={"epochs": (1, None), "batch_size": (1, None), "seed": SEED_RANGE},
    )


# ---------------------------------------------------------------------------- wiring
def _signature(cls) -> str:
    return f"{cls.__name__}{inspect.signature(cls.__init__)}".replace("(self, ", "(", 1)


def _new_wiring(args, parser):
    """The wiring ``NAME key=value ... --input-dim N`` describes, built."""
    if args.name is None or args.input_dim is None:
        parser.error("NAME and --input-dim are required (or --load FILE, or --list)")
    cls = _WIRINGS.get(args.name.lower())
    if cls is None:
        parser.error(f"unknown wiring {args.name!r}; choose from {_wiring_names()}")
    arguments = _parse_pairs(args.arguments, parser, "wiring arguments")
    with parser.reporting(cls.__name__, hint="`ncps-mlx wiring --list` shows the arguments"):
        wiring = cls(**arguments)
        wiring.build(args.input_dim)
    return wiring


def _loaded_wiring(args, parser):
    """The wiring saved in ``--load FILE``, built with ``--input-dim`` if it was not."""
    if args.name is not None or args.arguments:
        parser.error("--load FILE takes no NAME or name=value arguments")
    with parser.reporting("--load"):
        wiring = wirings.Wiring.load(args.load)
        if args.input_dim is not None and not wiring.is_built():
            wiring.build(args.input_dim)
    if args.input_dim not in (None, wiring.input_dim):
        parser.error(
            f"--input-dim {args.input_dim}: {args.load!r} holds a wiring built for "
            f"{wiring.input_dim} inputs"
        )
    if args.plot and not wiring.is_built():
        parser.error(f"--plot: {args.load!r} holds an unbuilt wiring; give --input-dim N")
    return wiring


def _run_wiring(args, parser) -> int:
    if args.list:
        print("\n".join(_signature(cls) for cls in _WIRINGS.values()))
        return 0
    if args.name is not None and args.name.startswith("@"):  # `wiring @w.json`: --load w.json
        if args.load is not None:
            parser.error("give @FILE or --load FILE, not both")
        args.load, args.name = args.name[1:], None
    plot = parser.output_path(args.plot, "--plot", kind="plot")
    save = parser.output_path(args.save, "--save")
    wiring = _new_wiring(args, parser) if args.load is None else _loaded_wiring(args, parser)
    lines = [wiring_summary(wiring)]
    if not wiring.is_built():  # e.g. ncps's config of an AutoNCP: no input size stored
        lines.append("  not built: --input-dim N builds it")
    if plot:  # first: matplotlib may still refuse at writing time (e.g. pgf without LaTeX)
        with parser.reporting("--plot", errors=(OSError, ValueError, RuntimeError)):
            save_wiring_plot(wiring, plot, layout=args.layout)
    if save:
        wiring.save(save)
        lines.append(f"saved wiring to {save}")
    print("\n".join([*lines, *([f"wrote plot to {plot}"] if plot else [])]))
    return 0


def _add_wiring(commands) -> None:
    wiring = commands.add_parser(
        "wiring",
        help="build a named wiring or load a saved one; print its summary, plot or save it",
        description="Build a wiring, e.g. `ncps-mlx wiring AutoNCP units=28 output_size=4 "
        "--input-dim 16 --plot ncp.png`, or inspect a saved one: `ncps-mlx wiring --load "
        "ncp.json --plot ncp.png` (or `ncps-mlx wiring @ncp.json`). `--list` shows every class "
        "with its arguments.",
    )
    wiring.add_argument(
        "name", nargs="?", help=f"wiring class ({_wiring_names()}), or @FILE for --load FILE"
    )
    wiring.add_argument(
        "arguments",
        nargs="*",
        metavar="name=value",
        help="constructor arguments (JSON values; name=@file.json for a saved wiring)",
    )
    wiring.add_argument(
        "--input-dim", type=int, help="number of sensory inputs (builds an unbuilt loaded wiring)"
    )
    wiring.add_argument(
        "--load",
        metavar="FILE",
        help="a saved wiring: ncps-mlx JSON (Wiring.save, --save) or ncps's get_config() JSON",
    )
    wiring.add_argument("--plot", metavar="PATH", help="write the wiring plot (PNG, SVG, PDF)")
    wiring.add_argument(
        "--layout", choices=LAYOUTS, default="layered", help="plot layout (default: layered)"
    )
    wiring.add_argument("--save", metavar="PATH", help="write the wiring as JSON")
    wiring.add_argument("--list", action="store_true", help="list wiring classes and arguments")
    wiring.set_defaults(
        run=_run_wiring, subparser=wiring, extra_dest="arguments", ranges={"input_dim": (1, None)}
    )


# ---------------------------------------------------------------------------- hybrid
def _stack(names: list[str], args, parser) -> tuple[list[str], tuple]:
    """The layer list and shared layer types that the hybrid command's LAYER items name."""
    from ..hybrid import HybridBuilder, expand_layers

    if not names:
        parser.error("give layer types or a named pattern before the options")
    shared = ()
    if len(names) == 1 and names[0] in HybridBuilder.PATTERNS:
        layers, shared = HybridBuilder.named_pattern(names[0], args.layers or 6)
    elif args.layers is not None:
        parser.error(f"--layers sets the depth of one named pattern, not of {names}")
    else:
        with parser.reporting():
            layers = expand_layers(names)
    strangers = [name for name in args.shared if name not in layers]
    if strangers:
        parser.error(f"--shared {strangers}: not among the stack's layers {sorted(set(layers))}")
    return layers, tuple(dict.fromkeys([*shared, *args.shared]))


def _run_hybrid(args, parser) -> int:
    from ..hybrid import HybridBuilder

    options = _parse_pairs([item for item in args.items if "=" in item], parser, "options")
    if args.wiring:
        if "wiring" in options:
            parser.error("give --wiring PATH or wiring=..., not both")
        with parser.reporting("--wiring"):
            options["wiring"] = wirings.Wiring.load(args.wiring)
    layers, shared = _stack([item for item in args.items if "=" not in item], args, parser)
    with parser.reporting():
        text = HybridBuilder.visualize(layers)
        count = HybridBuilder.param_count(
            layers, args.embed_size, args.hidden_size, shared=shared, **options
        )
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
        f"{', '.join(HybridBuilder.PATTERNS)} (alone: --layers deep; in a list of layers: one "
        f"cycle); options: {', '.join(HybridBuilder.options())}.",
    )
    hybrid.add_argument(
        "items",
        nargs="+",
        metavar="LAYER|option=value",
        help="layer types and named patterns, then builder options (JSON values; "
        "wiring=@file.json for a saved wiring)",
    )
    hybrid.add_argument("--embed-size", type=int, default=64, help="input width (default 64)")
    hybrid.add_argument("--hidden-size", type=int, default=256, help="model width (default 256)")
    hybrid.add_argument(
        "--layers", type=int, help="depth of a named pattern given alone (default 6)"
    )
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
    hybrid.set_defaults(
        run=_run_hybrid,
        subparser=hybrid,
        extra_dest="items",
        ranges={name: (1, None) for name in ("embed_size", "hidden_size", "layers")},
    )


# ---------------------------------------------------------------------------- bench
def _run_bench(args, parser) -> int:
    from .bench.suite import markdown, parse_families, run_suite

    with parser.reporting("--only"):
        families = parse_families(args.only)
    parser.output_path(args.out, "--out", kind="dir")
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
    bench.set_defaults(run=_run_bench, subparser=bench, ranges={"repeats": (1, None)})


def build_parser() -> argparse.ArgumentParser:
    """The ``ncps-mlx`` argument parser with its ``demo``, ``wiring``, ``hybrid``, ``explore``
    and ``bench`` commands."""
    parser = CommandParser(prog="ncps-mlx", description="Neural circuit policies on MLX.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        parser_class=CommandParser,
        help="`ncps-mlx COMMAND --help` lists a command's options",
    )
    _add_demo(commands)
    _add_wiring(commands)
    _add_hybrid(commands)
    add_explore(commands, CommandParser)
    _add_bench(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ncps-mlx`` console script.

    Returns:
        The exit code: 0 on success, 1 where a command's work itself failed (e.g. a benchmark
        family). Bad input exits with code 2 (SystemExit) through
        ``ncps_mlx.apps.parsing.CommandParser.error``.
    """
    parser = build_parser()
    # Positional name=value pairs may follow options (`hybrid mamba --hidden-size 64 k=v`):
    # argparse leaves them over, and they join the command's positional list here.
    args, extra = parser.parse_known_args(argv)
    command = args.subparser
    unknown = [item for item in extra if item.startswith("-")]
    if unknown or (extra and not hasattr(args, "extra_dest")):
        command.error(f"unrecognized arguments: {' '.join(unknown or extra)}")
    if extra:
        setattr(args, args.extra_dest, getattr(args, args.extra_dest) + extra)
    check_ranges(args, command)
    with warnings.catch_warnings(record=True) as caught:
        try:
            code = args.run(args, command)
        except BrokenPipeError:  # `ncps-mlx ... | head`: stop quietly, like other tools
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        except OSError as error:  # what the checks could not foresee, e.g. a full disk
            command.fail(error)
    for note in dict.fromkeys(one_line(warning.message) for warning in caught):
        print(f"{command.prog}: note: {note}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
