"""The adapter model card: rendered from models_repo/<adapter>/README.md.j2 with a real run's training_summary.json,
its YAML read back by huggingface_hub, and published with scripts/push_adapter.py."""

import json
import sys
from pathlib import Path

import pytest
from huggingface_hub import ModelCard, hf_hub_download
from huggingface_hub.repocard_data import model_index_to_eval_results

from dialoghub.core import processes
from dialoghub.core.paths import REPO_ROOT
from dialoghub.models import prompts
from dialoghub.sft import card as cards
from dialoghub.sft import training
from tests.card_code import run_quick_start
from tests.tiny_models import another_adapter, save_tiny_base, tiny_run_args, tiny_tweetsumm

TAG = "v1.0"


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """The tiny dataset as parquet files, which load_dataset reads from a folder like it reads a Hub repo."""
    folder = tmp_path_factory.mktemp("tiny-tweetsumm")
    for split, rows in tiny_tweetsumm().items():
        (folder / "data").mkdir(exist_ok=True)
        rows.to_parquet(folder / "data" / f"{split}-00000-of-00001.parquet")
    return folder


@pytest.fixture(scope="module", params=prompts.TASKS)
def run_dir(request, tmp_path_factory, dataset_dir):
    """A two-step run of each task; its output folder holds the adapter and training_summary.json."""
    base = save_tiny_base(tmp_path_factory.mktemp("base"))
    output_dir = tmp_path_factory.mktemp(request.param)
    arguments = tiny_run_args(
        str(base), str(dataset_dir), output_dir, "--task", request.param, "--max_steps", "2", "--max_eval_samples", "3"
    )
    training.train(*arguments)
    return output_dir


def test_card_yaml_loads_with_huggingface_hub(run_dir):
    summary = cards.read_summary(run_dir)
    card = ModelCard(str(cards.adapter_card(summary, "org/some-adapter", TAG)))
    data = card.data
    assert data.base_model == summary["base_model"]
    assert (data.library_name, data.pipeline_tag, data.license) == ("peft", "text-generation", "apache-2.0")
    assert {"lora", "peft", "trl", "sft", cards.TASK_TAGS[summary["task"]]} <= set(data.tags)
    assert data.datasets == [summary["dataset"]]
    assert data.inference == {
        "parameters": {"max_new_tokens": prompts.ANSWER_MAX_NEW_TOKENS[summary["task"]], "do_sample": False}
    }
    # The quick-start decodes at the same answer length as the inference widget
    assert f"max_new_tokens={prompts.ANSWER_MAX_NEW_TOKENS[summary['task']]}," in card.text
    validation_dialog = tiny_tweetsumm()["validation"][0]
    assert data.widget == [
        {
            "example_title": validation_dialog["conversation_id"],
            "messages": prompts.prompt_messages(summary["task"], validation_dialog),
        }
    ]


def test_model_index_parses_into_eval_results(run_dir):
    summary = cards.read_summary(run_dir)
    card = ModelCard(str(cards.adapter_card(summary, "org/some-adapter", TAG)))
    model_name, results = model_index_to_eval_results(card.data.to_dict()["model-index"])
    assert model_name == "some-adapter"
    by_metric = {result.metric_type: result for result in results}
    assert by_metric.keys() == {"loss", "perplexity"}
    assert by_metric["loss"].metric_value == pytest.approx(summary["eval_loss"])
    assert by_metric["perplexity"].metric_value == pytest.approx(summary["perplexity"])
    assert by_metric["loss"].dataset_split == "validation"


def test_card_body_documents_the_run(run_dir):
    summary = cards.read_summary(run_dir)
    body = ModelCard(str(cards.adapter_card(summary, "org/some-adapter", TAG))).text
    assert f'PeftModel.from_pretrained(base, "org/some-adapter", revision="{TAG}")' in body
    assert f'from_pretrained("{summary["base_model"]}", revision=' in body
    assert "![Training and validation loss](loss_curve.png)" in body
    for name, value in summary["hyperparameters"].items():
        assert f"| `{name}` | {value} |" in body
    for name, version in summary["framework_versions"].items():
        assert f"{name} {version}" in body
    assert f"loss\n{summary['eval_loss']:.4f}" in body


def test_the_published_cards_quick_start_runs(run_dir, hub_api, repo_name):
    cards.push_adapter(run_dir, repo_name, TAG, api=hub_api)
    card = Path(hub_api.hf_hub_download(repo_name, "README.md", revision=TAG)).read_text(encoding="utf-8")
    quick_start = run_quick_start(card)
    if cards.read_summary(run_dir)["task"] == prompts.GENERATE:
        # Two training steps on a random tiny model write no dialogue: the code ran up to parsing what it wrote.
        last_line = quick_start.stderr.strip().splitlines()[-1] if quick_start.returncode else ""
        assert quick_start.returncode == 0 or last_line.startswith("dialoghub.models.prompts.PromptFormatError"), (
            quick_start.stderr[-3000:]
        )
    else:
        assert quick_start.returncode == 0, quick_start.stderr[-3000:]
        assert quick_start.stdout.endswith("\n"), "the quick start prints the summary"


def test_push_adapter_script_publishes_a_tagged_release(run_dir, hub, hub_api, repo_name, tmp_path):
    recipe = REPO_ROOT / "models_repo" / "summarizer-lora" / "recipe.yaml"
    command = [sys.executable, str(REPO_ROOT / "scripts" / "push_adapter.py"), "--config", str(recipe),
               "--hub_model_id", repo_name, "--release_tag", TAG, "--output_dir", str(run_dir)]  # fmt: skip
    result = processes.run(command, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    files = set(hub_api.list_repo_files(repo_name, revision=TAG))
    assert {"README.md", "adapter_config.json", "adapter_model.safetensors", "loss_curve.png"} <= files
    card = ModelCard.load(hf_hub_download(repo_name, "README.md", revision=TAG))
    summary = json.loads((run_dir / cards.SUMMARY_FILE).read_text())
    assert card.data.tags and cards.TASK_TAGS[summary["task"]] in card.data.tags

    commits = len(hub_api.list_repo_commits(repo_name))
    again = processes.run(command, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert again.returncode == 0 and f"{repo_name}@{TAG} = " in again.stdout and "(already there)" in again.stdout
    assert len(hub_api.list_repo_commits(repo_name)) == commits

    other = another_adapter(run_dir, tmp_path / "other")
    refused = processes.run([*command[:-1], str(other)], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert refused.returncode != 0 and "already has a release v1.0" in refused.stderr
    assert len(hub_api.list_repo_commits(repo_name)) == commits
