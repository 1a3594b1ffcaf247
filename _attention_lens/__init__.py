"""The name under which checkpoints written by Attention Lens find its attention classes.

A checkpoint pickles each class by the module it claims (``attention_lens.attention`` sets every
class's ``__module__`` to this package: see ``CHECKPOINT_MODULE`` there). Plain ultralytics that
cannot import a checkpoint's module pip-installs a package named after it; a name led by an
underscore is no valid package name (PEP 508), so where Attention Lens is absent the load fails
and nothing is installed. With the project installed (``pip install -e .``), ``YOLO("best.pt")``
finds the classes here.
"""
from attention_lens.attention import (
    CBAM,
    ECA,
    EMA,
    SE,
    EncoderSelfAttention,
    AreaAttention,
    AttentionTap,
    CoordAtt,
    Gate,
    PolarizedSA,
    SelfAttention,
    UltralyticsCBAM,
)
from attention_lens.attention.encoder_attention import TappedMultiheadAttention
from attention_lens.attention.ultralytics_cbam import _ChannelPart, _SpatialPart

__all__ = ["SE", "CBAM", "ECA", "CoordAtt", "EMA", "PolarizedSA", "Gate", "AttentionTap", "SelfAttention",
           "AreaAttention", "EncoderSelfAttention", "TappedMultiheadAttention", "UltralyticsCBAM", "_ChannelPart", "_SpatialPart"]
