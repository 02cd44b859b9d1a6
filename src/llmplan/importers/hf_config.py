"""Hugging Face ``config.json`` -> :class:`Model`, from a local file or model directory.

Nothing is downloaded. Multimodal configs (Gemma-3, Llama-4) are read from their
``text_config``. A checkpoint's ``quantization_config`` gives its weight format.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..catalog.schema import MLA, LinearAttention, Model, MoE
from ..errors import ImportFileError, spec_error
from ..memory.params import param_count
from .limits import MAX_CONFIG_BYTES, read_limited

SUPPORTED = (
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "qwen3_next", "gemma", "gemma2",
    "gemma3", "gemma3_text", "phi3", "deepseek_v2", "deepseek_v3", "kimi_k2", "gpt_oss", "gptj", "llama4",
    "llama4_text", "glm4_moe", "mistral3", "granite", "olmo2", "cohere", "cohere2", "starcoder2", "exaone",
)

# architectures whose q/k/v projections always carry biases (no config key says so)
_QKV_BIAS = {"qwen2", "qwen2_moe"}
# architectures that tie the embedding by default when the key is absent
_TIED_BY_DEFAULT = {"gemma", "gemma2", "gemma3", "gemma3_text", "cohere", "cohere2", "starcoder2"}


def _load_json(path: Path) -> dict[str, Any]:
    raw = read_limited(path, MAX_CONFIG_BYTES)
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportFileError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ImportFileError(f"{path}: expected a JSON object")
    return doc


def config_path(path: Path) -> Path:
    if path.is_dir():
        p = path / "config.json"
        if not p.is_file():
            raise ImportFileError(f"{path}: no config.json in this directory")
        return p
    return path


def _get(c: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for k in keys:
        if c.get(k) is not None:
            return c[k]
    return default


def _int(c: dict[str, Any], path: Path, *keys: str, default: int | None = None) -> int:
    v = _get(c, *keys, default=default)
    if v is None:
        raise ImportFileError(f"{path}: missing {keys[0]!r}")
    if isinstance(v, bool) or not isinstance(v, int | float) or v != int(v) or v < 0:
        raise ImportFileError(f"{path}: {keys[0]!r} must be a non-negative integer, got {v!r}")
    return int(v)


def _sliding(c: dict[str, Any], mt: str, n_layers: int) -> tuple[int | None, int]:
    types = c.get("layer_types")
    window = _get(c, "sliding_window", "attention_chunk_size")
    if isinstance(types, list) and types:
        n = sum(1 for t in types if t in ("sliding_attention", "chunked_attention"))
        return (int(window) if n and window else None), n
    if mt in ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe") and not c.get("use_sliding_window"):
        return None, 0
    if mt == "llama4" or mt == "llama4_text":
        chunk = c.get("attention_chunk_size")
        nope = c.get("no_rope_layers")
        if chunk and isinstance(nope, list) and len(nope) == n_layers:
            return int(chunk), sum(1 for x in nope if x)
        return None, 0
    if not window:
        return None, 0
    if mt == "gemma2":
        return int(window), n_layers // 2
    pattern = _get(c, "sliding_window_pattern", "_sliding_window_pattern")
    if mt in ("gemma3", "gemma3_text") and pattern:
        return int(window), n_layers - n_layers // int(pattern)
    if mt in ("mistral", "mixtral", "starcoder2"):
        return int(window), n_layers
    return None, 0


def _moe(c: dict[str, Any], mt: str, path: Path, inter: int) -> MoE | None:
    e = _get(c, "n_routed_experts", "num_local_experts", "num_experts")
    if not e or e <= 1:
        return None
    k = _int(c, path, "num_experts_per_tok", "experts_per_token", "moe_topk")
    if mt in ("mixtral", "gpt_oss") or (mt.startswith("llama4") and not c.get("moe_intermediate_size")):
        expert = _int(c, path, "intermediate_size")
    else:
        expert = _int(c, path, "moe_intermediate_size")
    shared_n = int(_get(c, "n_shared_experts", "num_shared_experts", default=0) or 0)
    shared_size = c.get("shared_expert_intermediate_size")
    if mt.startswith("llama4"):
        shared_n, shared_size = 1, None
    dense_inter = _get(c, "intermediate_size_mlp") if mt.startswith("llama4") else (
        inter if _get(c, "first_k_dense_replace") else None)
    return MoE(
        num_experts=int(e), experts_per_token=k, num_shared_experts=shared_n,
        expert_intermediate_size=expert,
        shared_expert_intermediate_size=int(shared_size) if shared_size else None,
        num_dense_layers=int(_get(c, "first_k_dense_replace", default=0) or 0),
        moe_layer_step=int(_get(c, "interleave_moe_layer_step", "decoder_sparse_step", "moe_layer_freq",
                                default=1) or 1),
        dense_intermediate_size=int(dense_inter) if dense_inter else None,
    )


def _linear(c: dict[str, Any], path: Path, n_layers: int) -> LinearAttention | None:
    if "linear_num_value_heads" not in c:
        return None
    types = c.get("layer_types")
    if isinstance(types, list) and types:
        n_lin = sum(1 for t in types if t == "linear_attention")
    else:
        interval = _int(c, path, "full_attention_interval", default=4)
        n_lin = n_layers - n_layers // interval
    return LinearAttention(
        num_layers=n_lin,
        num_key_heads=_int(c, path, "linear_num_key_heads"),
        num_value_heads=_int(c, path, "linear_num_value_heads"),
        key_head_dim=_int(c, path, "linear_key_head_dim"),
        value_head_dim=_int(c, path, "linear_value_head_dim"),
        conv_kernel=_int(c, path, "linear_conv_kernel_dim", default=4),
    )


def quantization_precision(doc: dict[str, Any]) -> tuple[str | None, str | None]:
    """(weight format id, KV format id) from a config's quantization_config, if any."""
    q = doc.get("quantization_config") or (doc.get("text_config") or {}).get("quantization_config")
    if not isinstance(q, dict):
        return None, None
    method = str(q.get("quant_method", "")).lower()
    kv = "fp8" if str(q.get("kv_cache_scheme") or q.get("kv_cache_quant_algo") or "").lower().find("fp8") >= 0 \
        or isinstance(q.get("kv_cache_scheme"), dict) else None
    bits = q.get("bits") or q.get("w_bit")
    if method in ("fp8", "fbgemm_fp8"):
        return "fp8", kv
    if method == "awq":
        return "int4-awq", kv
    if method == "gptq":
        return ("int8-w8a16" if bits == 8 else "int4-gptq"), kv
    if method == "mxfp4":
        return "mxfp4", kv
    if method == "bitsandbytes":
        return ("nf4" if q.get("load_in_4bit") else "int8-w8a16"), kv
    if method == "modelopt":
        algo = str(q.get("quant_algo", "")).lower()
        return ("nvfp4" if "fp4" in algo else "fp8" if "fp8" in algo else None), kv
    if method == "compressed-tensors":
        for group in (q.get("config_groups") or {}).values():
            w = (group or {}).get("weights") or {}
            a = (group or {}).get("input_activations") or {}
            wb, wt = w.get("num_bits"), w.get("type")
            if wt == "float" and wb == 8:
                return "fp8", kv
            if wt == "float" and wb == 4:
                return "nvfp4", kv
            if wb == 8 and a:
                return "int8", kv
            if wb == 8:
                return "int8-w8a16", kv
            if wb == 4:
                return ("w4a8" if a and a.get("num_bits") == 8 else "int4-gptq"), kv
    return None, kv


