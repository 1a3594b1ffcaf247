"""YAML files that come with uploads (a data set's data.yaml, a run's args.yaml), read as plain data.

PyYAML's safe loader builds only plain types, but it expands aliases: a few hundred bytes of
``&a [*b, *b, ...]`` anchors become millions of nodes (issue 31: 10^7 leaves and +650 MB from a
450-byte data.yaml). The files these readers take never need anchors, so an alias is refused
while the document is composed, before anything is expanded, and the text is bounded first.
"""
from __future__ import annotations

import yaml

#: The largest YAML file an upload may carry (ultralytics' args.yaml: ~2 KB; data.yaml: a few KB).
MAX_YAML_BYTES = 64 * 2**10


class YamlError(ValueError):
    """The text is not plain YAML this project reads; the message says why (no file paths)."""


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise YamlError("uses YAML aliases (*name), which Attention Lens does not read")
        return super().compose_node(parent, index)


def load_plain_yaml(data: bytes):
    """The document in ``data`` as plain Python values; YamlError when it is larger than
    MAX_YAML_BYTES, not UTF-8, malformed, or uses aliases."""
    if len(data) > MAX_YAML_BYTES:
        raise YamlError(f"is larger than {MAX_YAML_BYTES // 2**10} KB")
    try:
        return yaml.load(data.decode("utf-8"), Loader=_NoAliasLoader)  # noqa: S506 (a SafeLoader subclass)
    except UnicodeDecodeError:
        raise YamlError("is not UTF-8 text") from None
    except RecursionError:
        raise YamlError("nests too deeply") from None
    except yaml.YAMLError as e:
        raise YamlError(f"is not valid YAML ({type(e).__name__})") from None
