"""Gates: the sigmoid that produces an attention map, tagged with the kind of map it is.

Every map a module exposes passes through its own ``Gate``. Forward hooks registered on gates
(and only on gates) capture the maps; a model with no gates has no attention to show.
"""
from __future__ import annotations

from torch import nn

#: The kinds of map a gate can carry, with the shape each has for an input of (b, c, h, w).
GATE_KINDS = {
    "channel": "(b, c, 1, 1)",
    "spatial": "(b, 1, h, w)",
    "axis_h": "(b, c, h, 1)",
    "axis_w": "(b, c, 1, w)",
    "spatial_groups": "(b, g, h, w)",
    "self_attention": "(b x areas, heads, n, n): softmax over keys, n = h x w / areas (a tap, not a sigmoid)",
}


class Gate(nn.Sigmoid):
    """A sigmoid whose output is an attention map of a given ``kind``."""

    def __init__(self, kind: str):
        super().__init__()
        if kind not in GATE_KINDS:
            raise ValueError(f"unknown gate kind {kind!r}; expected one of {sorted(GATE_KINDS)}")
        self.kind = kind

    def extra_repr(self) -> str:
        return f"kind={self.kind}"


def gates_of(module: nn.Module) -> list[tuple[str, Gate]]:
    """All (qualified name, gate) pairs inside ``module``, in registration order."""
    return [(name, m) for name, m in module.named_modules() if isinstance(m, Gate)]
