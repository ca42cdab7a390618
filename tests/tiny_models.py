"""Tiny, offline stand-ins for the training tests: a BPE tokenizer trained here, a random Llama, a tweetsumm-like
DatasetDict. Nothing is downloaded; everything takes well under a second to build."""

from __future__ import annotations

import random
from pathlib import Path

from datasets import Dataset, DatasetDict

from dialoghub.models import prompts

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_PRODUCTS = ["phone", "watch", "laptop", "router", "order", "flight", "account", "card", "parcel", "ticket"]
_PROBLEMS = ["is broken", "did not arrive", "was charged twice", "is locked", "keeps crashing", "is late"]
_FIXES = ["reset it", "send a refund", "check the tracking", "unlock it", "rebook it", "send a new one"]


def tiny_dialogue(rng: random.Random) -> tuple[list[dict], list[str]]:
    product, problem, fix = rng.choice(_PRODUCTS), rng.choice(_PROBLEMS), rng.choice(_FIXES)
    dialogue = [
        {"role": "Customer", "text": f"Hi, my {product} {problem}. Can you help?"},
        {"role": "Agent", "text": f"Sorry to hear that. We can {fix} for you. Please DM us."},
    ]
    if rng.random() < 0.5:
        dialogue += [
            {"role": "Customer", "text": f"Thanks, I sent a DM about the {product}."},
            {"role": "Agent", "text": "Got it, we will reply there."},
        ]
    summaries = [f"The customer's {product} {problem}. The agent offered to {fix}."]
    if rng.random() < 0.5:
        summaries.append(f"Customer reports the {product} {problem}; agent will {fix}.")
    return dialogue, summaries


def tiny_tweetsumm(train: int = 24, validation: int = 6, test: int = 6, seed: int = 0) -> DatasetDict:
    """A DatasetDict in the tweetsumm-clean schema (the fields training reads)."""
    rng = random.Random(seed)

    def split(name: str, count: int) -> Dataset:
        rows = []
        for index in range(count):
            dialogue, summaries = tiny_dialogue(rng)
            rows.append({"conversation_id": f"{name}-{index}", "dialogue": dialogue, "summaries": summaries})
        return Dataset.from_list(rows)

    return DatasetDict(
        {"train": split("train", train), "validation": split("validation", validation), "test": split("test", test)}
    )


def tiny_tokenizer(vocab_size: int = 400):
    """A byte-level BPE (like SmolLM2's) trained on the prompts of the tiny dataset, without a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = []
    for rows in tiny_tweetsumm().values():
        for example in rows:
            for task in prompts.TASKS:
                pair = prompts.prompt_completion(task, example)
                corpus += [message["content"] for message in pair["prompt"] + pair["completion"]]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=SPECIAL_TOKENS,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token="<|im_start|>"
    )


def tiny_llama(tokenizer, seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,  # bitsandbytes packs 4-bit weights for CPU inference in blocks of 64 input features
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        # Wide enough embeddings that the frozen (tied) LM head can express a peaked distribution: with the usual
        # 0.02 the logits stay near zero whatever LoRA does, and the loss cannot fall below log(vocabulary).
        initializer_range=0.3,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config)


def save_tiny_base(folder: Path, with_chat_template: bool = True) -> Path:
    """Tokenizer (with our fallback ChatML template unless told otherwise) and random Llama, saved to `folder`."""
    tokenizer = tiny_tokenizer()
    if with_chat_template:
        prompts.ensure_chat_template(tokenizer)
    tiny_llama(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_cli_args(model: str, dataset: str, output_dir: Path, *overrides: str) -> list[str]:
    """Flags of scripts/train_adapter.py for a few CPU steps on the tiny model; `overrides` win."""
    return [
        "--model_name_or_path", model,
        "--dataset_name", dataset,
        "--dataset_test_split", "validation",
        "--output_dir", str(output_dir),
        "--use_cpu", "true",
        "--bf16", "false",
        "--activation_checkpointing", "false",
        "--max_length", "256",
        "--per_device_train_batch_size", "4",
        "--per_device_eval_batch_size", "4",
        "--learning_rate", "5e-3",
        "--lr_scheduler_type", "constant",
        "--max_steps", "6",
        "--logging_steps", "1",
        "--eval_strategy", "no",
        "--save_strategy", "no",
        "--report_to", "none",
        "--disable_tqdm", "true",
        "--dataloader_num_workers", "0",
        "--use_peft", "true",
        "--lora_r", "8",
        "--lora_alpha", "16",
        "--lora_dropout", "0.0",
        "--lora_target_modules", "all-linear",
        "--seed", "0",
        *overrides,
    ]  # fmt: skip


def tiny_run_args(model: str, dataset: str, output_dir: Path, *overrides: str):
    """(script_args, training_args, model_args) for `tiny_cli_args`, through the script's parser."""
    from dialoghub.sft.training import parse_args

    return parse_args(tiny_cli_args(model, dataset, output_dir, *overrides))


def another_adapter(adapter_dir: Path, folder: Path) -> Path:
    """A copy of a trained adapter folder with different LoRA weights: another release candidate of the same run."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(adapter_dir, folder)
    weights = load_file(folder / "adapter_model.safetensors")
    name = sorted(weights)[0]
    weights[name] = weights[name] + 1.0
    save_file(weights, folder / "adapter_model.safetensors")
    return folder


def publish_tiny_base_and_adapter(api, base_id: str, adapter_id: str, folder: Path) -> str:
    """The tiny base (`save_tiny_base`) and a LoRA adapter on it (r=4 on q_proj, seed 0) naming it as its base, both
    published; returns the adapter's commit."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base_dir = save_tiny_base(folder / "base")
    api.create_repo(base_id, exist_ok=True)
    api.upload_folder(folder_path=base_dir, repo_id=base_id)
    torch.manual_seed(0)
    adapter = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base_dir), LoraConfig(r=4, target_modules=["q_proj"])
    )
    adapter.peft_config["default"].base_model_name_or_path = base_id
    adapter.save_pretrained(folder / "adapter")
    api.create_repo(adapter_id, exist_ok=True)
    return api.upload_folder(folder_path=folder / "adapter", repo_id=adapter_id).oid
