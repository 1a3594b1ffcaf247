"""Teach ultralytics' YAML parser about this project's attention layers, without forking it.

After ``register()`` a model YAML may name an attention layer by its hyper-parameters only,
e.g. ``[-1, 1, EMA, [32]]``; the input channel count is read from the built model, after width
scaling, so one YAML serves every scale. A CSP block with attention inside it is written
``[-1, 3, CSPAttention, [C2f, [128, True], EMA, [32], concat]]``.

How: ``ultralytics.nn.tasks.parse_model`` is wrapped once. The wrapper hands ultralytics a
copy of the YAML in which each attention row is a channel-preserving ``nn.Identity``, lets it
build the model, measures each placeholder's input channels with one small forward pass, and
swaps the real module in. Ultralytics' own name table is never touched, so nothing it defines
can be shadowed, and a name it already defines is refused at registration.
"""
from __future__ import annotations

import copy
import functools

import torch
from torch import nn

from attention_lens.attention import ATTENTION_MODULES, LAYER_CLASSES

CSP_ATTENTION = "CSPAttention"
#: Where attention can sit inside a CSP block: the submodule it wraps and on which side.
CSP_POSITIONS = {
    "main": "after cv1, before the bottlenecks (the seeds' C3_EMA1)",
    "shortcut": "before cv2 on the shortcut branch, C3 only (C3_EMA2)",
    "concat": "on the concatenation, before the block's last conv (C3_EMA3)",
}
_PLACEHOLDER = "nn.Identity"
_MARK = "_attention_lens_wrapped"


def register() -> None:
    """Install the YAML support. Idempotent; refuses to shadow a name ultralytics defines."""
    from ultralytics.nn import tasks

    clash = sorted(n for n in [*LAYER_CLASSES, CSP_ATTENTION] if n in vars(tasks))
    if clash:
        raise RuntimeError(f"ultralytics already defines {clash}; refusing to shadow them")
    if getattr(tasks.parse_model, _MARK, False):
        return
    wrapped = _wrap(tasks.parse_model)
    tasks.parse_model = wrapped


def _wrap(parse_model):
    @functools.wraps(parse_model)
    def parse_model_with_attention(d, ch, verbose=True):
        if not d.get("scale") and len(d.get("scales") or {}) == 1:
            d["scale"] = next(iter(d["scales"]))  # a generated single-scale YAML names its scale
        rows = d["backbone"] + d["head"]
        ours = {i: row for i, row in enumerate(rows) if row[2] in LAYER_CLASSES or row[2] == CSP_ATTENTION}
        if not ours:
            return parse_model(d, ch, verbose)
        d = copy.deepcopy(d)
        nb = len(d["backbone"])
        for i, (f, n, name, args) in ours.items():
            section, j = ("backbone", i) if i < nb else ("head", i - nb)
            if name == CSP_ATTENTION:
                block, block_args = _csp_spec(i, args)[:2]
                d[section][j] = [f, n, block, list(block_args)]
            else:
                if not isinstance(f, int):
                    raise ValueError(f"layer {i}: {name} takes one input, got from={f}")
                d[section][j] = [f, n, _PLACEHOLDER, []]
        model, save = parse_model(d, ch, False)
        channels = _input_channels(model, ch, [i for i, r in ours.items() if r[2] != CSP_ATTENTION])
        for i, (f, n, name, args) in ours.items():
            if name == CSP_ATTENTION:
                _insert_in_csp(model[i], i, *_csp_spec(i, args)[2:])
                model[i].type = f"{CSP_ATTENTION}[{model[i].type.rsplit('.', 1)[-1]}]"
            else:
                model[i] = _build(name, channels[i], args, model[i], f)
            model[i].np = sum(p.numel() for p in model[i].parameters())
        if verbose:
            _log_table(model)
        return model, save

    setattr(parse_model_with_attention, _MARK, True)
    return parse_model_with_attention


def _build(name, c, args, placeholder, f):
    cls = LAYER_CLASSES[name]
    repeats = len(placeholder) if isinstance(placeholder, nn.Sequential) else 1
    try:
        layer = nn.Sequential(*(cls(c, *args) for _ in range(repeats))) if repeats > 1 else cls(c, *args)
    except TypeError as e:
        raise ValueError(f"layer {placeholder.i}: bad arguments {args} for {name}: {e}") from None
    layer.i, layer.f = placeholder.i, f
    layer.type = f"{cls.__module__}.{cls.__qualname__}"
    return layer


def _input_channels(model: nn.Sequential, ch: int, wanted: list[int]) -> dict[int, int]:
    """Input channel count of each layer in ``wanted``, from one small forward pass.

    Follows ultralytics' routing (``m.f``: -1, an index, or a list of them) up to the last
    wanted layer; eval mode and no_grad keep BN statistics untouched.
    """
    if not wanted:
        return {}
    last, found, outputs = max(wanted), {}, []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = torch.zeros(1, ch, 128, 128)
            for m in model:
                if m.f != -1:
                    x = outputs[m.f] if isinstance(m.f, int) else [x if j == -1 else outputs[j] for j in m.f]
                if m.i in wanted:
                    found[m.i] = x.shape[1]
                if m.i == last:
                    break
                x = m(x)
                outputs.append(x)
    finally:
        model.train(was_training)
    return found


def _csp_spec(i, args):
    if len(args) not in (4, 5):
        raise ValueError(f"layer {i}: {CSP_ATTENTION} args are [block, block_args, attention, attention_args, position]")
    block, block_args, attention, attention_args = args[:4]
    position = args[4] if len(args) == 5 else "concat"
    if attention not in ATTENTION_MODULES:
        raise ValueError(f"layer {i}: unknown attention {attention!r}; expected one of {list(ATTENTION_MODULES)}")
    if position not in CSP_POSITIONS:
        raise ValueError(f"layer {i}: unknown CSP position {position!r}; expected one of {list(CSP_POSITIONS)}")
    return block, block_args, attention, list(attention_args), position


def _insert_in_csp(block: nn.Module, i: int, attention: str, attention_args: list, position: str) -> None:
    """Put the attention inside ``block`` by wrapping one of its convs: no forward is patched."""
    cls = ATTENTION_MODULES[attention]
    is_c3 = hasattr(block, "cv3")  # C3 family: cv1 main, cv2 shortcut, cv3 fuse; C2f/C3k2: cv1 split, cv2 fuse
    if position == "main":
        block.cv1 = nn.Sequential(block.cv1, cls(block.cv1.conv.out_channels, *attention_args))
    elif position == "shortcut":
        if not is_c3:
            raise ValueError(f"layer {i}: position 'shortcut' exists only in C3 blocks, not {type(block).__name__}")
        block.cv2 = nn.Sequential(cls(block.cv2.conv.in_channels, *attention_args), block.cv2)
    else:
        fuse = "cv3" if is_c3 else "cv2"
        conv = getattr(block, fuse)
        setattr(block, fuse, nn.Sequential(cls(conv.conv.in_channels, *attention_args), conv))


def _log_table(model: nn.Sequential) -> None:
    from ultralytics.utils import LOGGER

    LOGGER.info(layer_table(model))


def layer_table(model: nn.Sequential) -> str:
    """The built layers as a text table: index, from, params, module."""
    lines = [f"{'':>3}{'from':>20}{'params':>10}  module"]
    for m in model:
        lines.append(f"{m.i:>3}{m.f!s:>20}{m.np:10.0f}  {m.type}")
    return "\n".join(lines)
