"""Graph export and plots: node/edge counts equal synapse counts, PNGs are written, legends
name the neuron groups and the synapse polarity, and plot labels use the progress bar's names."""

import dataclasses
import re
from collections import Counter

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.legend import Legend  # noqa: E402

from ncps_mlx import viz, wirings
from ncps_mlx.wirings import NCP, AutoNCP, FullyConnected, Random, Wiring
from ncps_mlx.wirings.gallery import example_wirings


def built(wiring, input_dim=5):
    wiring.build(input_dim)
    return wiring


WIRINGS = {
    "fully_connected": lambda: built(FullyConnected(6, 2)),
    "random": lambda: built(Random(12, 3, sparsity_level=0.6)),
    "ncp": lambda: built(NCP(8, 6, 2, 3, 2, 4, 2)),
    "autoncp": lambda: built(AutoNCP(20, 3)),
}


@pytest.mark.parametrize("make", WIRINGS.values(), ids=WIRINGS.keys())
def test_graph_has_a_node_per_neuron_and_an_edge_per_synapse(make):
    wiring = make()
    graph = wiring.get_graph()
    assert isinstance(graph, nx.DiGraph)
    assert graph.number_of_nodes() == wiring.units + wiring.input_dim
    assert graph.number_of_edges() == wiring.synapse_count + wiring.sensory_synapse_count
    without_sensory = wiring.get_graph(include_sensory_neurons=False)
    assert without_sensory.number_of_nodes() == wiring.units
    assert without_sensory.number_of_edges() == wiring.synapse_count


def test_graph_edges_carry_the_stored_polarity():
    wiring = Wiring(3)
    wiring.add_synapses([0, 1, 2], [1, 2, 0], [1, -1, 1])
    wiring.build(2)
    wiring.add_sensory_synapse(1, 0, -1)
    graph = wiring.get_graph()
    assert graph.edges["neuron_0", "neuron_1"] == {"polarity": "excitatory", "sign": 1}
    assert graph.edges["neuron_1", "neuron_2"] == {"polarity": "inhibitory", "sign": -1}
    assert graph.edges["sensory_1", "neuron_0"] == {"polarity": "inhibitory", "sign": -1}
    assert graph.number_of_edges() == 4


def test_graph_node_types_and_layers_follow_the_ncp_structure():
    wiring = built(NCP(4, 3, 2, 2, 2, 1, 2), input_dim=3)
    graph = wiring.get_graph()
    types = nx.get_node_attributes(graph, "neuron_type")
    layers = nx.get_node_attributes(graph, "layer")
    assert [types[f"neuron_{i}"] for i in range(9)] == ["motor"] * 2 + ["command"] * 3 + [
        "inter"
    ] * 4
    assert [layers[f"neuron_{i}"] for i in range(9)] == [3] * 2 + [2] * 3 + [1] * 4
    assert all(types[f"sensory_{i}"] == "sensory" and layers[f"sensory_{i}"] == 0 for i in range(3))


def test_graph_of_an_unbuilt_wiring_is_refused():
    with pytest.raises(ValueError, match="build"):
        AutoNCP(10, 2).get_graph()


@pytest.mark.parametrize("layout", viz.LAYOUTS)
def test_draw_graph_returns_one_legend_handle_per_neuron_type(layout):
    wiring = built(AutoNCP(16, 2))
    figure = plt.figure()
    handles = wiring.draw_graph(layout=layout, draw_labels=True)
    assert [h.get_label() for h in handles] == [
        "Sensory neurons",
        "Inter neurons",
        "Command neurons",
        "Motor neurons",
    ]
    assert len(figure.axes[0].collections) >= 4  # one node collection per type, plus edges
    plt.close(figure)


def test_draw_graph_uses_the_requested_colors():
    wiring = built(FullyConnected(3, 1), input_dim=1)
    figure = plt.figure()
    handles = wiring.draw_graph(neuron_colors={"motor": "black"}, synapse_colors="gray")
    colors = {h.get_label(): matplotlib.colors.to_hex(h.get_facecolor()) for h in handles}
    assert colors["Motor neurons"] == "#000000"
    assert colors["Inter neurons"] == matplotlib.colors.to_hex("tab:blue")
    plt.close(figure)


