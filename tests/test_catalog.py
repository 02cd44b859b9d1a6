"""The bundled catalog: provenance on every entry, sane physics, required ids, lookups, overrides."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from llmplan.catalog import load_catalog
from llmplan.catalog.loader import bundled_files
from llmplan.catalog.schema import KIND_MODELS
from llmplan.errors import CatalogError, UnknownIdError
from llmplan.memory.params import param_count

KINDS = list(KIND_MODELS)

REQUIRED_GPUS = """a100-pcie-80gb a100-sxm-40gb a100-sxm-80gb a10g a40 apple-m1-7c apple-m1-max-32c apple-m1-ultra-64c
apple-m2-ultra-60c apple-m2-ultra-76c apple-m3-max-40c apple-m3-ultra-80c apple-m4-10c apple-m4-max-40c ascend-910b
ascend-910c b200 dgx-spark gaudi2 gaudi3 gb200 gh200-144gb gh200-96gb h100-nvl h100-pcie h100-sxm h20 h200-nvl
h200-sxm l4 l40s mi250x mi300x mi325x mi355x rtx-3070 rtx-3080 rtx-3080-ti rtx-3090 rtx-4000-ada rtx-4070-ti rtx-4080
rtx-4090 rtx-5000-ada rtx-5090 rtx-6000-ada rtx-a6000 rtx-pro-6000 rx-7900-xtx""".split()

REQUIRED_MODELS = """EleutherAI/gpt-j-6b Qwen/Qwen2.5-14B-Instruct Qwen/Qwen2.5-32B-Instruct Qwen/Qwen2.5-72B-Instruct
Qwen/Qwen2.5-7B-Instruct Qwen/Qwen2.5-Coder-0.5B-Instruct Qwen/Qwen2.5-Coder-7B Qwen/Qwen2.5-Coder-7B-Instruct
Qwen/Qwen3-14B Qwen/Qwen3-235B-A22B Qwen/Qwen3-30B-A3B Qwen/Qwen3-32B Qwen/Qwen3-8B Qwen/Qwen3-Coder-30B-A3B-Instruct
Qwen/Qwen3-Coder-480B-A35B-Instruct Qwen/Qwen3-Next-80B-A3B-Instruct amd/Llama-3.1-405B-Instruct-FP8-KV
deepseek-ai/DeepSeek-R1 deepseek-ai/DeepSeek-R1-Distill-Llama-70B deepseek-ai/DeepSeek-R1-Distill-Qwen-14B
deepseek-ai/DeepSeek-V3 google/gemma-2-27b-it google/gemma-2-9b-it google/gemma-3-12b-it google/gemma-3-27b-it
google/gemma-3-4b-it huggyllama/llama-7b jeff31415/TinyLlama-1.1B-1T-OpenOrca meta-llama/Llama-2-13b-hf
meta-llama/Llama-2-70b-hf meta-llama/Llama-2-7b-hf meta-llama/Llama-3.1-405B meta-llama/Llama-3.1-405B-FP8
meta-llama/Llama-3.1-405B-Instruct meta-llama/Llama-3.1-405B-Instruct-FP8 meta-llama/Llama-3.1-70B
meta-llama/Llama-3.1-70B-Instruct meta-llama/Llama-3.1-8B meta-llama/Llama-3.1-8B-Instruct
meta-llama/Llama-3.2-1B-Instruct meta-llama/Llama-3.2-3B-Instruct meta-llama/Llama-3.3-70B-Instruct
meta-llama/Llama-4-Maverick-17B-128E-Instruct meta-llama/Llama-4-Scout-17B-16E-Instruct meta-llama/Meta-Llama-3-70B
meta-llama/Meta-Llama-3-8B microsoft/phi-4 mistralai/Mistral-7B-Instruct-v0.2 mistralai/Mistral-7B-v0.1
mistralai/Mistral-Large-Instruct-2411 mistralai/Mistral-Small-24B-Instruct-2501 mistralai/Mixtral-8x22B-v0.1
mistralai/Mixtral-8x7B-v0.1 moonshotai/Kimi-K2-Instruct neuralmagic/Meta-Llama-3.1-70B-Instruct-quantized.w8a8
openai/gpt-oss-120b openai/gpt-oss-20b zai-org/GLM-4.5-Air""".split()

REQUIRED_FORMATS = "bf16 fp16 fp8 int8 int8-w8a16 int4-awq int4-gptq nf4 q8_0 q6_k q5_k_m q4_k_m q4_0 q3_k_m q2_k nvfp4 mxfp4"
REQUIRED_KV = "fp16 bf16 fp8 int8 int4"
REQUIRED_ENGINES = "vllm sglang trtllm llamacpp nim gaudi"
FAMILIES = {"ampere", "ada", "hopper", "blackwell", "blackwell-rtx", "cdna2", "cdna3", "cdna4", "rdna3", "gaudi",
            "ascend", "apple-m1", "apple-m2", "apple-m3", "apple-m4"}


def all_entries(cat):
    for kind in KINDS:
        for e in getattr(cat, kind):
            yield kind, e


def test_every_entry_has_source_and_as_of(cat):
    n = 0
    for kind, e in all_entries(cat):
        assert e.source.strip(), f"{kind}:{e.id} has no source"
        assert e.as_of.strip(), f"{kind}:{e.id} has no as_of"
        year = int(e.as_of[:4])
        assert 2000 <= year <= dt.date.today().year, f"{kind}:{e.id} as_of {e.as_of} is not a plausible date"
        n += 1
    assert n > 150


def test_prices_carry_their_own_provenance(cat):
    for a in cat.accelerators:
        if a.price:
            assert a.price.source.strip() and a.price.as_of and a.price.usd > 0, a.id


@pytest.mark.parametrize("gpu", REQUIRED_GPUS)
def test_required_accelerators(cat, gpu):
    assert cat.accelerators.get(gpu).id == gpu


@pytest.mark.parametrize("model", REQUIRED_MODELS)
def test_required_models_resolve(cat, model):
    assert cat.models.find(model) is not None, model


def test_catalog_sizes(cat):
    assert len(cat.accelerators) >= 30
    assert len(cat.models) >= 40
    for f in REQUIRED_FORMATS.split():
        assert f in cat.quant_formats, f
    for f in REQUIRED_KV.split():
        assert f in cat.kv_formats, f
    for e in REQUIRED_ENGINES.split():
        assert e in cat.engines, e


def test_accelerators_physically_sane(cat):
    for a in cat.accelerators:
        t = a.dense_tflops
        assert a.memory_bandwidth_gb_s > 0 and a.memory_gib > 0, a.id
        low = t.bf16 or t.fp16
        assert low and low > 0, a.id
        if t.fp32:
            assert low >= t.fp32, a.id
        if t.fp8:
            assert t.fp8 >= low, a.id
        if t.fp4:
            assert t.fp4 >= (t.fp8 or low), a.id
        if a.tdp_w:
            assert 5 <= a.tdp_w <= 3000, a.id
        assert a.memory_bandwidth_gb_s < 20_000, a.id  # no single device beats 20 TB/s today
        assert a.family in FAMILIES, (a.id, a.family)
        if a.interconnect.bandwidth_gb_s is not None:
            assert a.interconnect.bandwidth_gb_s > 0, a.id


def test_aliases_are_unambiguous():
    from llmplan.catalog import normalize_name
    from llmplan.catalog.loader import read_file

    for path in bundled_files():
        kind, entries = read_file(path)
        owner: dict[str, str] = {}
        for e in entries:
            names = [e.id, *e.aliases, *[c.id for c in getattr(e, "checkpoints", ())]]
            for name in names:
                key = normalize_name(name)
                assert owner.setdefault(key, e.id) == e.id, f"{kind}: {name!r} names {owner[key]} and {e.id}"


def test_references_between_catalogs_exist(cat):
    for s in cat.servers:
        assert set(s.accelerators) <= set(cat.accelerators.entries), s.id
    for m in cat.models:
        assert m.native_precision in cat.quant_formats, (m.id, m.native_precision)
        for c in m.checkpoints:
            assert c.precision in cat.quant_formats, (m.id, c.id)
            assert c.kv_precision is None or c.kv_precision in cat.kv_formats, (m.id, c.id)
    for f in cat.quant_formats:
        assert set(f.native_families) <= FAMILIES, f.id
        assert set(f.engines) <= set(cat.engines.entries), f.id
        if f.gguf_type:
            assert f.gguf_type in cat.gguf_types.entries, f.id
            for rule in f.gguf_mix:
                assert rule.type in cat.gguf_types.entries, (f.id, rule.type)
        if f.gguf_equivalent:
            assert f.gguf_equivalent in cat.quant_formats.entries, f.id
    for g in cat.gguf_types:
        assert g.fallback_type is None or g.fallback_type in cat.gguf_types.entries, g.id
    for e in cat.engines:
        assert set(e.formats) <= set(cat.quant_formats.entries), (e.id, set(e.formats) - set(cat.quant_formats.entries))
        assert set(e.accelerators) <= FAMILIES, e.id


# published totals that count parts the architecture fields do not describe (vision towers)
MULTIMODAL = {"google/gemma-3-4b-it", "google/gemma-3-12b-it", "google/gemma-3-27b-it",
              "meta-llama/Llama-4-Scout-17B-16E-Instruct", "meta-llama/Llama-4-Maverick-17B-128E-Instruct"}


def test_architecture_reproduces_published_parameter_count(cat):
    """The config fields are right if they give back the model card's parameter count."""
    bad = []
    for m in cat.models:
        tol = 0.15 if m.id in MULTIMODAL else 0.035
        got = param_count(m)
        if abs(got - m.total_params) / m.total_params > tol:
            bad.append(f"{m.id}: computed {got / 1e9:.2f}B vs published {m.total_params / 1e9:.2f}B")
    assert not bad, "\n".join(bad)


