"""Read a PyTorch checkpoint as inert data: nothing the file names is imported, called or built.

A checkpoint is a zip holding ``data.pkl`` (a pickle) and one raw file per tensor storage. Here
the pickle is replayed by Python's own unpickler with ``find_class`` replaced: every global the
file names becomes an inert ``Record`` type that only remembers its path, the arguments it was
given and the state set on it. The only callables handed to the pickle machine are this file's
own tensor constructors, which record (storage, offset, size, stride) and check them against
the storage's declared length. Storage bytes are read only after the whole pickle has been
replayed and the total declared size has been checked against the limit.

This module uses the standard library only, so that it can run as its own process
(``python -I checkpoint_reader.py FILE LIMITS``, see ``checkpoints.read_checkpoint``) with
memory and CPU limits: a hostile or enormous file then costs that process, not the server. The
child writes a JSON header (the tree, with tagged containers) and then the storages' bytes.
"""
from __future__ import annotations

import base64
import io
import json
import pickle
import struct
import sys
import zipfile

#: Defaults; the parent passes its own. Sizes in bytes.
LIMITS = {
    "max_file_bytes": 512 * 2**20,
    "max_pickle_bytes": 64 * 2**20,
    "max_tensor_bytes": 512 * 2**20,
    "max_globals": 4096,
    "max_nodes": 2_000_000,
    "max_depth": 200,
    "memory_bytes": 2 * 2**30,
    "cpu_seconds": 20,
}

#: Legacy typed-storage class names (what torch.save writes) -> (dtype name, item size).
STORAGE_DTYPES = {
    "FloatStorage": ("float32", 4), "HalfStorage": ("float16", 2), "BFloat16Storage": ("bfloat16", 2),
    "DoubleStorage": ("float64", 8), "LongStorage": ("int64", 8), "IntStorage": ("int32", 4),
    "ShortStorage": ("int16", 2), "CharStorage": ("int8", 1), "ByteStorage": ("uint8", 1),
    "BoolStorage": ("bool", 1),
}
MAGIC = b"ALCKPT1\n"


class ReadError(ValueError):
    """The file cannot be read as a checkpoint; the message says why (no paths in it)."""


class Record:
    """An object of a class the file names, kept as data: never an instance of that class."""

    path = "?"

    def __new__(cls, *args, **kwargs):  # NEWOBJ calls __new__ only; REDUCE calls the type
        obj = object.__new__(cls)
        obj.args, obj.kwargs, obj.state, obj.listitems, obj.dictitems = args, kwargs, None, [], []
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):  # BUILD
        self.state = state

    def __setitem__(self, key, value):  # SETITEM(S) on a dict subclass
        self.dictitems.append((key, value))

    def append(self, value):  # APPEND(S) on a list subclass
        self.listitems.append(value)

    def extend(self, values):
        self.listitems.extend(values)


class PlainDict(dict):
    """An OrderedDict / dict from the file: a plain container; pickled instance state (a state
    dict's ``_metadata``) is dropped."""

    def __setstate__(self, state):
        pass


class StorageType:
    def __init__(self, name: str):
        self.name = name
        self.dtype, self.itemsize = STORAGE_DTYPES[name]


class StorageRef:
    def __init__(self, index: int, key: str, dtype: str, itemsize: int, numel: int):
        self.index, self.key, self.dtype, self.itemsize, self.numel = index, key, dtype, itemsize, numel


class TensorRef:
    def __init__(self, storage: StorageRef, offset, size, stride):
        if not isinstance(storage, StorageRef):
            raise ReadError("a tensor refers to something that is not a storage")
        size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ReadError("a tensor has a bad storage offset")
        if len(size) != len(stride) or len(size) > 16:
            raise ReadError("a tensor's size and stride do not match")
        if any(s < 0 for s in size) or any(s < 0 for s in stride):
            raise ReadError("a tensor has a negative size or stride")
        if all(s > 0 for s in size):
            last = offset + sum((n - 1) * s for n, s in zip(size, stride))
            if last >= storage.numel:
                raise ReadError("a tensor reaches past the end of its storage")
            numel = 1
            for n in size:
                numel *= n
            if numel > storage.numel:  # only overlapping elements (a zero stride) make a view larger
                raise ReadError("a tensor repeats the elements of its storage (a zero or overlapping stride)")
        self.storage, self.offset, self.size, self.stride, self.param = storage, offset, size, stride, False


def _int_tuple(value, what):
    if isinstance(value, Record) and value.path == "torch.Size" and value.args:
        value = value.args[0]
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ReadError(f"a tensor has a bad {what}")
    return tuple(value)


def _rebuild_tensor(storage, offset, size, stride, *_ignored):
    return TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data, *_ignored):
    if not isinstance(data, TensorRef):
        raise ReadError("a parameter holds no tensor")
    data.param = True
    return data