def test_draw_graph_rejects_unknown_layout_and_bad_colors():
    wiring = built(FullyConnected(3))
    with pytest.raises(ValueError, match="layout"):
        wiring.draw_graph(layout="hexagonal")
    with pytest.raises(ValueError, match="synapse_colors"):
        wiring.draw_graph(synapse_colors={"excitatory": "red"})
    with pytest.raises(TypeError, match="neuron_colors"):
        wiring.draw_graph(neuron_colors=["red"])


def test_save_wiring_plot_writes_a_png(tmp_path):
    path = tmp_path / "ncp.png"
    viz.save_wiring_plot(built(AutoNCP(24, 4), input_dim=8), path, layout="layered")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert np.unique(image.reshape(-1, image.shape[-1]), axis=0).shape[0] > 4  # not blank


def test_layouts_needing_scipy_say_so_when_it_is_missing(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "scipy", None)
    wiring = built(AutoNCP(16, 2))
    figure = plt.figure()
    with pytest.raises(ImportError, match="needs scipy"):
        wiring.draw_graph(layout="kamada")
    assert wiring.draw_graph(layout="layered")  # scipy-free layouts still work
    plt.close(figure)


def test_the_gallery_has_a_built_instance_of_every_public_wiring_class():
    gallery = example_wirings()
    public = {
        name
        for name in wirings.__all__
        if isinstance(getattr(wirings, name), type)
        and issubclass(getattr(wirings, name), wirings.Wiring)
        and name not in ("Wiring", "GroupedWiring")
    }
    assert set(gallery) == public
    for name, wiring in gallery.items():
        assert type(wiring).__name__ == name and wiring.is_built()
        assert wiring.units <= 25


def test_save_wiring_gallery_draws_every_wiring_into_one_png(tmp_path):
    path = tmp_path / "gallery.png"
    viz.save_wiring_gallery(example_wirings(), path, columns=5, layout="layered", node_size=40)
    assert path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "kwargs,match", [({"wirings": {}}, "at least one"), ({"columns": 0}, "columns")]
)
def test_save_wiring_gallery_rejects_bad_arguments(kwargs, match, tmp_path):
    arguments = {"wirings": {"a": built(AutoNCP(8, 2))}, "path": tmp_path / "g.png", **kwargs}
    with pytest.raises(ValueError, match=match):
        viz.save_wiring_gallery(**arguments)


# ---------------------------------------------------------------- legends


NCP_GROUPS = ["Sensory neurons", "Inter neurons", "Command neurons", "Motor neurons"]
POLARITIES = ["Excitatory synapses", "Inhibitory synapses"]


def texts(legend) -> list[str]:
    return [text.get_text() for text in legend.get_texts()]


def other_legends(ax) -> list:
    """The legends drawn on ``ax`` besides ``ax.get_legend()``."""
    legends = [child for child in ax.get_children() if isinstance(child, Legend)]
    return [legend for legend in legends if legend is not ax.get_legend()]


