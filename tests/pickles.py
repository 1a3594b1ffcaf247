"""Reading a pickle's imports without unpickling it (shared by the checkpoint-name tests)."""
from __future__ import annotations

import pickletools

_STRINGS = ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE")


def pickled_globals(data: bytes) -> set[str]:
    """Every ``module.name`` a pickle imports, read from its opcodes (nothing is unpickled).

    GLOBAL carries both in its argument (protocols 0-3, what torch.save writes); STACK_GLOBAL
    (protocol 4+) takes the two strings pushed before it, directly or from the memo."""
    found, strings, memo, top = set(), [], {}, None  # top: the string on top of the stack, if any
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            found.add(arg.replace(" ", "."))
        elif op.name == "STACK_GLOBAL":
            found.add(f"{strings[-2]}.{strings[-1]}")
        if op.name in _STRINGS:
            top = arg
            strings.append(arg)
        elif op.name in ("BINGET", "LONG_BINGET", "GET"):
            top = memo.get(arg)
            if top is not None:
                strings.append(top)
        elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[arg] = top
        elif op.name == "MEMOIZE":
            memo[len(memo)] = top
        else:
            top = None
    return found