def _rebuild_from_type(func, new_type, args, state):
    if func not in (_rebuild_tensor, _rebuild_parameter) or not isinstance(args, tuple):
        raise ReadError("a tensor subclass is rebuilt by something other than torch's tensor constructor")
    return func(*args)


#: The only callables the pickle machine ever gets: this file's own, by the name torch writes.
SAFE_CALLABLES = {
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch._tensor._rebuild_from_type_v2": _rebuild_from_type,
}


class InertUnpickler(pickle.Unpickler):
    """Replays the pickle; every global becomes a Record type, every storage a StorageRef."""

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, limits: dict):
        super().__init__(file)
        self.archive, self.prefix, self.limits = archive, prefix, limits
        self.types: dict[str, type] = {}
        self.storages: dict[str, StorageRef] = {}
        self.declared = 0

    def find_class(self, module: str, name: str):
        module = {"__builtin__": "builtins", "copy_reg": "copyreg"}.get(module, module)  # protocol 2 names
        path = f"{module}.{name}"
        if path in SAFE_CALLABLES:
            return SAFE_CALLABLES[path]
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(name)
        if path in ("collections.OrderedDict", "builtins.dict"):
            return PlainDict  # a plain container; order is kept
        if path in ("builtins.set", "builtins.frozenset"):
            return frozenset if name == "frozenset" else set
        if path not in self.types:
            if len(self.types) >= self.limits["max_globals"]:
                raise ReadError("the pickle names too many classes")
            self.types[path] = type("Record", (Record,), {"path": path})
        return self.types[path]

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise ReadError("the pickle refers to an object that is not a tensor storage")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, StorageType):
            raise ReadError("a storage of an unknown type")
        if not (isinstance(key, str) and key.isalnum() and isinstance(numel, int) and numel >= 0):
            raise ReadError("a storage with a bad key or length")
        if key in self.storages:
            ref = self.storages[key]
            if ref.dtype != storage_type.dtype or ref.numel != numel:
                raise ReadError("one storage is declared twice with different types")
            return ref
        nbytes = numel * storage_type.itemsize
        self.declared += nbytes
        if self.declared > self.limits["max_tensor_bytes"]:
            raise ReadError(f"its tensors declare more than {self.limits['max_tensor_bytes'] // 2**20} MB")
        try:
            info = self.archive.getinfo(f"{self.prefix}data/{key}")
        except KeyError:
            raise ReadError(f"storage {key} is missing from the archive") from None
        if info.file_size != nbytes:
            raise ReadError(f"storage {key} holds {info.file_size} bytes, its tensors declare {nbytes}")
        if info.compress_type != zipfile.ZIP_STORED:  # torch.save stores storages as they are
            raise ReadError(f"storage {key} is compressed; torch.save writes tensors uncompressed")
        ref = StorageRef(len(self.storages), key, storage_type.dtype, storage_type.itemsize, numel)
        self.storages[key] = ref
        return ref


def read(path: str, limits: dict | None = None) -> tuple[object, list[StorageRef], zipfile.ZipFile, str]:
    """(tree, storages in index order, open archive, entry prefix) for the checkpoint at path."""
    limits = {**LIMITS, **(limits or {})}
    import os

    size = os.path.getsize(path)
    if size == 0:
        raise ReadError("the file is empty")
    if size > limits["max_file_bytes"]:
        raise ReadError(f"the file is larger than {limits['max_file_bytes'] // 2**20} MB")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ReadError("not a PyTorch checkpoint (expected the zip format torch.save writes)") from None
    pkls = [i for i in archive.infolist() if i.filename.endswith("data.pkl") and i.filename.count("/") == 1]
    if len(pkls) != 1:
        raise ReadError("not a PyTorch checkpoint (no single data.pkl in the archive)")
    info = pkls[0]
    prefix = info.filename[: -len("data.pkl")]
    if info.file_size > limits["max_pickle_bytes"]:
        raise ReadError(f"its pickle is larger than {limits['max_pickle_bytes'] // 2**20} MB")
    order = prefix + "byteorder"
    if order in archive.namelist() and archive.read(order).strip() not in (b"little", b""):
        raise ReadError("a big-endian checkpoint is not supported")
    with archive.open(info) as f:
        data = f.read(limits["max_pickle_bytes"] + 1)
    if len(data) > limits["max_pickle_bytes"]:
        raise ReadError(f"its pickle is larger than {limits['max_pickle_bytes'] // 2**20} MB")
    unpickler = InertUnpickler(io.BytesIO(data), archive, prefix, limits)
    try:
        tree = unpickler.load()
    except ReadError:
        raise
    except RecursionError:
        raise ReadError("its pickle nests too deeply") from None
    except MemoryError:
        raise ReadError("its pickle needs more memory than a checkpoint may use") from None
    except Exception as e:  # the pickle machine's own errors: truncated, bad opcode, ...
        raise ReadError(f"the pickle is damaged or not plain data ({type(e).__name__}); nothing in it was run") from None
    return tree, sorted(unpickler.storages.values(), key=lambda s: s.index), archive, prefix


