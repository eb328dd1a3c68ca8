"""WiredLinear: the wiring's structure as a weight mask, gradients, quantisation."""

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from mlx.utils import tree_flatten

from ncps_mlx.hybrid import QuantizedWiredLinear, WiredLinear, wiring_mask
from ncps_mlx.wirings import AttentionWiring, AutoNCP, FullyConnected, Wiring


def built(wiring, input_dim):
    wiring.build(input_dim)
    return wiring


def test_mask_of_a_matching_built_wiring_is_its_sensory_synapses():
    wiring = built(AutoNCP(16, 4, seed=1), 8)
    mask = wiring_mask(wiring, 8, 16)
    np.testing.assert_array_equal(mask, (wiring.sensory_adjacency_matrix != 0).T.astype(np.float32))


def test_mask_of_a_square_projection_is_the_internal_synapses():
    wiring = built(AutoNCP(16, 4, seed=1), 8)
    np.testing.assert_array_equal(wiring_mask(wiring, 16, 16), (wiring.adjacency_matrix != 0).T)


def test_other_shapes_resample_the_internal_synapses_block_wise():
    wiring = Wiring(2)
    wiring.add_synapses([0, 1], [1, 1], [1, -1])  # 0 -> 1 and 1 -> 1
    mask = wiring_mask(wiring, 4, 6)  # inputs 0,1 stand for neuron 0; 2,3 for neuron 1
    expected = np.zeros((6, 4), np.float32)
    expected[3:, :] = 1.0  # outputs 3..5 stand for neuron 1, which every neuron reaches
    np.testing.assert_array_equal(mask, expected)
    with pytest.raises(ValueError, match="no synapses"):
        wiring_mask(AutoNCP(16, 4), 32, 48)  # an unbuilt NCP has drawn nothing yet


def test_without_a_wiring_it_is_a_plain_linear_layer():
    layer = WiredLinear(5, 3)
    x = mx.random.normal((4, 5))
    expected = np.array(x) @ np.array(layer.weight).T + np.array(layer.bias)
    np.testing.assert_allclose(np.array(layer(x)), expected, atol=1e-5)
    assert layer.density == 1.0 and "bias" not in WiredLinear(5, 3, bias=False)


def test_masked_weights_start_at_zero_get_zero_gradient_and_stay_zero():
    wiring = built(AttentionWiring(8, 2, 4, seed=3), 6)
    layer = WiredLinear(wiring.units, wiring.units, wiring)
    mask = np.array(layer._mask)
    assert np.all(np.array(layer.weight)[mask == 0] == 0)
    x, y = mx.random.normal((16, wiring.units)), mx.random.normal((16, wiring.units))
    loss_and_grad = nn.value_and_grad(layer, lambda m: ((m(x) - y) ** 2).mean())
    _, grads = loss_and_grad(layer)
    assert np.all(np.array(grads["weight"])[mask == 0] == 0)
    assert np.abs(np.array(grads["weight"])[mask == 1]).max() > 0
    optimizer = optim.AdamW(learning_rate=0.1, weight_decay=0.1)
    for _ in range(5):
        _, grads = loss_and_grad(layer)
        optimizer.update(layer, grads)
    assert np.all(np.array(layer.weight)[mask == 0] == 0)


def test_quantize_keeps_the_mask_and_stays_close_to_float():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = WiredLinear(64, 64, built(FullyConnected(64, erev_init_seed=2), 64))
            self.sparse = WiredLinear(64, 64, built(AutoNCP(64, 8, seed=1), 64))

        def __call__(self, x):
            return self.sparse(self.layer(x))

    net = Net()
    x = mx.random.normal((8, 64))
    expected = np.array(net(x))
    float_bytes = sum(v.nbytes for _, v in tree_flatten(net.parameters()))
    nn.quantize(net, group_size=32, bits=8)
    assert isinstance(net.sparse, QuantizedWiredLinear)
    mask = np.array(net.sparse._mask)
    np.testing.assert_array_equal(np.array(net.sparse.dequantized_weight())[mask == 0], 0)
    np.testing.assert_allclose(np.array(net(x)), expected, atol=0.05)  # 8-bit: ~1% of the scale
    quantized_bytes = sum(v.nbytes for _, v in tree_flatten(net.parameters()))
    assert quantized_bytes < 0.45 * float_bytes  # 8-bit weights + scales vs float32


@pytest.mark.parametrize("args,error", [((0, 3), "in_features"), ((3, 0), "out_features")])
def test_bad_sizes_are_value_errors(args, error):
    with pytest.raises(ValueError, match=error):
        WiredLinear(*args)
