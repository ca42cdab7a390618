"""The GPU paths, proven on CPU (issue 21): what they hand to vLLM, DeepSpeed and FSDP, checked against stand-ins that
record it; and the QLoRA paths (SFT, GRPO, reload and generate) run for real with bitsandbytes 4-bit layers on a tiny
model. `benchmarks/gpu_smoke.py` runs the same paths on a GPU.

The vLLM stand-in has the signatures of vLLM's documented API (https://docs.vllm.ai/en/latest/api/vllm/entrypoints/
llm.html): `LLM(model, *, revision, tokenizer_revision, dtype, quantization, max_model_len, gpu_memory_utilization,
enable_lora, max_lora_rank, ...)`, `LLM.generate(prompts, sampling_params=None, use_tqdm=True, lora_request=None)`,
`SamplingParams(**fields)` and `LoRARequest(lora_name, lora_int_id, lora_path)`. Its engine has no other attribute
(no `.dtype`), as a real one has none of the transformers model's.
"""

import contextlib
import dataclasses
import importlib.machinery
import json
import sys
import types

import pytest
import torch
import yaml
from safetensors.torch import load_file

from dialoghub.core import processes
from dialoghub.core.paths import REPO_ROOT
from dialoghub.evaluation import results
from dialoghub.evaluation.run import EvaluationConfig, evaluate
from dialoghub.models import prompts
from dialoghub.models.generation import (
    VLLM_GPU_MEMORY_UTILIZATION,
    VLLM_MAX_MODEL_LEN,
    GenerationSettings,
    load_generator,
    load_tokenizer,
)
from dialoghub.reward import training as reward_tuning
from dialoghub.sft import trainer as sft_trainer
from dialoghub.sft import training
from tests.test_reward_tuning import TAG, grpo_args, tiny_hub  # noqa: F401 (fixture: tiny base, data, SFT adapter)
from tests.tiny_models import save_tiny_base, tiny_cli_args, tiny_llama, tiny_tokenizer, tiny_tweetsumm

BEGIN_OF_TEXT = "<|begin_of_text|>"
STAND_IN_ANSWER = "The customer's order is late. The agent will check the tracking."


# ---------------------------------------------------------------------------------------------------------------
# A vLLM stand-in


@dataclasses.dataclass
class VLLMCalls:
    engines: list[dict] = dataclasses.field(default_factory=list)
    generate: list[dict] = dataclasses.field(default_factory=list)


@pytest.fixture
def vllm(monkeypatch):
    """`vllm` and `vllm.lora.request` modules that record every `LLM(...)` and `generate(...)` call."""
    calls = VLLMCalls()

    class LLM:
        __slots__ = ()  # nothing but generate: reading `.dtype` (or any other attribute) fails as on a real engine

        def __init__(
            self,
            model,
            *,
            revision=None,
            tokenizer_revision=None,
            dtype="auto",
            quantization=None,
            max_model_len=None,
            gpu_memory_utilization=0.9,
            enable_lora=False,
            max_lora_rank=16,
        ):
            calls.engines.append({name: value for name, value in locals().items() if name != "self"})

        def generate(self, prompts, sampling_params=None, use_tqdm=True, lora_request=None):
            calls.generate.append(
                {"prompts": prompts, "sampling_params": sampling_params, "lora_request": lora_request}
            )
            return [
                types.SimpleNamespace(
                    prompt_token_ids=prompt["prompt_token_ids"],
                    outputs=[types.SimpleNamespace(text=STAND_IN_ANSWER, token_ids=[1, 2, 3], finish_reason="stop")],
                )
                for prompt in prompts
            ]

    class SamplingParams:
        def __init__(self, **fields):
            self.fields = fields

    @dataclasses.dataclass
    class LoRARequest:
        lora_name: str
        lora_int_id: int
        lora_path: str

    modules = {name: types.ModuleType(name) for name in ("vllm", "vllm.lora", "vllm.lora.request")}
    for name, module in modules.items():
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)  # what importlib.util.find_spec returns
        monkeypatch.setitem(sys.modules, name, module)
    modules["vllm"].LLM, modules["vllm"].SamplingParams = LLM, SamplingParams
    modules["vllm"].lora, modules["vllm.lora"].request = modules["vllm.lora"], modules["vllm.lora.request"]
    modules["vllm.lora.request"].LoRARequest = LoRARequest
    return calls


