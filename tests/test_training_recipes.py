"""The recipes and accelerate configs parse into trl's dataclasses and build their quantization and LoRA configs."""

import pytest
import torch
from trl import get_quantization_config

from dialoghub.core.paths import REPO_ROOT
from dialoghub.models import prompts
from dialoghub.sft.training import ALL_LINEAR, AdapterScriptArguments, AdapterSFTConfig, lora_config, parse_args

ADAPTERS = {"summarizer-lora": prompts.SUMMARIZE, "dialogue-generator-lora": prompts.GENERATE}
MODELS_REPO = REPO_ROOT / "models_repo"


@pytest.mark.parametrize(("adapter", "task"), ADAPTERS.items())
def test_cpu_recipe_defaults_to_the_offline_base_and_can_be_overridden(adapter, task):
    recipe = str(MODELS_REPO / adapter / "recipe.yaml")
    script_args, training_args, model_args = parse_args(["--config", recipe])
    assert isinstance(script_args, AdapterScriptArguments) and isinstance(training_args, AdapterSFTConfig)
    assert script_args.task == task
    assert (script_args.dataset_name, script_args.dataset_config) == ("org/tweetsumm-clean", "default")
    assert script_args.dataset_revision and model_args.model_revision
    assert model_args.model_name_or_path == "dialoghub/SmolLM2-135M-Instruct-q4_1"
    # The generator's target is the dialogue: its max_length holds the longest training dialog whole
    assert training_args.use_cpu and not training_args.bf16
    assert training_args.max_length == {prompts.SUMMARIZE: 512, prompts.GENERATE: 896}[task]
    assert model_args.dtype == "auto" and training_args.share_prompt
    assert training_args.completion_logits_only and training_args.flatten_batches
    assert training_args.report_to == ["trackio"]
    assert training_args.hub_model_id == f"org/{adapter}"
    assert get_quantization_config(model_args) is None
    assert lora_config(model_args).target_modules == ALL_LINEAR

    script_args, training_args, model_args = parse_args(
        ["--config", recipe, "--max_steps", "3", "--lora_r", "4", "--full_data", "true", "--report_to", "none"]
    )
    assert training_args.max_steps == 3 and model_args.lora_r == 4 and script_args.full_data
    assert training_args.report_to == []


def test_unknown_recipe_fields_are_rejected(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("task: summarize\nbf16: false\nuse_cpu: true\nlora_rank: 8\n")
    with pytest.raises(ValueError, match="lora_rank"):
        parse_args(["--config", str(recipe), "--output_dir", str(tmp_path)])


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_gpu_recipe_builds_qlora_configs_on_cpu(adapter):
    # TrainingArguments refuses bf16 on a machine without a GPU unless told to use the CPU; nothing else changes.
    script_args, training_args, model_args = parse_args(
        ["--config", str(MODELS_REPO / adapter / "recipe-gpu.yaml"), "--use_cpu", "true"]
    )
    assert model_args.model_name_or_path == "meta-llama/Llama-3.1-8B-Instruct"
    assert training_args.bf16 and training_args.activation_checkpointing and script_args.all_summaries

    quantization = get_quantization_config(model_args)
    assert quantization.load_in_4bit and quantization.bnb_4bit_quant_type == "nf4"
    assert quantization.bnb_4bit_use_double_quant
    assert quantization.bnb_4bit_compute_dtype == torch.bfloat16
    assert quantization.bnb_4bit_quant_storage == torch.bfloat16

    lora = lora_config(model_args)
    assert (lora.r, lora.lora_alpha, lora.target_modules, lora.task_type) == (16, 32, ALL_LINEAR, "CAUSAL_LM")
    assert lora.revision == model_args.model_revision


@pytest.mark.parametrize(
    ("name", "distributed_type"),
    [("ddp_cpu.yaml", "MULTI_GPU"), ("fsdp_qlora.yaml", "FSDP"), ("deepspeed_zero3_qlora.yaml", "DEEPSPEED")],
)
def test_accelerate_configs_load(name, distributed_type):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(MODELS_REPO / "accelerate" / name))
    assert config.distributed_type == distributed_type and config.num_processes == 2
    if distributed_type == "DEEPSPEED":
        assert config.deepspeed_config["zero_stage"] == 3
    if distributed_type == "FSDP":
        assert config.fsdp_config["fsdp_sharding_strategy"] == "FULL_SHARD"
