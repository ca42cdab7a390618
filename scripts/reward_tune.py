"""Reward-tune the summarizer adapter with trl's GRPOTrainer (relevance, non-toxicity and format rewards), from a
recipe and CLI overrides.

python scripts/reward_tune.py --config models_repo/summarizer-grpo-lora/recipe.yaml [--max_steps 4 ...]
python scripts/reward_tune.py --config models_repo/summarizer-grpo-lora/recipe.yaml --full_data true   # full budget
python scripts/reward_tune.py --config models_repo/summarizer-grpo-lora/recipe.yaml --push true        # and publish
python scripts/reward_tune.py --config models_repo/summarizer-grpo-lora/recipe.yaml --refresh_card true

Every field of RewardScriptArguments, trl's GRPOConfig and trl's ModelConfig is a flag; see --help. The output
directory receives the adapter, the tokenizer, reward_curve.png and training_summary.json. `--refresh_card true`
trains nothing: it re-renders the released adapter's card from the leaderboard's records (after the eval rows).
"""

import dialoghub.core.hubenv  # noqa: F401

import logging
import os
import sys

# Spinning OpenMP threads steal the core another process needs (see scripts/train_adapter.py); read when torch loads
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from dialoghub.core.recipes import configure_logging  # noqa: E402
from dialoghub.evaluation.before_after import refresh_card  # noqa: E402
from dialoghub.hub.client import hub_session  # noqa: E402
from dialoghub.reward.card import push_reward_adapter  # noqa: E402
from dialoghub.reward.training import parse_args, train  # noqa: E402
from dialoghub.sft.card import train_and_release  # noqa: E402


def main(script_args, training_args, model_args) -> None:
    if script_args.refresh_card:
        with hub_session():
            commit = refresh_card(training_args.hub_model_id, script_args.release_tag, script_args.results_repo)
        print(f"{training_args.hub_model_id}: card refreshed at {commit}")
        return
    train_and_release(
        train,
        push_reward_adapter,
        script_args,
        training_args,
        model_args,
        saved="Adapter, tokenizer, reward curve and summary",
    )


if __name__ == "__main__":
    configure_logging(logging.INFO)
    try:
        main(*parse_args(description=__doc__))
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"reward_tune: {error}")