def model_from_config(path: Path) -> tuple[Model, str | None, str | None]:
    """Read a config.json (or a directory holding one). Returns (model, weight format, KV format)."""
    path = config_path(path)
    doc = _load_json(path)
    mt_top = str(doc.get("model_type", ""))
    text = doc.get("text_config")
    c: dict[str, Any] = text if isinstance(text, dict) else doc
    mt = str(c.get("model_type") or mt_top)
    if mt not in SUPPORTED and mt_top not in SUPPORTED:
        raise ImportFileError(
            f"{path}: model_type {mt or mt_top!r} is not supported; supported: {', '.join(SUPPORTED)}"
        )
    n_layers = _int(c, path, "num_hidden_layers", "n_layer", "num_layers")
    hidden = _int(c, path, "hidden_size", "n_embd", "d_model")
    heads = _int(c, path, "num_attention_heads", "n_head")
    kv_heads = _int(c, path, "num_key_value_heads", "num_kv_heads", default=heads)
    inter = _int(c, path, "intermediate_size", "n_inner", "ffn_hidden_size", default=4 * hidden)
    if mt == "gptj" and not c.get("n_inner"):
        inter = 4 * hidden
    mla = None
    if c.get("kv_lora_rank"):
        mla = MLA(kv_lora_rank=_int(c, path, "kv_lora_rank"), q_lora_rank=c.get("q_lora_rank"),
                  qk_rope_head_dim=_int(c, path, "qk_rope_head_dim"),
                  qk_nope_head_dim=_int(c, path, "qk_nope_head_dim"), v_head_dim=_int(c, path, "v_head_dim"))
        kv_heads = heads
        head_dim = mla.qk_nope_head_dim + mla.qk_rope_head_dim
    else:
        head_dim = _int(c, path, "head_dim", default=hidden // heads if heads else 0)
    window, n_sliding = _sliding(c, mt, n_layers)
    precision, kv = quantization_precision(doc)
    mtime = dt.date.fromtimestamp(path.stat().st_mtime).isoformat()
    name = str(doc.get("_name_or_path") or path.parent.name or path.stem)
    try:
        model = Model(
            id=f"file:{path}",
            name=name,
            family=mt,
            architecture=mt,
            organization="unknown",
            country="unknown",
            license="unknown (imported from a local file)",
            license_class="unknown",
            commercial_use=None,
            native_precision=precision or _dtype(doc),
            num_layers=n_layers,
            hidden_size=hidden,
            num_attention_heads=heads,
            num_kv_heads=kv_heads,
            head_dim=head_dim,
            intermediate_size=inter,
            vocab_size=_int(c, path, "vocab_size", default=_int(doc, path, "vocab_size", default=0)),
            tie_word_embeddings=bool(
                _get(c, "tie_word_embeddings", default=_get(doc, "tie_word_embeddings", default=mt in _TIED_BY_DEFAULT))
            ),
            max_context=_int(c, path, "max_position_embeddings", "n_positions", "seq_length", default=4096),
            mlp_gated=mt != "gptj",
            attention_bias=bool(c.get("attention_bias", mt in _QKV_BIAS)),
            sliding_window=window,
            num_sliding_window_layers=n_sliding,
            moe=_moe(c, mt, path, inter),
            mla=mla,
            linear_attention=_linear(c, path, n_layers),
            num_mtp_layers=int(c.get("num_nextn_predict_layers") or 0),
            total_params=1,
            config_source=str(path),
            source=str(path),
            as_of=mtime,
        )
    except ValidationError as exc:
        raise spec_error(exc, str(path), error=ImportFileError) from None
    total = param_count(model)
    model = model.model_copy(update={"total_params": float(total)})
    return model, precision, kv


def _dtype(doc: dict[str, Any]) -> str:
    d = str(doc.get("torch_dtype") or doc.get("dtype") or "bfloat16")
    return {"float16": "fp16", "bfloat16": "bf16", "float32": "bf16"}.get(d, "bf16")


def is_config_path(p: Path) -> bool:
    return p.suffix == ".json" or (p.is_dir() and (p / "config.json").is_file())


__all__ = ["model_from_config", "quantization_precision", "is_config_path"]
