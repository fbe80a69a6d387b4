"""Save a `NeuralODE` into an HDF5 group, and load it back with one call."""

import dataclasses
import pathlib

import equinox as eqx
import h5py
import jax
import jax.numpy as jnp
import numpy as np

from ._model import ModelSpec, NeuralODE


def _named_leaves(model: NeuralODE):
    leaves, treedef = jax.tree_util.tree_flatten_with_path(eqx.filter(model, eqx.is_array))
    return [(jax.tree_util.keystr(path), leaf) for path, leaf in leaves], treedef


def save_model(group: h5py.Group, model: NeuralODE) -> None:
    """Write `model`'s hyperparameters as attributes and each weight as a dataset of `group`."""
    group.attrs.update({f"spec.{k}": v for k, v in dataclasses.asdict(model.spec).items()})
    for name, leaf in _named_leaves(model)[0]:
        group.create_dataset(name, data=np.asarray(leaf))


def load_model(source, group: str = "model") -> NeuralODE:
    """Rebuild the `NeuralODE` saved by `save_model`, from an open group or a file path
    (`group` names the group inside the file; a result file keeps it in `model`). float64
    weights need JAX's 64-bit mode on first (`configure_jax(x64=True)`)."""
    if isinstance(source, (str, pathlib.Path)):
        with h5py.File(source, "r") as f:
            return load_model(f[group])
    fields = {f.name: f.type for f in dataclasses.fields(ModelSpec)}
    spec = ModelSpec(**{k[5:]: _plain(v) for k, v in source.attrs.items() if k.startswith("spec.") and k[5:] in fields})
    skeleton = NeuralODE(spec, key=jax.random.PRNGKey(0))
    static = eqx.partition(skeleton, eqx.is_array)[1]
    named, treedef = _named_leaves(skeleton)
    leaves = [jnp.asarray(source[name][()], dtype=leaf.dtype) for name, leaf in named]
    return eqx.combine(jax.tree_util.tree_unflatten(treedef, leaves), static)


def _plain(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
