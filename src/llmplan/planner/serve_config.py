"""The serving command line for a planned deployment, per engine, so a plan can be deployed as is.

The command names the checkpoint the weight format needs: the model's own repository for its 16-bit or
native format (gpt-oss: MXFP4), a published checkpoint of that format from the catalog (``Model.checkpoints``:
an FP8, AWQ, GPTQ or GGUF repository) where one exists, and otherwise a local directory the comment says how
to produce ("quantize it yourself with …") rather than an invented repository. Flags are the ones each
engine's CLI documents for that checkpoint:

- vLLM ``vllm serve`` (https://docs.vllm.ai/en/latest/cli/serve.html): a model that thinks gets its
  ``--reasoning-parser`` (the catalog's ``reasoning_parser``, per engine: SGLang's names differ); a pre-quantized
  checkpoint carries its ``quantization_config`` and is detected; ``--quantization fp8`` only quantizes a 16-bit
  checkpoint on load
  (https://docs.vllm.ai/en/latest/features/quantization/fp8.html) and is never given with a pre-quantized or
  MXFP4 checkpoint. Gaudi FP8 goes through Intel Neural Compressor: ``--quantization inc --kv-cache-dtype
  fp8_inc`` with ``QUANT_CONFIG`` set to a calibration file
  (https://docs.vllm.ai/en/v0.10.0/features/quantization/inc.html).
- SGLang ``python -m sglang.launch_server`` (https://docs.sglang.ai/advanced_features/server_arguments.html):
  ``--quantization fp8`` on a 16-bit checkpoint, FP8 KV cache as ``--kv-cache-dtype fp8_e4m3``, a thinking model's
  ``--reasoning-parser`` in SGLang's names (https://docs.sglang.io/advanced_features/separate_reasoning.html).
- TensorRT-LLM ``trtllm-serve`` (https://nvidia.github.io/TensorRT-LLM/commands/trtllm-serve.html): a
  pre-quantized (ModelOpt or HF FP8) checkpoint or a 16-bit one; it does not quantize on load.
- llama.cpp ``llama-server`` (https://github.com/ggml-org/llama.cpp/blob/master/tools/server/README.md): a GGUF
  file of the chosen type.
- NVIDIA NIM: a container configured by environment variables (``NIM_MODEL_PATH``; the profile picks
  precision and parallelism, https://docs.nvidia.com/nim/large-language-models/latest/reference/environment-variables.html).

Memory and batching flags come from the engine's catalog entry (``memory_fraction_flag``,
``max_num_seqs_flag``). A server that binds only this machine by default (SGLang, TensorRT-LLM, llama-server:
the entry's ``default_host``) is told to listen on every interface, so the load balancer in front of the
replicas reaches it. Air-gapped, the command runs with ``HF_HUB_OFFLINE=1`` (Hugging Face's offline mode: the
repository is read from the local cache, never fetched) and the comment says to copy the checkpoint in.

A server that listens on every interface must not serve an open OpenAI-compatible API. Where the engine has a key
option (the entry's ``api_key_flag``: vLLM, SGLang and llama-server ``--api-key``) the command passes it the
operator's secret from the environment variable :data:`API_KEY_ENV`, written ``"${LLM_API_KEY:?…}"`` so that the
shell refuses to start the server when the variable is unset or empty (no command ever starts with an empty key or
a key written into a report); the comment names the variable and, from ``api_key_note``, what the key leaves open.
Where it has none (trtllm-serve, NIM) the comment says to keep it on a private network behind an authenticating
proxy."""

from __future__ import annotations

import shlex
import unicodedata

from ..catalog.schema import Checkpoint, Engine, Model, QuantFormat
from ..memory.fit import dp_attention
from ..perf.limits import reserves_answer
from ..specs import Deployment

# The environment variable that holds the API key clients must send (as a Bearer token); the operator sets it, the
# serve line only refers to it. One name for every engine, so the same secret store serves every replica.
API_KEY_ENV = "LLM_API_KEY"
# the reference to it: the shell stops with this message instead of starting a server with no key (POSIX ${var:?word})
_API_KEY_REF = f'"${{{API_KEY_ENV}:?set {API_KEY_ENV} to the API key clients send}}"'