@pytest.fixture(scope="module")
def llama3_like(tmp_path_factory):
    """A tiny base whose tokenizer adds a BOS itself and whose chat template writes one too, as Llama-3's do; and a
    LoRA adapter of rank 20 on it (above vLLM's default max_lora_rank, 16)."""
    from peft import LoraConfig, get_peft_model
    from tokenizers import processors

    tokenizer = tiny_tokenizer()
    tokenizer.add_special_tokens({"bos_token": BEGIN_OF_TEXT})
    bos_id = tokenizer.convert_tokens_to_ids(BEGIN_OF_TEXT)
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BEGIN_OF_TEXT} $A", pair=f"{BEGIN_OF_TEXT} $A $B", special_tokens=[(BEGIN_OF_TEXT, bos_id)]
    )
    tokenizer.chat_template = "{{ bos_token }}" + prompts.fallback_chat_template()
    base = tmp_path_factory.mktemp("llama3-like")
    model = tiny_llama(tokenizer)
    model.save_pretrained(base)
    tokenizer.save_pretrained(base)
    adapter = tmp_path_factory.mktemp("rank-20-adapter")
    get_peft_model(model, LoraConfig(r=20, lora_alpha=40, target_modules="all-linear")).save_pretrained(adapter)
    return types.SimpleNamespace(base=base, adapter=adapter, bos_id=bos_id)


def test_vllm_engine_gets_its_limits_dtype_quantization_and_lora_rank(vllm, llama3_like):
    """Finding 3 (and 10, second half): the engine limits; dtype and load_in_4bit reach vLLM instead of vanishing."""
    generator = load_generator(
        str(llama3_like.base), str(llama3_like.adapter), backend="vllm", load_in_4bit=True, dtype="auto"
    )
    (engine,) = vllm.engines
    assert engine["model"] == str(llama3_like.base) and engine["enable_lora"]
    assert engine["max_model_len"] == VLLM_MAX_MODEL_LEN < 131_072
    # Two engines in one process (the leaderboard's round-trip summarizer, the synthetic stage) fit beside each other
    assert engine["gpu_memory_utilization"] == VLLM_GPU_MEMORY_UTILIZATION and 2 * VLLM_GPU_MEMORY_UTILIZATION <= 0.9
    assert engine["max_lora_rank"] == 32, "rank 20 needs vLLM's next supported rank, 32"
    assert engine["quantization"] == "bitsandbytes"
    assert engine["dtype"] == "bfloat16" == generator.dtype  # what the transformers path loads on CUDA
    assert generator.backend == "vllm" and generator.provenance()["backend"] == "vllm"

    load_generator(str(llama3_like.base), backend="vllm", dtype="float32")
    plain = vllm.engines[-1]
    assert not plain["enable_lora"] and plain["max_lora_rank"] == 16 and plain["quantization"] is None
    assert plain["dtype"] == "float32"


def test_vllm_gets_token_ids_with_one_bos_and_the_lora_request(vllm, llama3_like):
    """Finding 5: the rendered prompt already holds the BOS; vLLM gets token ids, not text it would tokenize again."""
    generator = load_generator(str(llama3_like.base), str(llama3_like.adapter), backend="vllm")
    conversations = [prompts.summarize_messages(tiny_tweetsumm()["test"][index]["dialogue"]) for index in range(3)]
    settings = GenerationSettings(max_new_tokens=16, batch_size=2, do_sample=True, temperature=0.7, seed=5)
    completions = generator.generate(conversations, settings, progress=False)
    assert [completion.text for completion in completions] == [STAND_IN_ANSWER] * 3

    assert len(vllm.generate) == 2  # batches of 2
    sent = [prompt for call in vllm.generate for prompt in call["prompts"]]
    assert all(set(prompt) == {"prompt_token_ids"} for prompt in sent)
    rendered = {generator.render(messages) for messages in conversations}
    tokenized_again = generator.tokenizer(sorted(rendered)[0])["input_ids"]
    assert tokenized_again[:2] == [llama3_like.bos_id] * 2, "text prompts would carry two BOS with this tokenizer"
    for prompt in sent:
        ids = prompt["prompt_token_ids"]
        assert ids[0] == llama3_like.bos_id and ids.count(llama3_like.bos_id) == 1
        assert generator.tokenizer.decode(ids) in rendered
    for call in vllm.generate:
        request = call["lora_request"]
        assert (request.lora_path, request.lora_int_id) == (str(llama3_like.adapter), 1)
        assert (
            call["sampling_params"].fields | {"max_tokens": 16, "temperature": 0.7} == call["sampling_params"].fields
        )


