"""An ONNX Runtime session for one exported model, and how it is called (onnx_backend.py makes
them, onnx_check.py checks them)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch


class ExportError(RuntimeError):
    pass


@dataclass
class Exported:
    """An ONNX Runtime session for one model, and the names of its extra outputs."""

    session: object
    gates: list[str]  # qualified gate names, outputs 1..len(gates)
    inputs: list[str]  # qualified attention module names whose inputs follow the gates
    path: Path | None = None  # the cached graph it runs (another runtime can open the same file)
    batched: bool = False  # checked on a batch of images too (a data-set pass then feeds it several)

    def __post_init__(self):
        self._prediction = [self.session.get_outputs()[0].name]

    def run(self, x: torch.Tensor, capture: bool = True):
        """(raw prediction, {gate: map}, {module: input}) as torch tensors, for one letterboxed
        input; without ``capture``, the prediction alone (the runtime then need not copy the maps out)."""
        if not capture:
            return torch.from_numpy(self.session.run(self._prediction, {"images": x.numpy()})[0]), {}, {}
        out = self.session.run(None, {"images": x.numpy()})
        pred = torch.from_numpy(out[0])
        gates = {n: torch.from_numpy(a) for n, a in zip(self.gates, out[1:1 + len(self.gates)])}
        inputs = {n: torch.from_numpy(a) for n, a in zip(self.inputs, out[1 + len(self.gates):])}
        return pred, gates, inputs