# weight formats the engine quantizes on load from a 16-bit checkpoint (no pre-quantized repository needed)
_ON_THE_FLY = {"vllm": {"fp8"}, "sglang": {"fp8"}, "vllm-v0": {"fp8"}}
_KV_FP8 = {"vllm": "fp8", "vllm-v0": "fp8", "sglang": "fp8_e4m3", "nim": "fp8"}
_VLLM = ("vllm", "vllm-v0", "gaudi")
# the variable that limits a process to some devices, per vendor (CUDA, ROCm/HIP, Habana, CANN runtime docs)
_VISIBLE = {"NVIDIA": "CUDA_VISIBLE_DEVICES", "AMD": "HIP_VISIBLE_DEVICES", "Intel": "HABANA_VISIBLE_MODULES",
            "Huawei": "ASCEND_RT_VISIBLE_DEVICES"}
# how to make a checkpoint of a format when none is published (the tool, not a repository)
_HOW = {
    "fp8": "llm-compressor (FP8_DYNAMIC scheme) or TensorRT Model Optimizer (hf_ptq.py --qformat fp8)",
    "int8": "llm-compressor (GPTQModifier, W8A8 scheme)",
    "int8-w8a16": "llm-compressor (GPTQModifier, W8A16 scheme)",
    "int4-awq": "AutoAWQ or llm-compressor (AWQModifier, W4A16)",
    "int4-gptq": "llm-compressor (GPTQModifier, W4A16) or GPTQModel",
    "w4a8": "llm-compressor (W4A8 scheme) or TensorRT Model Optimizer (--qformat w4a8_awq)",
    "nvfp4": "llm-compressor (NVFP4 scheme) or TensorRT Model Optimizer (--qformat nvfp4)",
    "mxfp4": "TensorRT Model Optimizer or Quark (MXFP4)",
    "nf4": "bitsandbytes (load_in_4bit, nf4) at load time",
}


def _matches(c: Checkpoint, fmt: QuantFormat) -> bool:
    names = {fmt.id, *fmt.aliases}
    return c.precision in names or any(f in names for f in c.formats)


def pick_checkpoint(m: Model, fmt: QuantFormat, engine: str = "vllm") -> Checkpoint | None:
    """A published checkpoint of `m` in `fmt`: for TensorRT-LLM and NIM a TensorRT Model Optimizer one
    (quant_method modelopt) first; then one that follows the format's defaults (no 16-bit overrides, as the
    planner's memory model assumes); then the catalog's order."""
    found = [c for c in m.checkpoints if _matches(c, fmt)]
    found.sort(key=lambda c: (engine in ("trtllm", "nim") and c.quant_method != "modelopt",
                              c.keeps_16bit is not None or bool(c.unquantized_layers)))
    return found[0] if found else None


def gguf_file(c: Checkpoint | None, m: Model, fmt: QuantFormat) -> str:
    quant = fmt.id.upper()
    if c is not None and c.file:
        return c.file.replace("{QUANT}", quant).replace("{quant}", fmt.id.lower())
    stem = c.id.split("/")[-1].removesuffix("-GGUF").removesuffix("-gguf") if c else m.id.split("/")[-1]
    return f"{stem}-{quant}.gguf"


def checkpoint(d: Deployment) -> tuple[str, str | None, bool]:
    """(the model argument, a note for the command's comment, whether the engine quantizes on load)."""
    fmt, m, eng = d.weight_format, d.model, d.engine.id
    native = fmt.id == m.native_precision or (fmt.id in ("bf16", "fp16") and m.native_precision in ("bf16", "fp16"))
    if native:
        return m.id, None, False
    if eng == "gaudi" and fmt.id == "fp8":
        return m.id, ("FP8 on Gaudi goes through Intel Neural Compressor: calibrate first (vllm-hpu-extension "
                      "calibrate_model.sh) and point QUANT_CONFIG at its quantization config"), True
    ckpt = pick_checkpoint(m, fmt, eng)
    if fmt.kind == "gguf" or eng == "llamacpp":
        name = gguf_file(ckpt, m, fmt)
        if ckpt is not None:
            return name, f"{name} from {ckpt.id}", False
        return name, (f"no public {fmt.id} GGUF of {m.id} in the catalog: convert it yourself with llama.cpp "
                      f"(convert_hf_to_gguf.py, then llama-quantize … {fmt.id.upper()})"), False
    on_the_fly = fmt.id in _ON_THE_FLY.get(eng, set()) and m.native_precision in ("bf16", "fp16")
    if ckpt is not None:
        why = _blocks_do_not_split(d, ckpt)
        if why is None:
            return ckpt.id, None, False
        if on_the_fly:  # the same format quantized per channel on load: no block to split
            return m.id, f"{ckpt.id} cannot load at this layout ({why}): the server quantizes {m.id} on load", True
        return ckpt.id, f"{ckpt.id} may not load at this layout ({why}): use expert parallelism", False
    if on_the_fly:
        return m.id, None, True
    local = f"./{m.id.split('/')[-1]}-{fmt.id}"
    how = _HOW.get(fmt.id, f"a {fmt.id} quantization tool")
    return local, f"no public {fmt.id} checkpoint of {m.id} in the catalog: quantize it yourself with {how}", False