def test_vllm_refuses_an_adapter_above_its_largest_rank(vllm, llama3_like, tmp_path):
    config = json.loads((llama3_like.adapter / "adapter_config.json").read_text())
    (tmp_path / "adapter_config.json").write_text(json.dumps(config | {"r": 1024}))
    with pytest.raises(ValueError, match="LoRA rank 1024"):
        load_generator(str(llama3_like.base), str(tmp_path), backend="vllm")
    assert not vllm.engines


def test_a_vllm_leaderboard_row_reads_no_model_dtype_and_keys_on_the_backend(vllm, tiny_hub):  # noqa: F811
    """Findings 4 and 5: the row is scored (the engine has no `.dtype`), and the backend is part of its system key."""
    config = EvaluationConfig(
        model=f"{tiny_hub.base}@{TAG}",
        adapter=f"{tiny_hub.sft}@{TAG}",
        dataset=f"{tiny_hub.dataset}@{TAG}",
        limit=3,
        embedding_model=None,
        n_bootstrap=20,
        progress=False,
        push=False,
        backend="vllm",
        generation=GenerationSettings(max_new_tokens=12, batch_size=4),
    )
    record = evaluate(config).record
    assert record["system"]["backend"] == "vllm" and record["runtime"]["dtype"] == "bfloat16"
    assert record["n_samples"] == 3 and vllm.engines[0]["max_lora_rank"] == 8

    as_transformers = record | {"system": record["system"] | {"backend": "transformers"}}
    without_backend = record | {"system": {k: v for k, v in record["system"].items() if k != "backend"}}
    assert results.system_key(record) != results.system_key(as_transformers)
    # Records published before the backend joined the key keep their key
    assert results.system_key(as_transformers) == results.system_key(without_backend)


# ---------------------------------------------------------------------------------------------------------------
# DeepSpeed, FSDP, the LM head, flatten_batches and share_prompt


@pytest.fixture(scope="module")
def sft_setup(tmp_path_factory):
    """A tiny base folder, and parsed SFT arguments for it (the dataset is built here, not read)."""
    base = save_tiny_base(tmp_path_factory.mktemp("sft-base"))
    output_dir = tmp_path_factory.mktemp("sft-out")
    return types.SimpleNamespace(base=base, output_dir=output_dir, tokenizer=load_tokenizer(str(base)))


def sft_arguments(setup, *overrides: str):
    return training.parse_args(tiny_cli_args(str(setup.base), "unused", setup.output_dir, *overrides))


def encoded_rows(setup, share: bool, max_length: int = 256, train: int = 8):
    rows = tiny_tweetsumm(train=train)["train"]
    return training.encode_shared_prompt(rows, prompts.SUMMARIZE, setup.tokenizer, max_length, True, share)


def adapter_trainer(setup, dataset, *overrides: str, model=None):
    script_args, training_args, model_args = sft_arguments(setup, *overrides)
    if model is None:
        return training.build_trainer(script_args, training_args, model_args, dataset, tokenizer=setup.tokenizer)
    training_args.completion_only_loss = True
    return sft_trainer.AdapterSFTTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        processing_class=setup.tokenizer,
        peft_config=training.lora_config(model_args),
    )


def test_end_releases_a_deepspeed_engine_without_error(sft_setup):
    """Finding 2: under DeepSpeed the Trainer holds the engine twice (`model_wrapped` and `deepspeed`); `end()` lets go
    of both, where it used to raise "still referenced" after a good run."""
    trainer = adapter_trainer(sft_setup, encoded_rows(sft_setup, share=True), "--max_steps", "1")

    class EngineLike(torch.nn.Module):  # DeepSpeedEngine is a Module that wraps the model as `.module`
        def __init__(self, module):
            super().__init__()
            self.module = module

    engine = EngineLike(trainer.model)
    trainer.model_wrapped = trainer.deepspeed = engine
    del engine
    trainer.end()
    assert trainer.deepspeed is None and trainer.model_wrapped is trainer.model


