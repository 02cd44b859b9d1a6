"""Importers for local model files. The tool never downloads: every path is local."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..catalog import Catalog
from ..catalog.schema import Model
from ..errors import ImportFileError
from ..memory.weights import TensorBytes
from .gguf import model_from_gguf, read_gguf, tensor_bytes_from_gguf
from .hf_config import model_from_config
from .safetensors import SafetensorsSummary, safetensors_files, summarize


@dataclass(frozen=True)
class ImportedModel:
    model: Model
    precision: str | None
    kv_precision: str | None
    tensor_bytes: tuple[TensorBytes, ...] | None  # exact sizes (GGUF)
    safetensors: SafetensorsSummary | None
    path: Path


_LOCAL_FILES = True


def set_local_files(allowed: bool) -> None:
    """Whether names may be local paths. The CLI and the Python API read local model files; the
    web app's computations run with this off, so a name that reaches the importers over HTTP is
    only ever a catalog entry, whatever the store holds (an override whose id is a path included)."""
    global _LOCAL_FILES
    _LOCAL_FILES = allowed


def local_files_allowed() -> bool:
    return _LOCAL_FILES


def looks_like_path(name: str) -> bool:
    if not _LOCAL_FILES:
        return False
    if name.endswith((".json", ".gguf", ".safetensors")):
        return True
    p = Path(name)
    try:
        return "/" in name and p.exists() or p.is_dir()
    except (OSError, ValueError):  # too long for the file system, or a NUL byte: a name, not a path
        return False


FLOAT_DTYPES = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"}


def _starts_with_gguf_magic(path: Path) -> bool:
    if not path.is_file():
        return False
    with path.open("rb") as f:
        return f.read(4) == b"GGUF"


def import_model(path_str: str, cat: Catalog) -> ImportedModel:
    if not _LOCAL_FILES:
        raise ImportFileError("a model is a catalog id or alias here; local files are read by the CLI only")
    path = Path(path_str).expanduser()
    if not path.exists():
        raise ImportFileError(f"{path}: no such file or directory")
    if path.suffix == ".gguf" or _starts_with_gguf_magic(path):
        info = read_gguf(path)
        types = {g.ggml_type_id: g for g in cat.gguf_types if g.ggml_type_id is not None}
        model, fmt = model_from_gguf(info, list(cat.quant_formats))
        return ImportedModel(model, fmt, None, tensor_bytes_from_gguf(info, types), None, path)
    if path.suffix == ".safetensors":
        raise ImportFileError(f"{path}: a safetensors file has no architecture; give its model directory "
                              "(with config.json) instead")
    model, precision, kv = model_from_config(path)
    st = None
    if path.is_dir():
        files = safetensors_files(path)
        if files:
            st = summarize(files)
            if set(st.elements_by_dtype) <= FLOAT_DTYPES:  # packed int4/int8 tensors undercount elements
                model = model.model_copy(update={"total_params": float(st.total_elements)})
    return ImportedModel(model, precision, kv, None, st, path)


__all__ = [
    "ImportedModel",
    "import_model",
    "looks_like_path",
    "set_local_files",
    "local_files_allowed",
    "read_gguf",
    "model_from_config",
    "summarize",
]
