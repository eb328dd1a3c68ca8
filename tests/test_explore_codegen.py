"""Code generation: a generated module rebuilds its architecture (same parameters, same outputs
for the same weights), is deterministic, documents its canonical JSON and passes ruff."""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from ncps_mlx.explore import Architecture
from ncps_mlx.explore.codegen import export_module, write_module
from ncps_mlx.explore.tasks import HybridClassifier
from ncps_mlx.wirings import NCP, AdaptiveWiring, AutoNCP, ComposedWiring

EMBED = 5
ROOT = Path(__file__).resolve().parents[1]

ARCHITECTURES = {
    "plain": Architecture(("mamba", "attention"), 16),
    "options": Architecture(
        ("gla", "ffn", "attention"),
        16,
        {"gla_num_heads": 2, "ffn_hidden_size": 24, "attention_window_size": 3},
    ),
    "shared": Architecture(("attention", "ffn", "attention"), 16, shared=("attention",)),
    "liquid": Architecture(("cfc", "ffn"), 16, {"liquid_units": 24}),
    "auto_ncp": Architecture(("ffn", "attention"), 16, wiring=AutoNCP(16, 4, seed=7)),
    "adaptive": Architecture(
        ("ffn", "mamba"), 16, wiring=AdaptiveWiring(AutoNCP(16, 4, seed=1), prune_fraction=0.2)
    ),
    "adaptive_drawn": Architecture(  # its base's synapse lists are written out
        ("ffn", "attention"), 16, wiring=AdaptiveWiring(16, output_dim=4, seed=3)
    ),
    "composed": Architecture(
        ("ffn", "gla"),
        16,
        {"gla_num_heads": 2},
        ComposedWiring(NCP(3, 3, 2, 2, 2, 2, 2, seed=5), AutoNCP(8, 3, seed=2)),
    ),
}


def load(path: Path):
    """Import the module written at ``path``."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parameter_count(model) -> int:
    return sum(array.size for _, array in tree_flatten(model.parameters()))


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_generated_module_rebuilds_the_model_with_its_parameters_and_outputs(name, tmp_path):
    architecture = ARCHITECTURES[name]
    mx.random.seed(0)
    original = architecture.build(EMBED)
    generated = load(write_module(architecture, tmp_path / f"{name}.py", EMBED)).build_model()

    assert parameter_count(generated) == architecture.param_count(EMBED)
    assert parameter_count(generated) == parameter_count(original)
    generated.update(original.parameters())
    x = mx.random.normal((2, 7, EMBED))
    np.testing.assert_allclose(np.array(generated(x)[0]), np.array(original(x)[0]), atol=1e-6)


def test_generated_classifier_loads_the_weights_of_a_task_classifier(tmp_path):
    architecture = ARCHITECTURES["auto_ncp"]
    mx.random.seed(1)
    original = HybridClassifier.from_architecture(architecture, EMBED, 3)
    path = write_module(architecture, tmp_path / "classifier.py", EMBED, num_classes=3)
    generated = load(path).build_model()

    assert isinstance(generated, HybridClassifier)
    expected = architecture.param_count(EMBED) + architecture.hidden_size * 3 + 3
    assert parameter_count(generated) == parameter_count(original) == expected
    original.save_weights(str(tmp_path / "weights.safetensors"))
    generated.load_weights(str(tmp_path / "weights.safetensors"))
    x = mx.random.normal((2, 6, EMBED))
    np.testing.assert_allclose(np.array(generated(x)), np.array(original(x)), atol=1e-6)


@pytest.mark.parametrize("name", ["options", "adaptive"])
def test_docstring_carries_the_canonical_json_and_key(name):
    architecture = ARCHITECTURES[name]
    namespace = {}
    exec(compile(export_module(architecture, EMBED), "<generated>", "exec"), namespace)
    doc = namespace["__doc__"]
    block = doc.split("insignificant):\n\n", 1)[1].split("\n\n", 1)[0]
    described = Architecture.from_dict(json.loads(block))
    assert described.canonical_json() == architecture.canonical_json()
    assert f"``{architecture.key()}``" in doc


def test_equal_architectures_give_the_same_source():
    architecture = ARCHITECTURES["composed"]
    restored = Architecture.from_json(architecture.canonical_json())
    assert export_module(restored, EMBED) == export_module(architecture, EMBED)
    with_defaults = Architecture(("mamba", "attention"), 16, {"attention_num_heads": 4})
    assert export_module(with_defaults, EMBED) == export_module(ARCHITECTURES["plain"], EMBED)


def test_wiring_is_a_literal_constructor_call_and_nested_configs_use_from_config():
    source = export_module(ARCHITECTURES["auto_ncp"], EMBED)
    assert "wiring = AutoNCP(units=16, output_size=4, sparsity_level=0.5, seed=7)" in source
    assert "from ncps_mlx.wirings import AutoNCP\n" in source
    source = export_module(ARCHITECTURES["adaptive"], EMBED)
    assert "base_wiring_or_units=AutoNCP.from_config(" in source
    assert "from ncps_mlx.wirings import AdaptiveWiring, AutoNCP\n" in source


@pytest.mark.skipif(
    shutil.which("ruff", path=str(Path(sys.executable).parent)) is None,
    reason="ruff is not installed",
)
def test_generated_sources_pass_ruff(tmp_path):
    for name, architecture in ARCHITECTURES.items():
        write_module(architecture, tmp_path / f"{name}.py", EMBED)
    write_module(ARCHITECTURES["shared"], tmp_path / "classifier.py", EMBED, num_classes=4)
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    config = str(ROOT / "pyproject.toml")
    result = subprocess.run(
        [ruff, "check", "--no-cache", "--config", config, str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_running_the_module_prints_its_parameter_count(tmp_path):
    architecture = ARCHITECTURES["shared"]
    path = write_module(architecture, tmp_path / "script.py", EMBED)
    result = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == f"{architecture.param_count(EMBED)} parameters"