class _Encoder:
    """The tree as JSON-able tagged data, with a node budget and a depth limit.

    An object met again is written as {"ref": n}, n counting containers, records and tensors in
    the order their encoding finishes (the decoder counts the same way), so a pickle of shared
    references (a "billion laughs" bomb) stays as small as the pickle. A cycle is refused.
    """

    def __init__(self, limits):
        self.nodes, self.max_nodes, self.max_depth = 0, limits["max_nodes"], limits["max_depth"]
        self.done: dict[int, int] = {}
        self.open: set[int] = set()
        self.keep: list = []  # keeps encoded objects alive so their ids stay unique

    def __call__(self, v, depth=0):
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise ReadError("its pickle expands to too many objects")
        if depth > self.max_depth:
            raise ReadError("its pickle nests too deeply")
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int):
            if v.bit_length() > 256:
                raise ReadError("it holds a number too large for a checkpoint")
            return v
        if isinstance(v, float):
            return v if v == v and v not in (float("inf"), float("-inf")) else {"f": repr(v)}
        if isinstance(v, (bytes, bytearray)):
            return {"b": base64.b64encode(bytes(v)).decode()}
        if not isinstance(v, (list, tuple, set, frozenset, dict, TensorRef, Record)):
            return self._other(v)
        key = id(v)
        if key in self.done:
            return {"ref": self.done[key]}
        if key in self.open:
            raise ReadError("its pickle refers to itself (a cycle)")
        self.open.add(key)
        out = self._container(v, depth + 1)
        self.open.discard(key)
        self.done[key] = len(self.done)
        self.keep.append(v)
        return out

    def _container(self, v, d):
        if isinstance(v, list):
            return {"l": [self(x, d) for x in v]}
        if isinstance(v, tuple):
            return {"t": [self(x, d) for x in v]}
        if isinstance(v, (set, frozenset)):
            return {"l": [self(x, d) for x in v]}
        if isinstance(v, dict):
            return {"d": [[self(k, d), self(x, d)] for k, x in v.items()]}
        if isinstance(v, TensorRef):
            return {"x": [v.storage.index, v.offset, list(v.size), list(v.stride), v.param]}
        out = {"r": v.path}
        for tag, part in (("a", v.args), ("s", v.state), ("li", v.listitems), ("di", v.dictitems)):
            if part not in (None, (), []):
                out[tag] = self(part, d)
        if v.kwargs:
            out["k"] = self(v.kwargs, d)
        return out

    @staticmethod
    def _other(v):
        if isinstance(v, type) and issubclass(v, Record):
            return {"g": v.path}
        if isinstance(v, StorageType):
            return {"g": f"torch.{v.name}"}
        if isinstance(v, StorageRef):
            return {"g": "torch.storage"}
        return {"g": type(v).__name__}


def write_result(path: str, limits: dict, out) -> None:
    tree, storages, archive, prefix = read(path, limits)
    header = json.dumps({"tree": _Encoder({**LIMITS, **limits})(tree),
                         "storages": [[s.dtype, s.numel] for s in storages]}, allow_nan=False).encode()
    out.write(MAGIC + struct.pack("<Q", len(header)) + header)
    for s in storages:
        with archive.open(f"{prefix}data/{s.key}") as f:
            remaining = s.numel * s.itemsize
            while remaining:
                chunk = f.read(min(remaining, 1 << 20))
                if not chunk:
                    raise ReadError(f"storage {s.key} is truncated")
                out.write(chunk)
                remaining -= len(chunk)


def _apply_limits(limits: dict) -> None:
    try:
        import resource
    except ImportError:  # not on POSIX: the parent's timeout still applies
        return
    for which, value in ((resource.RLIMIT_AS, limits["memory_bytes"]), (resource.RLIMIT_CPU, limits["cpu_seconds"])):
        soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, hard))


def main(argv: list[str]) -> int:
    limits = {**LIMITS, **json.loads(argv[1])} if len(argv) > 1 else dict(LIMITS)
    _apply_limits(limits)
    out = sys.stdout.buffer
    try:
        write_result(argv[0], limits, out)
    except ReadError as e:
        message = json.dumps({"error": str(e)}).encode()
        out.write(MAGIC + struct.pack("<Q", len(message)) + message)
        return 3
    except zipfile.BadZipFile:
        message = json.dumps({"error": "the archive is damaged or truncated"}).encode()
        out.write(MAGIC + struct.pack("<Q", len(message)) + message)
        return 3
    except MemoryError:
        message = json.dumps({"error": "reading it needs more memory than a checkpoint may use"}).encode()
        out.write(MAGIC + struct.pack("<Q", len(message)) + message)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
