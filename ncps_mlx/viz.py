"""Graphs and plots of wirings (networkx and matplotlib are imported lazily).

:func:`wiring_graph` turns a :class:`~ncps_mlx.wirings.Wiring` into a ``networkx.DiGraph``;
:func:`draw_wiring` draws it with matplotlib like ncps's ``Wiring.draw_graph`` (one call per
neuron type and per polarity, not per node); :func:`save_wiring_plot` writes a PNG without
touching pyplot's global state. The saved plots carry two legends: the neuron groups (their
colours) and the synapse polarity (excitatory and inhibitory synapse colours).
"""

from __future__ import annotations

import os

import numpy as np

__all__ = [
    "wiring_graph",
    "draw_wiring",
    "synapse_legend_handles",
    "save_wiring_plot",
    "save_wiring_gallery",
    "LAYOUTS",
]

#: Layout names accepted by :func:`draw_wiring`; ``"layered"`` puts each neuron layer in a column.
LAYOUTS = ("shell", "layered", "kamada", "circular", "random", "spring", "spectral", "spiral")

_DEFAULT_NEURON_COLORS = {
    "sensory": "tab:olive",
    "inter": "tab:blue",
    "command": "tab:purple",
    "motor": "tab:orange",
}
# Neither green nor red: those are the synapse colours, and the legend tells them apart.
_SPARE_COLORS = ("tab:cyan", "tab:brown", "tab:pink", "tab:gray", "gold", "navy", "teal")
_DEFAULT_SYNAPSE_COLORS = {"excitatory": "tab:green", "inhibitory": "tab:red"}
_GALLERY_HEADER = 0.4  # inches above a gallery's panels for its synapse legend


def wiring_graph(wiring, include_sensory_neurons: bool = True):
    """Return ``wiring`` as a ``networkx.DiGraph``.

    Nodes: ``"neuron_{i}"`` for ``i < units`` and, if ``include_sensory_neurons``,
    ``"sensory_{j}"`` for ``j < input_dim``, with attributes ``neuron_type`` (``"sensory"`` or
    the wiring's type name) and ``layer`` (0 for sensory, then ``1..num_layers`` in signal
    order). Edges: one per synapse, with ``polarity`` (``"excitatory"``/``"inhibitory"``, as in
    ncps) and ``sign`` (+1/-1).

    Raises:
        ValueError: If the wiring is not built (its input dimension is unknown).
    """
    import networkx as nx

    if not wiring.is_built():
        raise ValueError(
            "get_graph needs a built wiring: call wiring.build(input_dim) first "
            "(the input dimension decides the sensory neurons)"
        )
    graph = nx.DiGraph()
    neuron_names = np.array([f"neuron_{i}" for i in range(wiring.units)], dtype=object)
    layer_of = np.zeros(wiring.units, np.int64)
    for layer in range(wiring.num_layers):
        layer_of[wiring.get_neurons_of_layer(layer)] = layer + 1
    types = wiring.neuron_types()
    graph.add_nodes_from(
        (name, {"neuron_type": str(kind), "layer": int(layer)})
        for name, kind, layer in zip(neuron_names, types, layer_of, strict=True)
    )
    _add_edges(graph, neuron_names, neuron_names, wiring.synapses())
    if include_sensory_neurons:
        sensory_names = np.array([f"sensory_{i}" for i in range(wiring.input_dim)], dtype=object)
        graph.add_nodes_from(
            (name, {"neuron_type": "sensory", "layer": 0}) for name in sensory_names
        )
        _add_edges(graph, sensory_names, neuron_names, wiring.sensory_synapses())
    return graph


def _add_edges(graph, source_names, target_names, synapses) -> None:
    src, dst, polarity = synapses
    labels = np.where(polarity > 0, "excitatory", "inhibitory")
    graph.add_edges_from(
        (s, d, {"polarity": str(label), "sign": int(sign)})
        for s, d, label, sign in zip(
            source_names[src], target_names[dst], labels, polarity, strict=True
        )
    )


def draw_wiring(
    wiring,
    layout: str = "shell",
    neuron_colors: dict | None = None,
    synapse_colors: str | dict | None = None,
    draw_labels: bool = False,
    ax=None,
    seed: int = 0,
    node_size: float = 300,
    legend: bool = False,
):
    """Draw ``wiring`` with matplotlib and return legend handles (like ncps's ``draw_graph``).

    Args:
        wiring: A built :class:`~ncps_mlx.wirings.Wiring`.
        layout: One of :data:`LAYOUTS`.
        neuron_colors: ``{neuron_type: color}``; missing types get defaults (sensory olive,
            inter blue, command purple, motor orange, other groups from a spare palette
            without the synapse colours green and red).
        synapse_colors: One color for all synapses, or ``{"excitatory": c, "inhibitory": c}``
            (default: excitatory green, inhibitory red).
        draw_labels: Whether to print node names.
        ax: Matplotlib axes to draw on (default: ``plt.gca()``).
        seed: Seed of the randomised layouts (``random``, ``spring``).
        node_size: Marker size of the neurons.
        legend: Also draw two legends right of the axes, as :func:`save_wiring_plot` does:
            the neuron groups at the top (``ax.get_legend()``), the synapse polarity at the
            bottom.

    Returns:
        A list of ``matplotlib.patches.Patch``, one per neuron type present, for ``legend``
        (as ncps returns; :func:`synapse_legend_handles` gives the polarity entries).
    """
    ax = _axes(ax)
    neuron_handles, synapse_handles = _draw(
        wiring, layout, neuron_colors, synapse_colors, draw_labels, ax, seed, node_size
    )
    if legend:
        _add_legends(ax, neuron_handles, synapse_handles)
    return neuron_handles