class SaveRecorder:
    """A stand-in trainer under FSDP with SHARDED_STATE_DICT: `save_model` records the state dict type it sees and
    writes the adapter only under FULL_STATE_DICT, the condition `transformers.Trainer.save_model` tests."""

    def __init__(self, plugin, model):
        self.plugin, self.model, self.seen = plugin, model, []
        self.is_fsdp_enabled = True
        self.accelerator = types.SimpleNamespace(
            state=types.SimpleNamespace(fsdp_plugin=plugin), unwrap_model=lambda m: m
        )

    def save_model(self, output_dir):
        self.seen.append(str(self.plugin.state_dict_type))
        if "FULL_STATE_DICT" in str(self.plugin.state_dict_type):
            self.model.save_pretrained(output_dir)

    def is_world_process_zero(self):
        return True


def test_fsdp_final_save_switches_to_the_full_state_dict(sft_setup, tmp_path):
    """Finding 1: fsdp_qlora.yaml trains with SHARDED_STATE_DICT; the final save switches to FULL_STATE_DICT first, or
    `Trainer.save_model` writes no adapter (and a save that writes none is an error, not "saved")."""
    from accelerate.utils import FullyShardedDataParallelPlugin
    from peft import LoraConfig, get_peft_model

    config = yaml.safe_load((REPO_ROOT / "models_repo" / "accelerate" / "fsdp_qlora.yaml").read_text())
    assert config["fsdp_config"]["fsdp_state_dict_type"] == "SHARDED_STATE_DICT"
    model = get_peft_model(tiny_llama(sft_setup.tokenizer), LoraConfig(r=4, target_modules="all-linear"))
    plugin = FullyShardedDataParallelPlugin(fsdp_version=1, state_dict_type="SHARDED_STATE_DICT")
    recorder = SaveRecorder(plugin, model)
    training.save_final_adapter(recorder, tmp_path)
    assert recorder.seen == ["StateDictType.FULL_STATE_DICT"]
    assert (tmp_path / training.ADAPTER_WEIGHTS).is_file()

    plugin = FullyShardedDataParallelPlugin(fsdp_version=1, state_dict_type="SHARDED_STATE_DICT")
    recorder = SaveRecorder(plugin, model)
    recorder.save_model = lambda output_dir: None  # a save that writes nothing
    with pytest.raises(RuntimeError, match="adapter was not saved"):
        training.save_final_adapter(recorder, tmp_path / "empty")


def fused_loss(model, batch):
    return model(**batch, fused_lm_head=True).loss