@pytest.fixture
def saved_figures(monkeypatch):
    """The figures passed to ``Figure.savefig``, in order."""
    figures = []
    original = Figure.savefig

    def spy(figure, *args, **kwargs):
        figures.append(figure)
        return original(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    return figures


def test_saved_wiring_plot_has_a_legend_of_neuron_groups_and_one_of_synapse_polarity(
    tmp_path, saved_figures
):
    viz.save_wiring_plot(built(AutoNCP(24, 4), input_dim=8), tmp_path / "a.png", layout="layered")
    ax = saved_figures[0].axes[0]
    assert texts(ax.get_legend()) == NCP_GROUPS
    assert [texts(legend) for legend in other_legends(ax)] == [POLARITIES]


def test_the_polarity_legend_gives_the_colours_the_synapses_are_drawn_in():
    wiring = built(AutoNCP(16, 2), input_dim=4)
    ax = Figure().add_subplot()
    wiring.draw_graph(layout="layered", ax=ax, legend=True)
    (legend,) = other_legends(ax)
    color_of = {
        text.get_text(): to_hex(line.get_color())
        for text, line in zip(legend.get_texts(), legend.get_lines(), strict=True)
    }
    signs = np.concatenate([wiring.synapses()[2], wiring.sensory_synapses()[2]])
    drawn = Counter(to_hex(arrow.get_edgecolor()) for arrow in ax.patches)  # one per synapse
    assert drawn == {
        color_of["Excitatory synapses"]: int((signs > 0).sum()),
        color_of["Inhibitory synapses"]: int((signs < 0).sum()),
    }
    assert color_of["Excitatory synapses"] != color_of["Inhibitory synapses"]


def test_the_polarity_legend_lists_only_the_polarities_present_and_merges_one_colour():
    wiring = Wiring(3)
    wiring.add_synapses([0, 1], [1, 2], [1, 1])
    wiring.build(2)
    wiring.add_sensory_synapse(0, 0, 1)
    assert [h.get_label() for h in viz.synapse_legend_handles(wiring)] == ["Excitatory synapses"]
    gray = viz.synapse_legend_handles(built(FullyConnected(4)), synapse_colors="gray")
    assert [(h.get_label(), h.get_color()) for h in gray] == [("Synapses", "gray")]


def test_draw_graph_draws_no_legend_unless_asked_and_returns_the_ncps_handles():
    wiring = built(AutoNCP(16, 2))
    ax = Figure().add_subplot()
    handles = wiring.draw_graph(ax=ax)
    assert ax.get_legend() is None and other_legends(ax) == []
    assert [h.get_label() for h in handles] == NCP_GROUPS


def test_gallery_panels_name_their_groups_and_the_figure_names_the_polarity(
    tmp_path, saved_figures
):
    gallery = example_wirings()
    viz.save_wiring_gallery(gallery, tmp_path / "g.png", layout="layered", node_size=40)
    (figure,) = saved_figures
    assert [texts(legend) for legend in figure.legends] == [POLARITIES]
    for ax, wiring in zip(figure.axes, gallery.values(), strict=False):
        groups = {f"{viz._readable(kind)} neurons" for kind in wiring.neuron_types().tolist()}
        assert set(texts(ax.get_legend())) == {"Sensory neurons"} | groups


@pytest.mark.parametrize("name", list(example_wirings()))
def test_neuron_group_colours_never_reuse_the_synapse_colours(name):
    wiring = example_wirings()[name]
    handles = wiring.draw_graph(ax=Figure().add_subplot(), layout="layered")
    synapse_colors = {to_hex(h.get_color()) for h in viz.synapse_legend_handles(wiring)}
    assert {to_hex(h.get_facecolor()) for h in handles}.isdisjoint(synapse_colors)


# ---------------------------------------------------------------- names in the demo


def test_demo_plot_labels_are_the_names_in_its_progress_bar(tmp_path, capsys, saved_figures):
    import mlx.core as mx

    from ncps_mlx.apps.demo import save_training_curve
    from ncps_mlx.datasets import load_digits_sequences
    from ncps_mlx.sequence import CfC
    from ncps_mlx.training import SequenceClassifier, fit_classifier

    data = load_digits_sequences()
    data = dataclasses.replace(data, x_train=data.x_train[:64], y_train=data.y_train[:64])
    mx.random.seed(0)
    model = SequenceClassifier(CfC(8, AutoNCP(16, 10)), data.num_classes)
    history = fit_classifier(model, data, 1, 0.005, progress=True)
    bar_names = set(re.findall(r"(\w+)=", capsys.readouterr().err))
    save_training_curve(history, str(tmp_path / "curve.png"), "title")
    loss_ax, accuracy_ax = saved_figures[0].axes
    plotted = [text.replace(" ", "_") for text in texts(loss_ax.get_legend())]
    plotted.append(accuracy_ax.get_title().replace(" ", "_"))
    assert plotted == ["train_loss", "test_loss", "test_accuracy"]
    assert set(plotted) <= bar_names and set(plotted) <= set(history.epochs[-1])
    assert not any(name.startswith("val") for name in bar_names)  # the held-out set is "test"