def synapse_legend_handles(wiring, synapse_colors: str | dict | None = None) -> list:
    """Legend entries (``matplotlib.lines.Line2D``) for the synapse colours of ``wiring``.

    One entry per polarity present (``"Excitatory synapses"``, ``"Inhibitory synapses"``), or a
    single ``"Synapses"`` entry when both polarities share one colour.
    """
    return _synapse_handles(wiring_graph(wiring), _synapse_colors(synapse_colors))


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        return plt.gca()
    return ax


def _draw(wiring, layout, neuron_colors, synapse_colors, draw_labels, ax, seed, node_size):
    """Draw the graph on ``ax``; return the neuron-group and the synapse-polarity handles."""
    import matplotlib.patches as mpatches
    import networkx as nx

    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    synapse_colors = _synapse_colors(synapse_colors)
    if neuron_colors is not None and not isinstance(neuron_colors, dict):
        raise TypeError(
            f"neuron_colors must be a dict of neuron_type -> color, got {neuron_colors!r}"
        )
    graph = wiring_graph(wiring)
    positions = _layout(graph, layout, seed)
    nodes_by_type: dict[str, list[str]] = {}
    # Sensory first, then by layer, so the legend reads in signal order.
    for node, data in sorted(graph.nodes(data=True), key=lambda item: item[1]["layer"]):
        nodes_by_type.setdefault(data["neuron_type"], []).append(node)
    colors = _neuron_colors(nodes_by_type, neuron_colors or {})
    handles = []
    for kind, nodes in nodes_by_type.items():
        nx.draw_networkx_nodes(
            graph, positions, nodelist=nodes, node_color=colors[kind], node_size=node_size, ax=ax
        )
        handles.append(mpatches.Patch(color=colors[kind], label=f"{_readable(kind)} neurons"))
    for polarity, color in synapse_colors.items():
        edges = [(u, v) for u, v, p in graph.edges(data="polarity") if p == polarity]
        if edges:
            nx.draw_networkx_edges(
                graph, positions, edgelist=edges, edge_color=color, node_size=node_size, ax=ax
            )
    if draw_labels:
        nx.draw_networkx_labels(graph, positions, ax=ax)
    ax.set_axis_off()
    return handles, _synapse_handles(graph, synapse_colors)


def _synapse_handles(graph, synapse_colors: dict) -> list:
    from matplotlib.lines import Line2D

    present = {polarity for _, _, polarity in graph.edges(data="polarity")}
    if not present:
        return []
    if synapse_colors["excitatory"] == synapse_colors["inhibitory"]:
        return [Line2D([], [], color=synapse_colors["excitatory"], label="Synapses")]
    return [
        Line2D([], [], color=synapse_colors[polarity], label=f"{polarity.capitalize()} synapses")
        for polarity in ("excitatory", "inhibitory")
        if polarity in present
    ]


def _add_legends(ax, neuron_handles, synapse_handles) -> None:
    """Right of ``ax``: the neuron groups at the top (``ax.get_legend()``), the synapse
    polarity at the bottom."""
    if synapse_handles:
        polarity = ax.legend(
            handles=synapse_handles,
            loc="lower left",
            bbox_to_anchor=(1.0, 0.0),
            frameon=False,
        )
        ax.add_artist(polarity)  # the next ax.legend() replaces ax.get_legend(), not this one
    ax.legend(handles=neuron_handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)