def test_completion_lm_head_gathers_a_sharded_head_as_trl_does(sft_setup, monkeypatch, unused_tcp_port):
    """Finding 8: a head sharded as a DTensor (FSDP2) is gathered, and the ZeRO-3 gather context wraps the kernel."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor
    from trl.trainer.utils import add_fused_lm_head

    torch.manual_seed(0)
    model = tiny_llama(sft_setup.tokenizer)
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
    add_fused_lm_head(model)
    sft_trainer.restrict_lm_head_to_labels(model)
    input_ids = torch.randint(4, len(sft_setup.tokenizer), (2, 12))
    labels = input_ids.clone()
    labels[:, :6] = -100
    batch = {"input_ids": input_ids, "labels": labels}
    expected = fused_loss(model, batch)

    gathered = []

    @contextlib.contextmanager
    def record_gather(*params):
        gathered.append(params)
        yield

    monkeypatch.setattr(sft_trainer, "maybe_gather_lm_head_ctx", record_gather)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{unused_tcp_port}", rank=0, world_size=1)
    try:
        mesh = init_device_mesh("cpu", (1,))
        model.lm_head.weight = torch.nn.Parameter(distribute_tensor(model.lm_head.weight.detach(), mesh, [Shard(0)]))
        sharded = fused_loss(model, batch)
    finally:
        dist.destroy_process_group()
    torch.testing.assert_close(sharded, expected)
    (params,) = gathered
    assert params[1] is None and params[0].shape == model.lm_head.weight.shape  # the full weight, the (absent) bias


@pytest.fixture
def unused_tcp_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_flatten_batches_keeps_flash_attention_and_its_varlen_kernel(sft_setup):
    """Finding 9: with flash-attention, flatten_batches keeps it (its varlen kernel reads `cu_seq_lens_q`) instead of
    swapping in the per-sequence sdpa loop; shared-prompt sequences, which only that loop masks, are refused."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    plain = encoded_rows(sft_setup, share=False)
    shared = encoded_rows(sft_setup, share=True)
    assert any(len(lengths) > 1 for lengths in shared[sft_trainer.SEGMENT_LENGTHS])

    model = tiny_llama(sft_setup.tokenizer)
    model.config._attn_implementation = "flash_attention_2"  # flash-attn is not installed here: nothing runs it
    trainer = adapter_trainer(sft_setup, plain, "--flatten_batches", "true", model=model)
    assert trainer.model.get_base_model().config._attn_implementation == "flash_attention_2"
    assert isinstance(trainer.data_collator, DataCollatorForLanguageModeling) and trainer.data_collator.padding_free
    first, second = (len(plain[index]["input_ids"]) for index in (0, 1))
    assert trainer.data_collator([plain[0], plain[1]])["cu_seq_lens_q"].tolist() == [0, first, first + second]

    model = tiny_llama(sft_setup.tokenizer)
    model.config._attn_implementation = "flash_attention_2"
    with pytest.raises(ValueError, match="Shared-prompt sequences"):
        adapter_trainer(sft_setup, shared, "--flatten_batches", "true", model=model)

    trainer = adapter_trainer(sft_setup, shared, "--flatten_batches", "true", model=tiny_llama(sft_setup.tokenizer))
    assert trainer.model.get_base_model().config._attn_implementation == sft_trainer.VARLEN_SDPA


def test_share_prompt_fits_dialogs_without_flatten_batches(sft_setup):
    """Finding 7: flatten_batches false (the GPU recipes) keeps share_prompt's fitting: a long dialog loses middle
    turns, never its summary; the sequences are plain (one completion each) and batch with padding."""
    long_rows = tiny_tweetsumm(train=8)["train"]
    tokenizer = sft_setup.tokenizer
    prompt_lengths = [
        len(tokenizer(prompts.render_prompt(tokenizer, prompts.summarize_messages(row["dialogue"])))["input_ids"])
        for row in long_rows
    ]
    max_length = min(prompt_lengths) + 12  # some prompts with their summary do not fit
    plain = training.encode_shared_prompt(long_rows, prompts.SUMMARIZE, sft_setup.tokenizer, max_length, True, False)
    assert all(len(lengths) == 1 for lengths in plain[sft_trainer.SEGMENT_LENGTHS])
    assert len(plain) == sum(len(row["summaries"]) for row in long_rows)  # one sequence per summary
    assert any(plain["cut_turns"]) and all(len(ids) <= max_length for ids in plain["input_ids"])
    for ids, labels in zip(plain["input_ids"], plain["labels"], strict=True):
        completion = [token for token in labels if token != -100]
        assert completion and ids[-len(completion) :] == completion  # the summary whole, at the end

    trainer = adapter_trainer(sft_setup, plain, "--flatten_batches", "false", "--max_length", str(max_length))
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["input_ids"].shape[0] == 4 and "cu_seq_lens_q" not in batch  # padded rows, trl's collator
    assert trainer.model.get_base_model().config._attn_implementation != sft_trainer.VARLEN_SDPA

    with pytest.raises(ValueError, match="a generate target is never cut"):
        training.encode_shared_prompt(long_rows, prompts.GENERATE, sft_setup.tokenizer, 32, True, False)


