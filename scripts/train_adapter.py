"""Train a LoRA adapter (summarizer or dialogue generator) with trl's SFTTrainer, from a recipe and CLI overrides.

python scripts/train_adapter.py --config models_repo/summarizer-lora/recipe.yaml [--max_steps 20 ...]
python scripts/train_adapter.py --config models_repo/summarizer-lora/recipe.yaml --resume true   # after a stop
python scripts/train_adapter.py --config models_repo/summarizer-lora/recipe.yaml --push true     # and publish
accelerate launch --config_file models_repo/accelerate/ddp_cpu.yaml scripts/train_adapter.py --config ...
accelerate launch --config_file models_repo/accelerate/fsdp_qlora.yaml scripts/train_adapter.py \
    --config models_repo/summarizer-lora/recipe-gpu.yaml

Every field of AdapterScriptArguments, AdapterSFTConfig (trl's SFTConfig) and trl's ModelConfig is a flag; see
--help. The output directory receives the adapter, the tokenizer, loss_curve.png and training_summary.json.
"""

import dialoghub.core.hubenv  # noqa: F401

import logging
import os
import sys

# OpenMP threads that wait for work by spinning burn the core another process needs: on a shared 2-core machine a
# forward pass measured 3x slower than with waiting threads asleep. Read when torch loads, so set before importing it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from dialoghub.core.recipes import configure_logging  # noqa: E402
from dialoghub.sft.card import push_adapter, train_and_release  # noqa: E402
from dialoghub.sft.training import parse_args, train  # noqa: E402


def main(script_args, training_args, model_args):
    train_and_release(
        train, push_adapter, script_args, training_args, model_args, saved="Adapter, tokenizer, loss curve and summary"
    )


if __name__ == "__main__":
    configure_logging(logging.INFO)
    try:
        main(*parse_args(description=__doc__))
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"train_adapter: {error}")