def save_wiring_plot(
    wiring, path: str | os.PathLike, figsize=(8, 6), dpi: int = 100, **draw_kwargs
) -> None:
    """Draw ``wiring`` with its legends into a new figure and save it to ``path`` (PNG, SVG...).

    Uses ``matplotlib.figure.Figure`` directly, so it works headless and leaves pyplot alone.
    ``draw_kwargs`` go to :func:`draw_wiring`. Beside the graph, ``ax.get_legend()`` names the
    neuron groups and a second legend below it the synapse polarity (by colour).
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, dpi=dpi)
    ax = figure.add_subplot()
    draw_wiring(wiring, ax=ax, legend=True, **draw_kwargs)
    ax.set_title(f"{type(wiring).__name__}: {wiring.units} neurons, {wiring.input_dim} inputs")
    figure.tight_layout()
    figure.savefig(path)


def save_wiring_gallery(
    wirings: dict,
    path: str | os.PathLike,
    columns: int = 4,
    panel_size=(4.0, 3.0),
    dpi: int = 80,
    **draw_kwargs,
) -> None:
    """Draw several built wirings side by side into one figure and save it to ``path``.

    Args:
        wirings: ``{title: built wiring}``, drawn left to right, top to bottom.
        path: Output file (PNG, SVG, PDF...).
        columns: Panels per row.
        panel_size: ``(width, height)`` of one panel in inches.
        dpi: Resolution of raster formats.
        **draw_kwargs: Passed to :func:`draw_wiring` (e.g. ``layout="layered"``,
            ``node_size=60``).

    Each panel's legend (``ax.get_legend()``, below it) names its neuron groups; one legend
    at the top of the figure (``figure.legends[0]``) gives the synapse polarity colours.
    """
    from matplotlib.figure import Figure

    if not wirings:
        raise ValueError("wirings must hold at least one wiring")
    if int(columns) < 1:
        raise ValueError(f"columns must be >= 1, got {columns!r}")
    columns = min(int(columns), len(wirings))
    rows = -(-len(wirings) // columns)
    height = panel_size[1] * rows
    figure = Figure(figsize=(panel_size[0] * columns, height + _GALLERY_HEADER), dpi=dpi)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    polarity = {}  # label -> handle, over all panels
    for ax, (title, wiring) in zip(axes, wirings.items(), strict=False):
        handles = draw_wiring(wiring, ax=ax, **draw_kwargs)
        for handle in synapse_legend_handles(wiring, draw_kwargs.get("synapse_colors")):
            polarity.setdefault(handle.get_label(), handle)
        ax.set_title(
            f"{title}\n{wiring.units} neurons, {wiring.synapse_count} synapses", fontsize=9
        )
        # Below the panel: inside it, the legend would cover neurons.
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            ncols=2,
            fontsize=7,
            frameon=False,
        )
    for ax in axes[len(wirings) :]:
        ax.set_axis_off()
    if polarity:  # the same colours in every panel: one legend for all, above the panels
        figure.legend(
            handles=list(polarity.values()), loc="upper center", ncols=len(polarity), frameon=False
        )
    figure.tight_layout(rect=(0, 0, 1, height / (height + _GALLERY_HEADER)))
    figure.savefig(path)


def _readable(neuron_type: str) -> str:
    """``"layer_0"`` -> ``"Layer 0"``, ``"first.inter"`` -> ``"First inter"`` (legend labels)."""
    words = neuron_type.replace("_", " ").replace(".", " ")
    return words[:1].upper() + words[1:]


def _layout(graph, layout: str, seed: int) -> dict:
    try:
        return _networkx_layout(graph, layout, seed)
    except ModuleNotFoundError as error:
        if error.name != "scipy":
            raise
        raise ImportError(
            f"layout={layout!r} on {graph.number_of_nodes()} nodes needs scipy "
            "(pip install scipy); "
            "layout='layered' or 'shell' work without it"
        ) from None


def _networkx_layout(graph, layout: str, seed: int) -> dict:
    import networkx as nx

    if layout == "layered":
        # Columns by layer; within a column, nodes keep their (id) order, so groups that share
        # a layer are drawn as contiguous blocks rather than interleaved.
        columns: dict[int, list] = {}
        for node, layer in graph.nodes(data="layer"):
            columns.setdefault(layer, []).append(node)
        return nx.multipartite_layout(graph, subset_key=dict(sorted(columns.items())))
    if layout in ("random", "spring"):
        return getattr(nx, f"{layout}_layout")(graph, seed=seed)
    if layout == "kamada":
        return nx.kamada_kawai_layout(graph)
    return getattr(nx, f"{layout}_layout")(graph)


def _synapse_colors(synapse_colors) -> dict:
    if synapse_colors is None:
        return dict(_DEFAULT_SYNAPSE_COLORS)
    if isinstance(synapse_colors, str):
        return {"excitatory": synapse_colors, "inhibitory": synapse_colors}
    if isinstance(synapse_colors, dict) and set(synapse_colors) == {"excitatory", "inhibitory"}:
        return dict(synapse_colors)
    raise ValueError(
        "synapse_colors must be a color string or a dict with keys 'excitatory' and 'inhibitory', "
        f"got {synapse_colors!r}"
    )


def _neuron_colors(nodes_by_type: dict, user_colors: dict) -> dict:
    colors = {}
    spare = iter(_SPARE_COLORS * (1 + len(nodes_by_type) // len(_SPARE_COLORS)))
    for kind in nodes_by_type:
        colors[kind] = user_colors.get(kind) or _DEFAULT_NEURON_COLORS.get(kind) or next(spare)
    return colors
