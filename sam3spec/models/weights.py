"""Reading local pretrained weight files and reporting what was loaded.

Only local files are read here (safetensors, or a torch pickle loaded with ``weights_only=True``
so a checkpoint cannot run code); downloading from a hub is left to timm/open_clip behind an
explicit ``online`` flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

# Containers that training scripts commonly wrap a state dict in.
_WRAPPER_KEYS = ("state_dict", "model", "module", "model_state_dict")
_PREFIXES = ("module.", "model.", "_orig_mod.")


@dataclass
class LoadReport:
    """What happened when a weights file was applied to a module.

    Attributes:
        source: the file read.
        loaded: module keys that received a tensor.
        missing: module keys the file did not provide (left at their initialisation).
        unexpected: file keys with no place in the module (not loaded).
        ignored: file keys deliberately skipped (another tower, an unused projection, a head).
        adapted: notes on tensors changed to fit (e.g. a truncated position embedding).
    """

    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"{self.source}: loaded {len(self.loaded)}, missing {len(self.missing)}, "
            f"unexpected {len(self.unexpected)}, ignored {len(self.ignored)}"
        ]
        for title, keys in (("missing", self.missing), ("unexpected", self.unexpected)):
            if keys:
                shown = ", ".join(keys[:10]) + (" ..." if len(keys) > 10 else "")
                lines.append(f"  {title}: {shown}")
        lines.extend(f"  adapted: {note}" for note in self.adapted)
        return "\n".join(lines)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from a local ``.safetensors`` or torch (``.pth``/``.pt``/``.bin``) file.

    Wrapping containers (``{"state_dict": ...}``, ``{"model": ...}``) and the prefixes that
    DDP / ``torch.compile`` add (``module.``, ``_orig_mod.``) are removed.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file holds no tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        data: object = load_file(str(path), device="cpu")
    else:
        data = torch.load(path, map_location="cpu", weights_only=True)
    while isinstance(data, dict):
        wrapper = next((k for k in _WRAPPER_KEYS if isinstance(data.get(k), dict)), None)
        if wrapper is None:
            break
        data = data[wrapper]
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a state dict, found {type(data).__name__}")
    state = {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise ValueError(f"{path}: no tensors found")
    cleaned: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        cleaned[key] = value
    return cleaned


def apply_state_dict(
    module: torch.nn.Module, state: dict[str, torch.Tensor], report: LoadReport
) -> LoadReport:
    """Copy ``state`` into ``module`` (non-strict, shape-checked) and fill in ``report``.

    Raises:
        ValueError: if a tensor's shape disagrees with the module, or nothing matched at all.
    """
    own = module.state_dict()
    mismatched = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and own[k].shape != v.shape
    ]
    if mismatched:
        raise ValueError(f"{report.source}: shape mismatch for " + "; ".join(mismatched[:5]))
    result = module.load_state_dict(state, strict=False)
    report.missing = sorted(result.missing_keys)
    report.unexpected = sorted(result.unexpected_keys)
    report.loaded = sorted(k for k in state if k in own)
    if not report.loaded:
        raise ValueError(
            f"{report.source}: none of its {len(state)} keys fit the module "
            f"(first file keys: {sorted(state)[:3]}; first module keys: {sorted(own)[:3]})"
        )
    return report
