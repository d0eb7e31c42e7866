"""Labels and the preprocessing record inside a .tflite file: read (device, no TensorFlow) and write.

Two kinds of metadata are read:

* edgecnn's own record: an entry named :data:`edgecnn.config.METADATA_NAME` in the TFLite ``Model.metadata``
  table whose buffer holds UTF-8 JSON ``{"format": 1, "labels": [...], "preprocessing": {...}}``.
* The TFLite Support metadata (entry ``TFLITE_METADATA``, schema ``metadata_schema.fbs`` of tflite-support) that
  published classifiers carry: ``NormalizationOptions`` mean/std of the input and the ``TENSOR_AXIS_LABELS`` file of
  the output, which such models keep in a zip archive appended to the flatbuffer.

Reading uses the ``flatbuffers`` runtime with the few field slots needed (TFLite ``schema.fbs``: Model.buffers = 4,
Model.metadata = 6; Metadata.name = 0, .buffer = 1; Buffer.data = 0, .offset = 1, .size = 2), so the device install
needs no generated schema. Writing uses the generated TFLite schema object API shipped by ``ai-edge-litert`` (or
TensorFlow).
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from dataclasses import dataclass, field

from edgecnn.config import METADATA_NAME, Preprocessing
from edgecnn.errors import ModelError

TFLITE_IDENTIFIER = b"TFL3"
SUPPORT_METADATA_NAME = "TFLITE_METADATA"
FORMAT_VERSION = 1

# metadata_schema.fbs enum values
_NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions.NormalizationOptions
_TENSOR_AXIS_LABELS = 2  # AssociatedFileType.TENSOR_AXIS_LABELS
_IMAGE_PROPERTIES = 2  # ContentProperties.ImageProperties
_GRAYSCALE = 2  # ColorSpaceType.GRAYSCALE


@dataclass
class ModelMetadata:
    """What a model file says about its labels and input.

    Attributes:
        source: "edgecnn", "tflite-support" or None (no metadata found).
        labels: class labels by output index, or None.
        preprocessing: edgecnn's full record (a dict of :class:`edgecnn.config.Preprocessing` fields), or for
            tflite-support metadata the subset it gives (``mean``, ``std``, ``channels``); empty when unknown.
        entries: names of every entry in the model's metadata table (e.g. ``min_runtime_version``).
        training: the ``training`` entry of edgecnn's record (``data``, ``seed``, ``val_split``: how ``edgecnn
            quantize`` split the data, so ``edgecnn evaluate`` can recreate the held-out split); empty when absent.
    """

    source: str | None = None
    labels: list[str | None] | None = None
    preprocessing: dict = field(default_factory=dict)
    entries: list[str] = field(default_factory=list)
    training: dict = field(default_factory=dict)


def check_tflite(data: bytes, name: str = "<model>") -> None:
    """Check that ``data`` is a whole TFLite flatbuffer: file identifier ``TFL3`` at bytes 4..8, and every table,
    vector and string the interpreter reads (:func:`outside_the_file`) inside the file.

    An interpreter is never given a file that fails this: tflite-runtime 2.14 does not verify the flatbuffer and
    dies with SIGSEGV on a truncated model (an interrupted copy), on x86 and Arm alike; ai-edge-litert verifies it.

    Raises:
        ModelError: naming ``name`` and what was expected.
    """
    if len(data) < 8:
        raise ModelError(f"{name}: {len(data)} bytes is too short for a TFLite model (expected a .tflite flatbuffer)")
    if data[4:8] != TFLITE_IDENTIFIER:
        raise ModelError(f"{name}: not a TFLite flatbuffer (expected file identifier 'TFL3' at byte 4, "
                         f"found {bytes(data[4:8])!r})")
    where = outside_the_file(data)
    if where:
        raise ModelError(f"{name}: cannot load the model, truncated or corrupt? ({where} points outside the file's "
                         f"{len(data):,} bytes)")


class _Outside(Exception):
    pass


class _Bounded:
    """Bounds-checked reads of a flatbuffer (FlatBuffers binary format: little-endian; a table starts with an int32
    back to its vtable of uint16 sizes and field offsets; vectors and strings start with a uint32 length)."""

    def __init__(self, data: bytes):
        self.data = data

    def read(self, fmt: str, pos: int, what: str):
        if pos < 0 or pos + struct.calcsize(fmt) > len(self.data):
            raise _Outside(what)
        return struct.unpack_from(fmt, self.data, pos)[0]

    def table(self, pos: int, what: str) -> tuple[int, int, int]:
        """(table position, vtable position, vtable size) of the table at ``pos``."""
        vt = pos - self.read("<i", pos, what)
        size = self.read("<H", vt, what)
        self.read("<H", vt + 2, what)
        if size < 4 or vt + size > len(self.data):
            raise _Outside(what)
        return pos, vt, size

    def field(self, t: tuple[int, int, int], field: int, what: str) -> int:
        """Position of field ``field`` of table ``t`` (its vtable entry added to the table's position), or 0 when
        the field is absent."""
        pos, vt, size = t
        slot = 4 + 2 * field
        off = self.read("<H", vt + slot, what) if slot + 2 <= size else 0
        return pos + off if off else 0

    def ref(self, t: tuple[int, int, int], field: int, what: str) -> int | None:
        """Position that offset field ``field`` of table ``t`` points to, or None when the field is absent."""
        at = self.field(t, field, what)
        return at + self.read("<I", at, what) if at else None

    def scalar(self, t: tuple[int, int, int], field: int, fmt: str, what: str) -> int:
        """Scalar field ``field`` of table ``t`` (0 when absent: the schema's default here)."""
        at = self.field(t, field, what)
        return self.read(fmt, at, what) if at else 0

    def vector(self, t, field: int, item_size: int, what: str) -> tuple[int, int]:
        """(start, length) of vector field ``field`` (length 0 when absent), its items inside the file."""
        at = self.ref(t, field, what)
        if at is None:
            return 0, 0
        n = self.read("<I", at, what)
        if at + 4 + n * item_size > len(self.data):
            raise _Outside(what)
        return at + 4, n

    def tables(self, t, field: int, what: str) -> list[tuple[int, int, int]]:
        start, n = self.vector(t, field, 4, what)
        return [self.table(start + 4 * k + self.read("<I", start + 4 * k, what), f"{what}[{k}]") for k in range(n)]


def outside_the_file(data: bytes) -> str | None:
    """The first part of a TFLite flatbuffer that lies beyond its end, e.g. "subgraph 0 tensor 3", or None.

    Walks what every interpreter reads (TFLite ``schema.fbs`` field ids): Model.operator_codes (1; custom_code 1),
    .subgraphs (2; SubGraph tensors 0, inputs 1, outputs 2, operators 3; Tensor shape 0, name 3, quantization 4
    with scale 2 and zero_point 3, shape_signature 7; Operator inputs 1, outputs 2, builtin_options 4,
    custom_options 5), .buffers (4; Buffer data 0, offset 1 and size 2 for data stored after the flatbuffer) and
    .metadata (6; name 0).
    """
    b = _Bounded(data)
    try:
        model = b.table(b.read("<I", 0, "the root table"), "the root table")
        for k, code in enumerate(b.tables(model, 1, "operator code")):
            b.vector(code, 1, 1, f"operator code {k}")
        for g, sub in enumerate(b.tables(model, 2, "subgraph")):
            for k, tensor in enumerate(b.tables(sub, 0, f"subgraph {g} tensor")):
                what = f"subgraph {g} tensor {k}"
                for field, size in ((0, 4), (3, 1), (7, 4)):
                    b.vector(tensor, field, size, what)
                at = b.ref(tensor, 4, what)
                if at is not None:
                    q = b.table(at, what)
                    b.vector(q, 2, 4, what), b.vector(q, 3, 8, what)
            for field in (1, 2):
                b.vector(sub, field, 4, f"subgraph {g} inputs/outputs")
            for k, op in enumerate(b.tables(sub, 3, f"subgraph {g} operator")):
                what = f"subgraph {g} operator {k}"
                b.vector(op, 1, 4, what), b.vector(op, 2, 4, what), b.vector(op, 5, 1, what)
                at = b.ref(op, 4, what)
                if at is not None:
                    b.table(at, what)
        for k, buffer in enumerate(b.tables(model, 4, "buffer")):
            b.vector(buffer, 0, 1, f"buffer {k}")
            offset, length = (b.scalar(buffer, f, "<Q", f"buffer {k}") for f in (1, 2))
            if offset > 1 and offset + length > len(data):
                raise _Outside(f"buffer {k}")
        for k, entry in enumerate(b.tables(model, 6, "metadata")):
            b.vector(entry, 0, 1, f"metadata {k}")
    except _Outside as e:
        return str(e)
    return None


class _Table:
    """A flatbuffer table: field ``i`` lives at vtable slot ``4 + 2 * i`` (FlatBuffers binary format)."""

    def __init__(self, buf: bytes, pos: int):
        from flatbuffers.table import Table

        self.t = Table(bytearray(buf) if not isinstance(buf, bytearray) else buf, pos)

    def _off(self, i: int) -> int:
        return self.t.Offset(4 + 2 * i)

    def table(self, i: int) -> "_Table | None":
        o = self._off(i)
        return _Table(self.t.Bytes, self.t.Indirect(o + self.t.Pos)) if o else None

    def tables(self, i: int) -> list["_Table"]:
        o = self._off(i)
        if not o:
            return []
        start, n = self.t.Vector(o), self.t.VectorLen(o)
        return [_Table(self.t.Bytes, self.t.Indirect(start + 4 * k)) for k in range(n)]

    def string(self, i: int) -> str | None:
        o = self._off(i)
        return self.t.String(o + self.t.Pos).decode("utf-8", "replace") if o else None

    def scalar(self, i: int, flags, default=0):
        o = self._off(i)
        return self.t.Get(flags, o + self.t.Pos) if o else default

    def vector_bytes(self, i: int) -> bytes:
        o = self._off(i)
        if not o:
            return b""
        start = self.t.Vector(o)
        return bytes(self.t.Bytes[start:start + self.t.VectorLen(o)])

    def floats(self, i: int) -> list[float]:
        from flatbuffers import number_types as N

        o = self._off(i)
        return [float(x) for x in self.t.GetVectorAsNumpy(N.Float32Flags, o)] if o else []


def root_table(buf: bytes) -> _Table:
    """The root table of a flatbuffer (a TFLite ``Model`` or a tflite-support ``ModelMetadata``), read by field
    number without a generated schema, so the device needs only the ``flatbuffers`` package. ``buf`` must be a
    bytearray or bytes; run :func:`check_tflite` first on untrusted model bytes (this reader does not check bounds).
    """
    from flatbuffers import encode, packer

    return _Table(buf, encode.Get(packer.uoffset, bytearray(buf[:4]), 0))


def metadata_entries(data: bytes, name: str = "<model>") -> dict[str, bytes]:
    """The TFLite ``Model.metadata`` table as ``{entry name: buffer bytes}``.

    Raises:
        ModelError: not a TFLite flatbuffer, or a truncated/corrupt one.
    """
    from flatbuffers import number_types as N

    check_tflite(data, name)
    try:
        buf = bytearray(data)
        model = root_table(buf)
        buffers = model.tables(4)
        out = {}
        for m in model.tables(6):
            b = buffers[m.scalar(1, N.Uint32Flags)]
            offset, size = b.scalar(1, N.Uint64Flags), b.scalar(2, N.Uint64Flags)
            payload = bytes(buf[offset:offset + size]) if offset > 1 else b.vector_bytes(0)
            out[m.string(0) or ""] = payload
        return out
    except (IndexError, ValueError, TypeError, AssertionError, struct.error) as e:
        raise ModelError(f"{name}: truncated or corrupt TFLite flatbuffer (a field points outside the file's "
                         f"{len(data):,} bytes)") from None


def _support_metadata(fb: bytes, model_bytes: bytes) -> tuple[list[str | None] | None, dict]:
    """Labels and normalisation from a tflite-support ``ModelMetadata`` flatbuffer (see module docstring)."""
    from flatbuffers import number_types as N

    root = root_table(bytearray(fb))
    subgraphs = root.tables(3)
    if not subgraphs:
        return None, {}
    sg = subgraphs[0]
    pre: dict = {}
    inputs = sg.tables(2)
    if inputs:
        tm = inputs[0]
        for pu in tm.tables(4):
            if pu.scalar(0, N.Uint8Flags) == _NORMALIZATION_OPTIONS and pu.table(1) is not None:
                opts = pu.table(1)
                mean, std = opts.floats(0), opts.floats(1)
                if mean and std:
                    pre["mean"], pre["std"] = mean, std
        content = tm.table(3)
        if content is not None and content.scalar(0, N.Uint8Flags) == _IMAGE_PROPERTIES:
            props = content.table(1)
            if props is not None and props.scalar(0, N.Int8Flags) == _GRAYSCALE:
                pre["channels"] = 1
    label_file = None
    outputs = sg.tables(3)
    for af in (outputs[0].tables(6) if outputs else []) + sg.tables(4):
        if af.scalar(2, N.Int8Flags) == _TENSOR_AXIS_LABELS and af.string(0):
            label_file = af.string(0)
            break
    labels = None
    if label_file:
        try:
            with zipfile.ZipFile(io.BytesIO(model_bytes)) as z:
                from edgecnn.labels import parse_labels

                labels = parse_labels(z.read(label_file).decode("utf-8", "replace"), label_file)
        except (zipfile.BadZipFile, KeyError):
            labels = None
    return labels, pre


def _check_record(record, name: str) -> tuple[list[str | None] | None, dict]:
    """Validate an edgecnn record's shape: ``{"format": int, "labels": [str|null]|null, "preprocessing": {}}``."""
    if not isinstance(record, dict):
        raise ModelError(f"{name}: edgecnn metadata is a JSON {type(record).__name__}, expected an object")
    fmt = record.get("format", FORMAT_VERSION)
    if not isinstance(fmt, int) or fmt > FORMAT_VERSION:
        raise ModelError(f"{name}: edgecnn metadata format {fmt!r} is newer than this edgecnn reads "
                         f"({FORMAT_VERSION}); upgrade edgecnn")
    labels = record.get("labels")
    if labels is not None and not (isinstance(labels, list) and all(x is None or isinstance(x, str) for x in labels)):
        raise ModelError(f"{name}: edgecnn metadata labels are {type(labels).__name__}, expected a list of strings")
    pre = record.get("preprocessing") or {}
    if not isinstance(pre, dict):
        raise ModelError(f"{name}: edgecnn metadata preprocessing is {type(pre).__name__}, expected an object")
    return labels, dict(pre)


def read_metadata(data: bytes, name: str = "<model>") -> ModelMetadata:
    """Read labels and preprocessing from a .tflite file's bytes (see module docstring).

    Raises:
        ModelError: not a TFLite flatbuffer, truncated, or an edgecnn record that is not valid JSON.
    """
    entries = metadata_entries(data, name)
    meta = ModelMetadata(entries=sorted(entries))
    if METADATA_NAME in entries:
        try:
            record = json.loads(entries[METADATA_NAME].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ModelError(f"{name}: edgecnn metadata is not valid JSON ({e})") from None
        meta.source = "edgecnn"
        meta.labels, meta.preprocessing = _check_record(record, name)
        training = record.get("training")
        meta.training = dict(training) if isinstance(training, dict) else {}
    elif SUPPORT_METADATA_NAME in entries:
        try:
            labels, pre = _support_metadata(entries[SUPPORT_METADATA_NAME], data)
        except (IndexError, ValueError, TypeError, AssertionError, struct.error):
            labels, pre = None, {}
        meta.source = "tflite-support"
        meta.labels, meta.preprocessing = labels, pre
    return meta


def tflite_schema():
    """The generated TFLite flatbuffer schema module (object API: ``ModelT``, ``BufferT``, ``MetadataT``), from
    ``ai-edge-litert`` or else TensorFlow.

    Raises:
        ImportError: neither is installed.
    """
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def embed_metadata(data: bytes, labels: list[str] | None, pre: Preprocessing | None, name: str = "<model>",
                   extra: dict | None = None) -> bytes:
    """Return a copy of a .tflite model with edgecnn's record (labels + preprocessing) in its metadata table.

    An existing edgecnn entry is replaced; every other entry (``min_runtime_version``, ``CONVERSION_METADATA``, ...)
    is kept. Needs the generated TFLite schema from ``ai-edge-litert`` or TensorFlow.

    Args:
        data: the model's bytes.
        labels: class labels by output index.
        pre: the preprocessing record.
        extra: further JSON-ready keys for the record (e.g. ``{"training": {"data", "seed", "val_split"}}`` so that
            ``edgecnn evaluate`` can recreate the held-out split); ``format``, ``labels``, ``preprocessing`` win.
    Returns:
        the new model's bytes.
    Raises:
        ModelError: ``data`` is not a TFLite flatbuffer.
    """
    record = {**(extra or {}), "format": FORMAT_VERSION, "labels": list(labels) if labels is not None else None,
              "preprocessing": pre.to_dict() if pre is not None else {}}
    return embed_record(data, record, name)


def embed_record(data: bytes, record, name: str = "<model>") -> bytes:
    """Write ``record`` (any JSON value) as the model's edgecnn metadata entry; see :func:`embed_metadata`.

    Raises:
        ModelError: ``data`` is not a TFLite flatbuffer.
    """
    import flatbuffers

    check_tflite(data, name)
    schema = tflite_schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    payload = json.dumps(record, separators=(",", ":")).encode("utf-8")
    buf = schema.BufferT()
    buf.data = list(payload)
    model.buffers = list(model.buffers or [])
    kept = [m for m in (model.metadata or []) if (m.name or b"") not in (METADATA_NAME, METADATA_NAME.encode())]
    model.buffers.append(buf)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*kept, entry]
    builder = flatbuffers.Builder(len(data) + len(payload) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())


def embed_support_metadata(data: bytes, labels: list[str], mean: list[float], std: list[float],
                           label_file: str = "labels.txt", name: str = "<model>") -> bytes:
    """Return a copy of a .tflite model carrying TFLite Support metadata the way published classifiers do: a
    ``TFLITE_METADATA`` entry holding a ``ModelMetadata`` flatbuffer (input ``NormalizationOptions`` mean/std,
    output ``TENSOR_AXIS_LABELS`` file) and the label file in a zip archive appended to the model. Field slots
    follow tflite-support's ``metadata_schema.fbs``; :func:`read_metadata` reads it back.

    Args:
        data: the model's bytes.
        labels: class labels by output index (one per line in ``label_file``).
        mean, std: the input's normalisation in pixel units, ``real = (pixel - mean) / std``, one value or one per
            channel.
    Returns:
        the new model's bytes.
    Raises:
        ModelError: ``data`` is not a TFLite flatbuffer.
    """
    import flatbuffers

    check_tflite(data, name)
    b = flatbuffers.Builder(0)

    def table(fields):  # fields: [(slot, kind, value)]
        b.StartObject(8)
        for slot, kind, value in fields:
            {"off": b.PrependUOffsetTRelativeSlot, "u8": b.PrependUint8Slot,
             "i8": b.PrependInt8Slot}[kind](slot, value, 0)
        return b.EndObject()

    def vector_of(offsets):
        b.StartVector(4, len(offsets), 4)
        for o in reversed(offsets):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    def floats(values):
        b.StartVector(4, len(values), 4)
        for v in reversed(values):
            b.PrependFloat32(v)
        return b.EndVector()

    af = table([(0, "off", b.CreateString(label_file)), (2, "i8", _TENSOR_AXIS_LABELS)])  # AssociatedFile
    out_tm = table([(6, "off", vector_of([af]))])  # TensorMetadata.associated_files
    m, s = floats(list(mean)), floats(list(std))
    norm = table([(0, "off", m), (1, "off", s)])  # NormalizationOptions
    pu = table([(0, "u8", _NORMALIZATION_OPTIONS), (1, "off", norm)])  # ProcessUnit
    in_tm = table([(4, "off", vector_of([pu]))])  # TensorMetadata.process_units
    sg = table([(2, "off", vector_of([in_tm])), (3, "off", vector_of([out_tm]))])  # SubGraphMetadata
    mm = table([(3, "off", vector_of([sg]))])  # ModelMetadata.subgraph_metadata
    b.Finish(mm, file_identifier=b"M001")
    payload = bytes(b.Output())

    schema = tflite_schema()
    obj = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    buf = schema.BufferT()
    buf.data = list(payload)
    obj.buffers = [*(obj.buffers or []), buf]
    entry = schema.MetadataT()
    entry.name = SUPPORT_METADATA_NAME
    entry.buffer = len(obj.buffers) - 1
    kept = [e for e in (obj.metadata or []) if (e.name or b"") not in (SUPPORT_METADATA_NAME,
                                                                       SUPPORT_METADATA_NAME.encode())]
    obj.metadata = [*kept, entry]
    fb = flatbuffers.Builder(len(data) + len(payload) + 1024)
    fb.Finish(obj.Pack(fb), file_identifier=TFLITE_IDENTIFIER)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr(label_file, "\n".join(labels) + "\n")
    return bytes(fb.Output()) + zipped.getvalue()