def _experts_whole(d: Deployment) -> bool:
    """Whether the command runs an MoE's experts whole on each GPU (vLLM's line adds --enable-expert-parallel)
    rather than split over the tensor-parallel group (SGLang, TensorRT-LLM: catalog execution.moe_parallel)."""
    return (d.engine.id in _VLLM and _vllm_expert_parallel(d)) or d.engine.execution.moe_parallel == "ep"


def _vllm_expert_parallel(d: Deployment) -> bool:
    """vLLM's line runs an MoE's experts whole (--enable-expert-parallel) on a layout of more than one GPU."""
    return d.model.moe is not None and d.layout.tp * d.layout.pp > 1


def _blocks_do_not_split(d: Deployment, c: Checkpoint) -> str | None:
    """Why tensor parallelism cannot split a block-quantized checkpoint (weight_block_size): each GPU's share of
    a layer's output dimension (the MLP width, or an expert's where experts are split) must be a whole number of
    blocks, or the engine refuses it at load (vLLM issue #17569: 'output_size ... 192 is not divisible by
    weight quantization block_n = 128' for Qwen3-235B-A22B-FP8 at TP 8). None where it splits."""
    tp, m = d.layout.tp, d.model
    if c.weight_block_size is None or tp <= 1:
        return None
    block = c.weight_block_size[0]
    if m.moe is not None:
        if _experts_whole(d):
            return None
        name, width = "expert width", m.moe.expert_intermediate_size
    else:
        name, width = "MLP width", m.intermediate_size
    if width % (tp * block) == 0:
        return None
    return (f"its {name} {width:,} gives {width / tp:g} per GPU at TP {tp}, not a whole number of its "
            f"{block}-wide FP8 blocks")


def _vllm(d: Deployment, model: str, on_load: bool, context_tokens: int) -> list[str]:
    tp, pp, fmt = d.layout.tp, d.layout.pp, d.weight_format.id
    args = ["vllm", "serve", model, "--tensor-parallel-size", str(tp)]
    if pp > 1:
        args += ["--pipeline-parallel-size", str(pp)]
    args += ["--max-model-len", str(context_tokens)]
    if on_load and d.engine.id == "gaudi":
        args += ["--quantization", "inc", "--kv-cache-dtype", "fp8_inc"]
    elif on_load:
        args += ["--quantization", fmt]
    if fmt in ("bf16", "fp16") and d.model.native_precision in ("bf16", "fp16") and fmt != d.model.native_precision:
        args += ["--dtype", "bfloat16" if fmt == "bf16" else "float16"]
    if _vllm_expert_parallel(d):
        args += ["--enable-expert-parallel"]
    return args


def _sglang(d: Deployment, model: str, on_load: bool, context_tokens: int) -> list[str]:
    args = ["python", "-m", "sglang.launch_server", "--model-path", model, "--tp", str(d.layout.tp)]
    if d.layout.pp > 1:
        args += ["--pp-size", str(d.layout.pp)]
    if dp_attention(d) and d.engine.execution.dp_attention_option:  # attention data-parallel over the TP group
        args += [d.engine.execution.dp_attention_option, "--dp-size", str(d.layout.tp)]
    args += ["--context-length", str(context_tokens)]
    if on_load:
        args += ["--quantization", d.weight_format.id]
    return args