def test_lookup_by_alias_and_case(cat):
    assert cat.accelerator("H100 SXM5 80GB").id == "h100-sxm"
    assert cat.accelerator("h100 sxm").id == "h100-sxm"
    assert cat.model("META-LLAMA/LLAMA-3.1-70B-INSTRUCT").id == cat.model("meta-llama/Llama-3.1-70B").id
    m, ckpt = cat.checkpoint("meta-llama/Llama-3.1-405B-Instruct-FP8")
    assert ckpt is not None and ckpt.precision == "fp8" and m.num_layers == 126


def test_unknown_name_suggests_the_closest(cat):
    with pytest.raises(UnknownIdError) as exc:
        cat.accelerator("h100-sxn")
    assert "h100-sxm" in exc.value.suggestions
    with pytest.raises(UnknownIdError) as exc:
        cat.model("meta-llama/Llama-3.1-70B-Instuct")
    assert exc.value.suggestions and "Llama-3.1-70B" in exc.value.suggestions[0]
    assert "did you mean" in str(exc.value)


def _write(d: Path, name: str, text: str) -> None:
    (d / name).write_text(textwrap.dedent(text))


def test_user_override_replaces_and_adds(tmp_path):
    _write(tmp_path, "mine.yaml", """
        schema_version: 1
        kind: accelerators
        entries:
          - id: h100-sxm
            vendor: NVIDIA
            family: hopper
            kind: datacenter
            memory_gib: 96
            memory_bandwidth_gb_s: 3000
            dense_tflops: {bf16: 900}
            interconnect: {kind: nvlink4, bandwidth_gb_s: 450, domain_size: 8}
            source: our lab
            as_of: 2026-01-01
          - id: our-npu
            aliases: [OurNPU]
            vendor: Us
            family: gaudi
            kind: npu
            memory_gib: 64
            memory_bandwidth_gb_s: 1000
            dense_tflops: {bf16: 100}
            interconnect: {kind: pcie5}
            source: our lab
            as_of: 2026-01-01
        """)
    cat = load_catalog([tmp_path])
    assert cat.accelerator("h100-sxm").memory_gib == 96
    assert cat.accelerator("OurNPU").id == "our-npu"
    assert "accelerators:h100-sxm" in cat.overridden
    assert load_catalog().accelerator("h100-sxm").memory_gib == 80  # the bundled one is untouched