def test_load_sft_splits_fits_dialogs_whatever_the_batching(tiny_hub, sft_setup):  # noqa: F811
    """Finding 7, the recipe path: share_prompt encodes (fits) the rows with flatten_batches false too, one sequence
    per summary; shared-prompt sequences only for flatten_batches with this module's attention."""
    segments = sft_trainer.SEGMENT_LENGTHS

    def train_split(*overrides: str, attention: str = "sdpa"):
        script_args, training_args, _ = training.parse_args(
            tiny_cli_args(str(sft_setup.base), tiny_hub.dataset, sft_setup.output_dir, "--dataset_revision", TAG,
                          "--all_summaries", "true", *overrides)
        )  # fmt: skip
        return training.load_sft_splits(script_args, training_args, sft_setup.tokenizer, attention)[0]

    summaries = sum(len(row["summaries"]) for row in tiny_tweetsumm()["train"])
    padded = train_split("--flatten_batches", "false")
    flash = train_split("--flatten_batches", "true", attention="flash_attention_2")
    for split in (padded, flash):
        assert segments in split.column_names and len(split) == summaries
        assert all(len(lengths) == 1 for lengths in split[segments])
    shared = train_split("--flatten_batches", "true")
    assert len(shared) == len(tiny_tweetsumm()["train"]) < summaries
    assert "prompt" in train_split("--share_prompt", "false").column_names  # trl's own rows: trl tokenizes


# ---------------------------------------------------------------------------------------------------------------
# GRPO: the vLLM guard and the ZeRO-3 save


def test_grpo_refuses_vllm_with_a_quantized_base_before_loading(tiny_hub, tmp_path):  # noqa: F811
    """Finding 6: trl's vLLM weight sync cannot send merged 4-bit layers (huggingface/trl#4973)."""
    script_args, training_args, model_args = grpo_args(
        tiny_hub, tmp_path, "--use_vllm", "true", "--load_in_4bit", "true"
    )
    with pytest.raises(ValueError, match="trl#4973"):
        reward_tuning.build_trainer(script_args, training_args, model_args, train_dataset=None)


def test_grpo_adapter_save_gathers_zero3_partitions(tmp_path):
    """Finding 6: under ZeRO-3 the unwrapped model's parameters are empty partitions; the adapter is saved from the
    engine's gathered state dict (trainable parameters only, as `Trainer.save_model` gathers), by the main process."""
    from peft import LoraConfig, get_peft_model

    tokenizer = tiny_tokenizer()
    model = get_peft_model(
        tiny_llama(tokenizer), LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False)
    )
    full = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    asked = []

    class Zero3EngineLike:
        def _zero3_consolidated_16bit_state_dict(self, exclude_frozen_parameters=False):
            asked.append(exclude_frozen_parameters)
            return {name: tensor for name, tensor in full.items() if "lora_" in name}

    for name, parameter in model.named_parameters():
        if "lora_" in name:
            parameter.data = torch.empty(0)  # what ZeRO-3 leaves outside its gather
    trainer = types.SimpleNamespace(
        model=model,
        model_wrapped=Zero3EngineLike(),
        is_deepspeed_enabled=True,
        accelerator=types.SimpleNamespace(
            deepspeed_config={"zero_optimization": {"stage": 3}}, unwrap_model=lambda module: module
        ),
        args=types.SimpleNamespace(should_save=True),
    )
    reward_tuning.save_adapter(trainer, tokenizer, tmp_path)
    saved = load_file(tmp_path / "adapter_model.safetensors")
    lora = {name: tensor for name, tensor in full.items() if "lora_" in name}
    assert asked == [True] and saved and len(saved) == len(lora)
    assert all(tensor.numel() > 0 for tensor in saved.values())
    assert sorted(tensor.shape for tensor in saved.values()) == sorted(tensor.shape for tensor in lora.values())

    trainer.args.should_save = False  # another rank: joins the gather, writes nothing
    reward_tuning.save_adapter(trainer, tokenizer, tmp_path / "rank-1")
    assert asked == [True, True] and not (tmp_path / "rank-1").exists()


# ---------------------------------------------------------------------------------------------------------------
# QLoRA for real on CPU (bitsandbytes 4-bit layers)


def linear_4bit_count(model) -> int:
    import bitsandbytes as bnb

    return sum(isinstance(module, bnb.nn.Linear4bit) for module in model.modules())