def _llamacpp(d: Deployment, model: str, context_tokens: int, seqs: int,
              kv_capacity_tokens: int | None) -> tuple[list[str], str | None]:
    """llama-server's --ctx-size is the KV cache of all --parallel slots together (each slot gets
    ctx-size / parallel): the slots are as many whole request contexts as the KV cache holds."""
    why = None
    if kv_capacity_tokens is not None and kv_capacity_tokens < context_tokens * seqs:
        # keep the slots the sizing counted on (its latencies assume them); each gets its share of the cache
        per_slot = max(256, kv_capacity_tokens // seqs // 256 * 256)
        whole = max(1, kv_capacity_tokens // context_tokens)
        why = (f"each of the {seqs} slots holds {per_slot:,} tokens (the KV cache holds {kv_capacity_tokens:,}): a "
               f"request longer than that is refused; for the full {context_tokens:,}-token context use "
               f"--parallel {whole} --ctx-size {whole * context_tokens}, fewer requests at once")
        context_tokens = per_slot
    args = ["llama-server", "-m", model, "--ctx-size", str(context_tokens * seqs), "--parallel", str(seqs),
            "--n-gpu-layers", "999"]
    if d.layout.num_gpus > 1:
        args += ["--split-mode", "layer"]
    if d.kv_format.id in ("q8_0", "q4_0"):
        args += ["--cache-type-k", d.kv_format.id, "--cache-type-v", d.kv_format.id, "--flash-attn", "on"]
    return args, why


def shell_comment(text: str) -> str:
    """`text` safe after a shell `#`: a line break (or any control or invisible formatting character, such
    as a bidi override) would end the comment and start a command, so each becomes a space."""
    if text.isprintable():  # none of those (they are all unprintable): most texts, at once
        return text
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in text)


def serve_command(d: Deployment, context_tokens: int, max_num_seqs: float,
                  kv_capacity_tokens: int | None = None, air_gapped: bool = False, thinking_off: bool = False,
                  replicas_per_server: int = 1) -> str:
    """The command line; arguments are shell-quoted and the trailing comment holds no line break, so the
    text runs exactly one command whatever the catalog entries (or a user's overrides) contain.
    `kv_capacity_tokens`: the KV cache the memory model leaves (llama.cpp's --ctx-size is the total
    over its slots and must fit in it). `air_gapped`: no network at run time (see the module's notes).
    `thinking_off`: the plan sized a switchable-thinking model with thinking off; the server turns it off where
    the engine can (:func:`_thinking_off`), else the comment says what clients must send."""
    extra, think = _thinking_off(d) if thinking_off and d.model.reasoning == "switchable" else ([], None)
    cmd, note = _command(d, context_tokens, max_num_seqs, kv_capacity_tokens, extra)
    cmd, auth = _api_key(d.engine, cmd)
    reserve = ("the engine reserves KV for each request's max_tokens when it admits it (one without reserves up to "
               "the context above): the sizing assumes clients send max_tokens near their answer's length"
               if reserves_answer(d) else None)
    note = "; ".join(x for x in (auth, note, think, reserve) if x) or None
    if replicas_per_server > 1 and d.engine.id != "nim":
        var = _VISIBLE.get(d.accelerator.vendor.split()[0], "CUDA_VISIBLE_DEVICES")
        g = d.layout.num_gpus
        first = ",".join(str(i) for i in range(g))
        second = ",".join(str(i) for i in range(g, 2 * g))
        note = "; ".join(x for x in (note, f"one process per replica, {replicas_per_server} per server: pin each to "
                                     f"its GPUs ({var}={first} for the first, {second} for the next …) and give "
                                     "each its own --port") if x)
    if air_gapped:
        cmd, note = _offline(d, cmd, note)
    return f"{cmd}  # {shell_comment(note)}" if note else cmd


def thinking_off_server_side(engine: Engine, model: Model) -> bool:
    """Whether `engine`'s server can turn `model`'s thinking off for every request (:func:`_thinking_off`), rather
    than leaving it to each client."""
    return bool(engine.thinking_off_args or (engine.template_kwargs_flag and model.thinking_off_kwargs))


def _thinking_off(d: Deployment) -> tuple[list[str], str]:
    """The arguments that turn a switchable model's thinking off for the whole server, and the comment's words:
    the engine's own switch (llama-server --reasoning-budget 0), else the model's chat-template kwargs as the
    server's default (vLLM --default-chat-template-kwargs; a request's own kwargs still override it), else none
    and the comment says what clients send per request."""
    eng, m = d.engine, d.model
    if eng.thinking_off_args:
        return list(eng.thinking_off_args), "sized with thinking off: the server turns it off by default"
    if eng.template_kwargs_flag and m.thinking_off_kwargs:
        return [eng.template_kwargs_flag, m.thinking_off_kwargs], ("sized with thinking off: the server turns it off "
                                                                    "by default (a request's own chat_template_kwargs "
                                                                    "still override it)")
    return [], f"sized with thinking off: clients turn it off {m.reasoning_off}"


def _api_key(eng: Engine, cmd: str) -> tuple[str, str | None]:
    """The command with the key its server then requires (read from :data:`API_KEY_ENV` by the shell), and what the
    comment says of it; an engine with no key option is told to stay behind an authenticating proxy."""
    if eng.kind != "gpu-server" and not eng.host_flag:  # no network server (a local library such as transformers)
        return cmd, None
    if eng.api_key_flag is None:
        return cmd, (f"{eng.name or eng.id} serves without an API key: keep it on a private network behind an "
                     "authenticating proxy")
    note = f"{API_KEY_ENV}: the key clients send as a Bearer token (the shell refuses to start the server without it)"
    if eng.api_key_note:
        note += f"; {eng.api_key_note}: keep the port on the private network too"
    return f"{cmd} {shlex.quote(eng.api_key_flag)} {_API_KEY_REF}", note


def _offline(d: Deployment, cmd: str, note: str | None) -> tuple[str, str | None]:
    """An air-gapped site: the Hugging Face libraries the engines load with must not reach the Hub."""
    if d.engine.id == "llamacpp":
        how = "copy the GGUF file in from a connected machine"
    elif d.engine.id == "nim":
        how = ("air-gapped NIM: download the model profile on a connected machine (download-to-cache), copy the "
               "cache in and mount it as NIM_CACHE_PATH")
    else:
        # vLLM also reports usage statistics unless told not to (docs.vllm.ai/en/latest/usage/usage_stats.html)
        cmd = "HF_HUB_OFFLINE=1 " + ("VLLM_NO_USAGE_STATS=1 " if d.engine.id in _VLLM else "") + cmd
        how = ("air-gapped: copy the checkpoint into the Hugging Face cache from a connected machine "
               "(hf download, then move the cache) or pass a local directory instead of the repository")
    return cmd, "; ".join(x for x in (note, how) if x)


def _command(d: Deployment, context_tokens: int, max_num_seqs: float,
             kv_capacity_tokens: int | None = None, extra: list[str] | None = None) -> tuple[str, str | None]:
    """The engine's command (shell-quoted) and its comment so far; `extra`: arguments after the model's own
    (the thinking switch)."""
    eng = d.engine
    model, note, on_load = checkpoint(d)
    seqs = max(1, int(max_num_seqs))
    frac = eng.memory.memory_fraction
    env = ""
    if eng.id in _VLLM:
        args = _vllm(d, model, on_load, context_tokens)
        if on_load and eng.id == "gaudi":
            env = "QUANT_CONFIG=/path/to/inc/quant_config.json "
    elif eng.id == "sglang":
        args = _sglang(d, model, on_load, context_tokens)
    elif eng.id == "trtllm":
        args = ["trtllm-serve", model, "--backend", "pytorch", "--tp_size", str(d.layout.tp), "--pp_size",
                str(d.layout.pp), "--max_seq_len", str(context_tokens)]
    elif eng.id == "llamacpp":
        args, why = _llamacpp(d, model, context_tokens, seqs, kv_capacity_tokens)
        note = "; ".join(x for x in (note, why) if x) or None
    elif eng.id == "nim":
        return (f"docker run --gpus all -p 8000:8000 -e NIM_MODEL_PATH={shlex.quote('hf://' + model)} <NIM LLM image>",
                f"NIM selects a validated profile (precision {d.weight_format.id}, TP {d.layout.tp}) per GPU; "
                "pin it with NIM_MODEL_PROFILE (list-model-profiles)" + (f"; {note}" if note else ""))
    else:
        args = [eng.id, model]
    parser = d.model.reasoning_parser.for_engine(eng.id) if d.model.reasoning_parser else None
    if parser and eng.reasoning_parser_flag:  # the trace returned apart from the answer, in the engine's own name
        args += [eng.reasoning_parser_flag, parser]
    args += extra or []
    if eng.default_host in ("127.0.0.1", "localhost") and eng.host_flag:
        args += [eng.host_flag, "0.0.0.0"]  # reachable by the load balancer in front of the replicas
    if eng.id not in ("llamacpp",):
        if frac is not None and eng.memory.memory_fraction_flag:
            args += [eng.memory.memory_fraction_flag, f"{frac:g}"]
        if eng.defaults.max_num_seqs_flag:
            args += [eng.defaults.max_num_seqs_flag, str(seqs)]
        kv = _KV_FP8.get(eng.id)
        if kv and d.kv_format.id == "fp8" and not (on_load and eng.id == "gaudi"):
            args += ["--kv-cache-dtype", kv]
    cmd = env + shlex.join(args)
    if eng.id == "trtllm" and d.kv_format.id == "fp8":
        note = "; ".join(x for x in (note, "FP8 KV cache: kv_cache_config.dtype fp8 in --extra_llm_api_options") if x)
    return cmd, note