def test_user_override_from_environment(tmp_path, monkeypatch):
    _write(tmp_path, "e.yaml", """
        schema_version: 1
        kind: engines
        entries: []
        """)
    monkeypatch.setenv("LLMPLAN_CATALOG", str(tmp_path))
    assert len(load_catalog().engines) >= 6


@pytest.mark.parametrize("text, expect", [
    ("kind: accelerators\nentries: []\n", "schema_version must be 1"),
    ("schema_version: 1\nkind: gadgets\nentries: []\n", "kind must be one of"),
    ("schema_version: 1\nkind: accelerators\nentries: {}\n", "'entries' must be a list"),
    ("schema_version: 1\nkind: accelerators\nentries:\n  - id: x\n    vendor: V\n", "entry 1 (x)"),
    ("schema_version: 1\nkind: accelerators\nentries: [\n", "not valid YAML"),
    ("schema_version: 1\nkind: models\nentries:\n  - {id: m, source: '', as_of: 2024-01-01}\n", "source"),
    ("schema_version: 1\nkind: kv_formats\nentries:\n  - {id: k, bits: 8, source: s, as_of: 2024-13-01}\n", "as_of"),
    ("schema_version: 1\nkind: kv_formats\nentries:\n  - {id: k, bits: 8, source: s, as_of: 2024-01-01, colour: red}\n",
     "colour"),
])
def test_invalid_user_file_names_file_entry_and_field(tmp_path, text, expect):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(CatalogError) as exc:
        load_catalog([tmp_path])
    assert "bad.yaml" in str(exc.value) and expect in str(exc.value)


def test_missing_override_directory(tmp_path):
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog([tmp_path / "nope"])
