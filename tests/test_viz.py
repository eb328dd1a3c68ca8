"""Graph export and plots: node/edge counts equal synapse counts, PNGs are written."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

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
