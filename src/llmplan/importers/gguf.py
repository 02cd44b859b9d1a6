"""GGUF headers: architecture, quantization type and exact tensor sizes of a llama.cpp /
Ollama model file, without reading tensor data.

Layout (GGUF v2/v3, little-endian): magic ``GGUF``, version (u32), tensor count (u64),
metadata count (u64), the metadata key/value pairs, then one info record per tensor
(name, dims, ggml type, offset). Every length read is checked against the file size and
a limit before it is used.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import ValidationError

from ..catalog.schema import GgufType, Model, MoE, QuantFormat
from ..errors import ImportFileError, spec_error
from ..memory.params import Tensor
from ..memory.weights import TensorBytes
from .limits import MAX_GGUF_KV_BYTES, MAX_GGUF_TENSORS, file_errors

MAGIC = b"GGUF"
MAX_STRING = 16 * 2**20
MAX_ARRAY = 50_000_000
# GGUF metadata value types
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class GgufInfo:
    path: Path
    version: int
    architecture: str
    metadata: dict[str, Any]
    tensors: list[tuple[str, tuple[int, ...], int]]  # name, dims (ne0 first), ggml type id
    file_type: int | None


class _Reader:
    def __init__(self, f: BinaryIO, path: Path, size: int):
        self.f, self.path, self.size = f, path, size

    def read(self, n: int) -> bytes:
        if n < 0 or self.f.tell() + n > self.size:
            raise ImportFileError(f"{self.path}: truncated or corrupt GGUF header (read past the end of the file)")
        return self.f.read(n)

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.scalar("<Q")
        if n > MAX_STRING:
            raise ImportFileError(f"{self.path}: a GGUF string of {n:,} bytes is over the limit")
        return self.read(n).decode("utf-8", errors="replace")

    def value(self, vtype: int, depth: int = 0) -> Any:
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY and depth < 2:
            etype, n = self.scalar("<I"), self.scalar("<Q")
            if n > MAX_ARRAY:
                raise ImportFileError(f"{self.path}: a GGUF array of {n:,} items is over the limit")
            if etype in _SCALARS:  # skip numeric arrays quickly, keep their length
                self.read(n * struct.calcsize(_SCALARS[etype]))
                return _Skipped(n)
            return [self.value(etype, depth + 1) for _ in range(n)] if etype != _STRING else _skip_strings(self, n)
        raise ImportFileError(f"{self.path}: unknown GGUF metadata type {vtype}")


@dataclass(frozen=True)
class _Skipped:
    length: int


def _skip_strings(r: _Reader, n: int) -> _Skipped:
    for _ in range(n):
        k = r.scalar("<Q")
        if k > MAX_STRING:
            raise ImportFileError(f"{r.path}: a GGUF string of {k:,} bytes is over the limit")
        r.f.seek(k, 1)
        if r.f.tell() > r.size:
            raise ImportFileError(f"{r.path}: truncated GGUF metadata")
    return _Skipped(n)


def read_gguf(path: Path) -> GgufInfo:
    with file_errors(path), path.open("rb") as f:
        r = _Reader(f, path, path.stat().st_size)
        if r.read(4) != MAGIC:
            raise ImportFileError(f"{path}: not a GGUF file (bad magic)")
        version = r.scalar("<I")
        if version not in (2, 3):
            raise ImportFileError(f"{path}: GGUF version {version} is not supported (2 or 3)")
        n_tensors, n_kv = r.scalar("<Q"), r.scalar("<Q")
        if n_tensors > MAX_GGUF_TENSORS or n_kv > 100_000:
            raise ImportFileError(f"{path}: implausible GGUF header ({n_tensors:,} tensors, {n_kv:,} keys)")
        meta: dict[str, Any] = {}
        for _ in range(n_kv):
            key = r.string()
            meta[key] = r.value(r.scalar("<I"))
            if f.tell() > MAX_GGUF_KV_BYTES:
                raise ImportFileError(f"{path}: GGUF metadata larger than {MAX_GGUF_KV_BYTES:,} bytes")
        tensors = []
        for _ in range(n_tensors):
            name = r.string()
            n_dims = r.scalar("<I")
            if n_dims > 8:
                raise ImportFileError(f"{path}: tensor {name!r} has {n_dims} dimensions")
            dims = tuple(r.scalar("<Q") for _ in range(n_dims))
            ttype = r.scalar("<I")
            r.scalar("<Q")  # offset
            tensors.append((name, dims, ttype))
    arch = str(meta.get("general.architecture", ""))
    if not arch:
        raise ImportFileError(f"{path}: GGUF metadata has no general.architecture")
    ft = meta.get("general.file_type")
    return GgufInfo(path, version, arch, meta, tensors, int(ft) if isinstance(ft, int) else None)


_BLK = re.compile(r"^blk\.(\d+)\.(.+?)(\.weight|\.bias)?$")


def _group(stem: str, suffix: str | None) -> str:
    if suffix == ".bias" or "norm" in stem:
        return "norms"
    if stem.endswith("_exps"):
        return "experts"
    if stem.endswith("_shexp"):
        return "shared_experts"
    if stem == "ffn_gate_inp":
        return "router"
    if stem.startswith("ffn"):
        return "mlp"
    return "attention"


def tensor_bytes_from_gguf(info: GgufInfo, types: dict[int, GgufType]) -> tuple[TensorBytes, ...]:
    out = []
    for name, dims, ttype in info.tensors:
        gt = types.get(ttype)
        if gt is None:
            raise ImportFileError(f"{info.path}: tensor {name!r} has ggml type {ttype}, not in the gguf_types catalog")
        n = math.prod(dims) if dims else 1
        m = _BLK.match(name)
        if m:
            layer: int | None = int(m.group(1))
            stem, group = m.group(2), _group(m.group(2), m.group(3))
        else:
            layer = None
            stem = name.removesuffix(".weight")
            group = {"token_embd": "embedding", "output": "lm_head"}.get(stem, "norms")
        cols = dims[0] if dims else 1
        t = Tensor(stem, group, n // max(cols, 1), cols, (layer,) if layer is not None else (),
                   tp="replicate" if group == "norms" else "shard")
        out.append(TensorBytes(t, layer, n * gt.type_size_bytes / gt.block_size, gt.bits_per_weight))
    return tuple(out)


def _meta_int(info: GgufInfo, key: str, default: int | None = None) -> int | None:
    v = info.metadata.get(f"{info.architecture}.{key}", default)
    if isinstance(v, _Skipped):
        return None
    if isinstance(v, list):  # per-layer arrays (e.g. head_count_kv): take the largest
        v = max((x for x in v if isinstance(x, int | float)), default=default)
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else default


def _sliding_layers(arch: str, n_layers: int) -> int:
    """Sliding-window layers by architecture (GGUF stores the window, not the pattern)."""
    if arch == "gemma3":
        return n_layers - n_layers // 6
    if arch in ("gemma2", "gpt-oss", "cohere2"):
        return n_layers // 2
    return n_layers


def model_from_gguf(info: GgufInfo, formats: list[QuantFormat]) -> tuple[Model, str | None]:
    """A Model from GGUF metadata, and the format id matching general.file_type."""
    a = info.architecture
    n_layers = _meta_int(info, "block_count")
    hidden = _meta_int(info, "embedding_length")
    heads = _meta_int(info, "attention.head_count")
    if not (n_layers and hidden and heads):
        raise ImportFileError(f"{info.path}: GGUF metadata lacks {a}.block_count / embedding_length / "
                              "attention.head_count")
    kv_heads = _meta_int(info, "attention.head_count_kv", heads) or heads
    head_dim = _meta_int(info, "attention.key_length", hidden // heads) or hidden // heads
    vocab = next((d[1] for n, d, _ in info.tensors if n == "token_embd.weight" and len(d) == 2), None)
    if vocab is None:
        tok = info.metadata.get("tokenizer.ggml.tokens")
        vocab = tok.length if isinstance(tok, _Skipped) else 0
    experts = _meta_int(info, "expert_count", 0) or 0
    moe = None
    inter = _meta_int(info, "feed_forward_length", 4 * hidden) or 4 * hidden
    if experts > 1:
        moe = MoE(num_experts=experts, experts_per_token=_meta_int(info, "expert_used_count", 1) or 1,
                  num_shared_experts=_meta_int(info, "expert_shared_count", 0) or 0,
                  expert_intermediate_size=_meta_int(info, "expert_feed_forward_length", inter) or inter,
                  num_dense_layers=_meta_int(info, "leading_dense_block_count", 0) or 0)
    window = _meta_int(info, "attention.sliding_window", 0) or None
    fmt = next((f.id for f in formats if f.llama_ftype is not None and f.llama_ftype == info.file_type), None)
    has_output = any(n == "output.weight" for n, _, _ in info.tensors)
    try:
        model = Model(
            id=f"file:{info.path}", name=str(info.metadata.get("general.name") or info.path.stem), family=a,
            architecture=a, organization="unknown", country="unknown",
            license=str(info.metadata.get("general.license") or "unknown (imported from a local file)"),
            license_class="unknown", commercial_use=None, native_precision=fmt or "bf16",
            num_layers=n_layers, hidden_size=hidden, num_attention_heads=heads, num_kv_heads=kv_heads,
            head_dim=head_dim, intermediate_size=inter, vocab_size=int(vocab or 1), tie_word_embeddings=not has_output,
            max_context=_meta_int(info, "context_length", 4096) or 4096,
            sliding_window=window, num_sliding_window_layers=_sliding_layers(a, n_layers) if window else 0,
            moe=moe, total_params=float(sum(math.prod(d) for _, d, _ in info.tensors) or 1),
            config_source=str(info.path), source=str(info.path),
            as_of=dt.date.fromtimestamp(info.path.stat().st_mtime).isoformat(),
        )
    except ValidationError as exc:
        raise spec_error(exc, str(info.path), error=ImportFileError) from None
    return model, fmt
