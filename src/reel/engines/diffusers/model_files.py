"""Checks on a diffusers model directory, before any weights load; no torch needed.

An incomplete download or a folder of the wrong pipeline is reported at worker start,
naming the missing files.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from reel.engines.base import EngineConfigError


@dataclass(frozen=True, slots=True)
class ModelIndex:
    """A diffusers folder's ``model_index.json``: pipeline class, components and options."""

    path: Path
    class_name: str
    #: component name → (library, class); both ``None`` for an absent optional component.
    components: Mapping[str, tuple[str | None, str | None]]
    #: The other entries (``expand_timesteps``, ``boundary_ratio``…).
    options: Mapping[str, object]

    def has(self, component: str) -> bool:
        return self.components.get(component, (None, None))[0] is not None


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise EngineConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise EngineConfigError(f"{path} is not a JSON object")
    return cast(dict[str, object], data)


def _read_index(model_dir: Path) -> ModelIndex:
    data = _read_json(model_dir / "model_index.json")
    components: dict[str, tuple[str | None, str | None]] = {}
    options: dict[str, object] = {}
    for key, value in data.items():
        if key.startswith("_"):
            continue
        if isinstance(value, list) and len(value) == 2:
            lib, cls = value
            components[key] = (
                lib if isinstance(lib, str) else None,
                cls if isinstance(cls, str) else None,
            )
        else:
            options[key] = value
    return ModelIndex(model_dir, str(data.get("_class_name", "")), components, options)


def _component_missing(folder: Path, name: str, cls: str) -> list[str]:
    """Files a component folder lacks, relative to the model directory."""
    if not folder.is_dir():
        return [f"{name}/"]
    present = {p.name for p in folder.iterdir()}
    if name == "scheduler" or cls.endswith("Scheduler"):
        return [] if "scheduler_config.json" in present else [f"{name}/scheduler_config.json"]
    if "Tokenizer" in cls:
        if present & {"tokenizer.json", "spiece.model", "vocab.json"}:
            return []
        return [f"{name}/tokenizer.json (or spiece.model)"]
    if "Processor" in cls or "FeatureExtractor" in cls:
        ok = "preprocessor_config.json" in present
        return [] if ok else [f"{name}/preprocessor_config.json"]
    missing = [] if "config.json" in present else [f"{name}/config.json"]
    indexes = [p for p in present if p.endswith((".safetensors.index.json", ".bin.index.json"))]
    if indexes:
        for index in sorted(indexes):
            weight_map = _read_json(folder / index).get("weight_map", {})
            shards = set(weight_map.values()) if isinstance(weight_map, dict) else set()
            missing += [f"{name}/{s}" for s in sorted(shards) if not (folder / s).is_file()]
    elif not any(p.endswith((".safetensors", ".bin")) for p in present):
        missing.append(f"{name}/*.safetensors (weights)")
    return missing


def missing_files(model_dir: Path) -> list[str]:
    """What a diffusers folder lacks to load (empty when complete)."""
    if not model_dir.is_dir():
        return [f"{model_dir} (not a directory)"]
    if not (model_dir / "model_index.json").is_file():
        return ["model_index.json"]
    index = _read_index(model_dir)
    missing: list[str] = []
    for name, (lib, cls) in index.components.items():
        if lib is not None and cls is not None:
            missing += _component_missing(model_dir / name, name, cls)
    return missing


def check_model_dir(model_dir: Path, *, label: str, classes: Collection[str]) -> ModelIndex:
    """The folder's index, or a clear error naming the missing files or the wrong pipeline."""
    missing = missing_files(model_dir)
    if missing:
        raise EngineConfigError(
            f"{label}: model directory {model_dir} is incomplete; missing: {', '.join(missing)}. "
            "Download the diffusers-format repository (see docs/models.md)"
        )
    index = _read_index(model_dir)
    if index.class_name not in classes:
        raise EngineConfigError(
            f"{label}: {model_dir} holds a {index.class_name or 'unknown'} pipeline; "
            f"expected one of {', '.join(sorted(classes))}"
        )
    return index


def read_config(model_dir: Path, component: str) -> dict[str, object]:
    """A component's ``config.json`` (or ``scheduler_config.json``)."""
    folder = model_dir / component
    name = "scheduler_config.json" if component == "scheduler" else "config.json"
    return _read_json(folder / name)