def test_qlora_sft_adapter_reloads_on_a_4bit_base_and_generates(tiny_hub, tmp_path):  # noqa: F811
    """Train 2 steps on a 4-bit NF4 base (double quantization, as the GPU recipes), then reload the adapter on a
    4-bit base with the generator, unmerged, and generate."""
    script_args, training_args, model_args = training.parse_args(
        tiny_cli_args(
            tiny_hub.base, tiny_hub.dataset, tmp_path, "--model_revision", TAG, "--dataset_revision", TAG,
            "--max_steps", "2", "--load_in_4bit", "true", "--bnb_4bit_quant_type", "nf4",
            "--use_bnb_nested_quant", "true", "--dtype", "bfloat16",
        )
    )  # fmt: skip
    trainer = training.train(script_args, training_args, model_args)
    assert linear_4bit_count(trainer.model) > 0
    assert (tmp_path / training.ADAPTER_WEIGHTS).is_file()

    generator = load_generator(f"{tiny_hub.base}@{TAG}", str(tmp_path), backend="transformers", load_in_4bit=True)
    assert linear_4bit_count(generator.model) > 0 and not generator.adapter_merged
    assert generator.dtype in ("bfloat16", "float32")
    conversations = [prompts.summarize_messages(row["dialogue"]) for row in tiny_tweetsumm()["test"].select(range(2))]
    completions = generator.generate(conversations, GenerationSettings(max_new_tokens=6, batch_size=2), progress=False)
    assert len(completions) == 2 and all(completion.new_tokens > 0 for completion in completions)


def test_qlora_grpo_steps_on_a_4bit_base(tiny_hub, tmp_path):  # noqa: F811
    """GRPO with load_in_4bit: the policy is 4-bit (it used to be loaded in full precision, the flag ignored), two
    steps train the SFT adapter only, and the saved adapter loads on a 4-bit base."""
    script_args, training_args, model_args = grpo_args(
        tiny_hub, tmp_path, "--load_in_4bit", "true", "--bnb_4bit_quant_type", "nf4", "--dtype", "bfloat16"
    )
    trainer = reward_tuning.train(script_args, training_args, model_args)
    model = trainer.accelerator.unwrap_model(trainer.model)
    assert linear_4bit_count(model) > 0
    assert trainer.state.global_step == 2
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    saved = load_file(tmp_path / "adapter_model.safetensors")
    assert saved and not any(".ref." in name for name in saved)

    generator = load_generator(f"{tiny_hub.base}@{TAG}", str(tmp_path), backend="transformers", load_in_4bit=True)
    completions = generator.generate(
        [prompts.summarize_messages(tiny_tweetsumm()["test"][0]["dialogue"])],
        GenerationSettings(max_new_tokens=6),
        progress=False,
    )
    assert completions[0].new_tokens > 0


def test_gpu_grpo_recipe_is_qlora_from_the_gpu_sft_release_without_vllm():
    """The GPU GRPO recipe: the 4-bit configs of the GPU SFT recipe, its release as the policy, transformers
    generation (trl cannot sync a 4-bit policy into vLLM), and reward_tune's guard agrees."""
    from trl import get_quantization_config

    sft = yaml.safe_load((REPO_ROOT / "models_repo" / "summarizer-lora" / "recipe-gpu.yaml").read_text())
    script_args, training_args, model_args = reward_tuning.parse_args(
        ["--config", str(REPO_ROOT / "models_repo" / "summarizer-grpo-lora" / "recipe-gpu.yaml"), "--use_cpu", "true"]
    )
    assert script_args.sft_adapter == f"{sft['hub_model_id']}@{sft['release_tag']}"
    quantization = get_quantization_config(model_args)
    assert quantization.load_in_4bit and quantization.bnb_4bit_quant_type == "nf4"
    assert quantization.bnb_4bit_use_double_quant and quantization.bnb_4bit_compute_dtype == torch.bfloat16
    assert quantization.bnb_4bit_quant_storage == torch.bfloat16
    assert training_args.bf16 and training_args.activation_checkpointing and not training_args.use_vllm
    assert training_args.reward_weights and len(training_args.reward_weights) == len(script_args.rewards)


def test_gpu_smoke_answers_help_and_refuses_to_run_without_cuda():
    """benchmarks/gpu_smoke.py: --help lists its checks and packages; on a machine without CUDA it stops with a clear
    error and a non-zero code, never falling back to the CPU."""
    script = REPO_ROOT / "benchmarks" / "gpu_smoke.py"
    shown = processes.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "matmul_4bit" in shown.stdout and "pip install vllm" in shown.stdout
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device: run the smoke test itself")
    refused = processes.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert refused.returncode != 0 and "no CUDA device" in refused.stderr
    assert not (REPO_ROOT / "gpu_smoke_report.json").exists()
