"""The leaderboard against the real embedded Hub: a tiny random Llama, LoRA adapters at two revisions, a tiny
tweetsumm-like dataset and a tiny sentence-transformers model, all published to the test Hub."""

import dataclasses
import importlib.metadata
import json
import sys
import types
import uuid

import pandas as pd
import pytest
import torch
from huggingface_hub import DatasetCard, EvalResult, HfApi, ModelCard, ModelCardData, hf_hub_download
from huggingface_hub.repocard_data import model_index_to_eval_results

from dialoghub.core import processes
from dialoghub.core.paths import REPO_ROOT
from dialoghub.core.recipes import resolve_dtype
from dialoghub.evaluation import leaderboard, model_card, provenance, results
from dialoghub.evaluation.run import EvaluationConfig, evaluate
from dialoghub.models.generation import GenerationSettings
from evaluation import leaderboard as leaderboard_cli
from tests.card_code import run_quick_start
from tests.test_metrics_models import bert_tokenizer, tiny_sentence_transformer  # noqa: F401 (fixtures)
from tests.tiny_models import save_tiny_base, tiny_tweetsumm

RECIPE = REPO_ROOT / "evaluation" / "recipes" / "leaderboard.yaml"
SETTINGS = GenerationSettings(max_new_tokens=12, batch_size=4)
TRAINING_RESULT = EvalResult(
    task_type="text-generation",
    task_name="summarization",
    dataset_type="tests/tiny-tweetsumm",
    dataset_name="tiny-tweetsumm",
    dataset_split="validation",
    metric_type="loss",
    metric_name="Validation loss",
    metric_value=2.5,
)


def lora_adapter(base_id: str, folder, seed: int):
    """A LoRA adapter with random (not zero) weights on the tiny base, saved to `folder`."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(base_id, revision="v1.0")
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(folder)
    return folder


def publish_tiny_world(api, ids, tmp_path_factory, embedder_folder) -> None:
    """A tiny base model and a 2/2/6-dialog dataset (both tagged v1.0) and a tiny embedder, at `ids`' repo ids."""
    api.create_repo(ids.base)
    api.upload_folder(repo_id=ids.base, folder_path=save_tiny_base(tmp_path_factory.mktemp("base")))
    api.create_tag(ids.base, tag="v1.0")
    tiny_tweetsumm(train=2, validation=2, test=6).push_to_hub(ids.dataset)
    api.create_tag(ids.dataset, tag="v1.0", repo_type="dataset")
    api.create_repo(ids.embedder)
    api.upload_folder(repo_id=ids.embedder, folder_path=embedder_folder)


@pytest.fixture(scope="module")
def world(hub, tmp_path_factory, tiny_sentence_transformer):  # noqa: F811
    """Base model (tag v1.0), dataset (tag v1.0), embedding model, and an adapter tagged v1.0 then v2.0."""
    api = HfApi(endpoint=hub.endpoint)
    suffix = uuid.uuid4().hex[:8]
    ids = types.SimpleNamespace(
        api=api,
        base=f"tests/lb-base-{suffix}",
        dataset=f"tests/lb-tweetsumm-{suffix}",
        embedder=f"tests/lb-embedder-{suffix}",
        adapter=f"tests/lb-adapter-{suffix}",
    )
    publish_tiny_world(api, ids, tmp_path_factory, tiny_sentence_transformer)

    api.create_repo(ids.adapter)
    ModelCard.from_template(ModelCardData(model_name="lb-adapter", eval_results=[TRAINING_RESULT])).push_to_hub(
        ids.adapter
    )
    for seed, tag in ((0, "v1.0"), (1, "v2.0")):
        folder = lora_adapter(ids.base, tmp_path_factory.mktemp(f"adapter-{tag}"), seed)
        api.upload_folder(
            repo_id=ids.adapter, folder_path=folder, allow_patterns=["adapter_*"], commit_message=f"adapter {tag}"
        )
        api.create_tag(ids.adapter, tag=tag)
    ids.sha = {
        "base": api.model_info(ids.base, revision="v1.0").sha,
        "dataset": api.dataset_info(ids.dataset, revision="v1.0").sha,
        "embedder": api.model_info(ids.embedder).sha,
        "v1.0": api.model_info(ids.adapter, revision="v1.0").sha,
        "v2.0": api.model_info(ids.adapter, revision="v2.0").sha,
    }
    return ids


def common(world, **overrides) -> EvaluationConfig:
    """The test world's evaluation config: its dataset and embedder, a short bootstrap and SETTINGS' decoding."""
    values = {
        "dataset": f"{world.dataset}@v1.0",
        "embedding_model": world.embedder,
        "n_bootstrap": 100,
        "progress": False,
        "generation": SETTINGS,
        "max_new_tokens": SETTINGS.max_new_tokens,
    } | overrides
    return EvaluationConfig(**values)


def test_same_revisions_give_the_same_scores_and_another_adapter_revision_a_new_row(world, repo_name, tmp_path):
    model = f"{world.base}@v1.0"
    first, second, other = (
        evaluate(common(world, model=model, adapter=f"{world.adapter}@{tag}")) for tag in ("v1.0", "v1.0", "v2.0")
    )
    assert first.record["metrics"] == second.record["metrics"]
    assert first.details == second.details
    assert other.details["prediction"] != first.details["prediction"]
    assert other.record["metrics"] != first.record["metrics"]

    record = first.record
    assert record["system"] | {"kind": "adapter", "model_sha": world.sha["base"]} == record["system"]
    assert (record["system"]["adapter_revision"], record["system"]["adapter_sha"]) == ("v1.0", world.sha["v1.0"])
    assert record["system"]["label"] == f"{world.adapter}@v1.0 ({world.sha['v1.0'][:7]})"
    assert record["dataset"] | {"sha": world.sha["dataset"], "split": "test", "n_dialogs": 6} == record["dataset"]
    assert record["scorers"]["semantic_similarity"]["sha"] == world.sha["embedder"]
    assert record["generation"] == SETTINGS.to_dict()
    assert record["runtime"]["dtype"] == resolve_dtype("auto"), "the default is what this CPU computes fastest"
    assert record["protocol"] == "jackknife"
    assert record["versions"]["torch"] == importlib.metadata.version("torch")
    assert record["wall_time_s"]["total"] >= record["wall_time_s"]["generation"] > 0
    assert set(record["metrics"]["rougeL"]) == {"value", "ci_low", "ci_high"}

    commits = [leaderboard.push(evaluation, repo_name) for evaluation in (first, second, other)]
    assert len(set(commits)) == 3
    pushed, sha = results.load_records(repo_name)
    assert sha == commits[-1]
    assert len(pushed) == 3
    same = [entry for entry in pushed if entry["system"]["adapter_sha"] == world.sha["v1.0"]]
    assert len(same) == 2 and same[0]["metrics"] == same[1]["metrics"] == record["metrics"]

    details = pd.read_parquet(hf_hub_download(repo_name, same[0]["details_file"], repo_type="dataset"))
    assert details["prediction"].tolist() == first.details["prediction"]
    assert details["rougeL"].tolist() == first.details["rougeL"]

    (group,) = results.leaderboard_groups(pushed)
    assert len(group.rows) == 2  # the same system at the same revisions is one row
    assert {row["system"]["adapter_sha"] for row in group.rows} == {world.sha["v1.0"], world.sha["v2.0"]}
    assert [results.headline(row) for row in group.rows] == sorted(map(results.headline, group.rows), reverse=True)


def test_baselines_human_and_zero_shot_rows_and_the_regenerated_card(world, repo_name, tmp_path, capsys):
    for baseline in ("lead", "human"):
        leaderboard.evaluate_and_push(
            common(world, baseline=baseline, results_repo=repo_name, output_dir=str(tmp_path))
        )
    leaderboard.evaluate_and_push(
        common(world, model=f"{world.base}@v1.0", results_repo=repo_name, output_dir=str(tmp_path))
    )
    code = leaderboard_cli.main(
        ["eval", "--config", str(RECIPE), "--baseline", "templated-lead", "--dataset", f"{world.dataset}@v1.0",
         "--embedding_model", world.embedder, "--n_bootstrap", "100", "--results_repo", repo_name,
         "--output_dir", str(tmp_path)]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "wall time:" in printed and f"pushed to {repo_name}@" in printed
    assert len(list((tmp_path / "details" / "tweetsumm-abstractive").rglob("*.parquet"))) == 4

    records, _ = results.load_records(repo_name)
    by_label = {record["system"]["label"]: record for record in records}
    zero_shot = f"{world.base}@v1.0 ({world.sha['base'][:7]})"
    assert set(by_label) == {"lead", "templated-lead", "human (leave-one-out)", zero_shot}
    human = by_label["human (leave-one-out)"]
    assert human["system"]["kind"] == "human" and human["dataset"]["n_dialogs"] == 6
    assert 0 < human["n_samples"] < 6  # only dialogs with two summaries or more
    assert "bleu" not in human["metrics"] and "semantic_similarity" in human["metrics"]
    assert by_label[zero_shot]["system"]["kind"] == "zero-shot"
    assert by_label[zero_shot]["system"]["adapter_sha"] is None

    assert leaderboard_cli.main(["show", "--results_repo", repo_name, "--output_dir", str(tmp_path / "board")]) == 0
    markdown = capsys.readouterr().out
    ranked = sorted(records, key=lambda record: -record["metrics"]["rougeL"]["value"])
    for rank, record in enumerate(ranked, start=1):
        assert f"| {rank} | {record['system']['label']} | {record['system']['kind']} |" in markdown

    table, chart = leaderboard.render_leaderboard(repo_name, output_dir=tmp_path / "board")
    assert table in markdown
    assert chart.read_bytes().startswith(b"\x89PNG")
    # The card and chart pushed with the last record were made from the same records as this local rendering.
    assert hf_hub_download(repo_name, results.CHART_FILE, repo_type="dataset", local_dir=tmp_path / "hub")
    assert (tmp_path / "hub" / results.CHART_FILE).read_bytes() == chart.read_bytes()
    card = DatasetCard.load(repo_name, repo_type="dataset")
    assert table in card.text
    assert "## All evaluations (4)" in card.text
    assert card.data.license == "cc-by-nc-sa-4.0"
    quick_start = run_quick_start(card.content)
    assert quick_start.returncode == 0, quick_start.stderr[-3000:]


def test_a_rerun_with_skip_if_evaluated_reuses_the_record_and_commits_nothing(world, repo_name, tmp_path):
    api = world.api
    adapter = f"{repo_name}-adapter"  # a copy of the world's v1.0, whose card this test may change
    api.create_repo(adapter)
    api.upload_folder(repo_id=adapter, folder_path=api.snapshot_download(world.adapter, revision="v1.0"))
    api.create_tag(adapter, tag="v1.0")
    adapter_row = common(
        world, adapter=f"{adapter}@v1.0", results_repo=repo_name, output_dir=str(tmp_path), update_card=True,
        skip_if_evaluated=True,
    )  # fmt: skip
    baseline_row = common(world, baseline="lead", results_repo=repo_name, output_dir=str(tmp_path))
    baseline_row.skip_if_evaluated = True
    first = [leaderboard.evaluate_and_push(config) for config in (baseline_row, adapter_row)]
    assert all(first)
    results_head, card_head = api.dataset_info(repo_name).sha, api.model_info(adapter).sha

    assert [leaderboard.evaluate_and_push(config) for config in (baseline_row, adapter_row)] == [None, None]
    assert (api.dataset_info(repo_name).sha, api.model_info(adapter).sha) == (results_head, card_head)
    reused = evaluate(adapter_row)
    assert reused.reused and reused.record["results_file"].startswith("results/tweetsumm-abstractive/")
    assert (
        reused.details["prediction"]
        == evaluate(dataclasses.replace(adapter_row, skip_if_evaluated=False)).details["prediction"]
    )

    # Anything that makes it another evaluation evaluates again: another adapter revision, another bootstrap.
    for changed in (
        dataclasses.replace(adapter_row, adapter=f"{world.adapter}@v2.0", update_card=False),  # the world's v2.0
        dataclasses.replace(baseline_row, n_bootstrap=50),
    ):
        assert not evaluate(changed).reused
        assert leaderboard.evaluate_and_push(changed) not in (None, results_head)
    assert len(results.load_records(repo_name)[0]) == 4


def test_update_card_writes_model_index_matching_the_results(world, repo_name):
    evaluation = evaluate(common(world, adapter=f"{world.adapter}@v1.0", embedding_model=None))
    assert evaluation.record["system"]["model_sha"] == world.sha["base"]  # the adapter's own base, resolved
    commits_before = len(world.api.list_repo_commits(world.adapter))
    results_commit = leaderboard.push(evaluation, repo_name, update_card=True)

    assert len(world.api.list_repo_commits(world.adapter)) == commits_before + 1
    assert world.api.model_info(world.adapter, revision="v1.0").sha == world.sha["v1.0"]  # the release is untouched
    card = ModelCard.load(world.adapter)
    model_name, entries = model_index_to_eval_results(card.data.to_dict()["model-index"])
    assert model_name == "lb-adapter"
    assert entries[0] == TRAINING_RESULT  # what was there is kept
    written = {entry.metric_type: entry for entry in entries[1:]}
    metrics = evaluation.record["metrics"]
    # no embedding model; toxicity by the default offline scorer
    assert set(written) == {
        "rougeL", "rouge1", "rouge2", "rougeLsum", "ref1_rougeL", "bleu", "chrf", "mean_toxicity", "flagged_fraction"
    }  # fmt: skip
    for metric, entry in written.items():
        assert entry.metric_value == metrics[metric]["value"]
        assert (entry.dataset_type, entry.dataset_revision) == (world.dataset, world.sha["dataset"])
        assert entry.metric_config == ("first-reference" if metric == "ref1_rougeL" else "jackknife")
        assert results_commit in entry.source_url

    # Another evaluation of the same task replaces those entries instead of piling up.
    model_card.update_model_card(evaluation.record, "http://elsewhere")
    _, entries = model_index_to_eval_results(ModelCard.load(world.adapter).data.to_dict()["model-index"])
    assert len(entries) == 1 + len(written)
    assert {entry.source_url for entry in entries[1:]} == {"http://elsewhere"}


def test_synthetic_dialogue_row_records_the_round_trip_summarizer(world, repo_name):
    evaluation = evaluate(
        common(
            world,
            task="synthetic-dialogue",
            model=f"{world.base}@v1.0",
            adapter=f"{world.adapter}@v2.0",
            limit=3,
            dtype="float32",
            generation=GenerationSettings(max_new_tokens=24, batch_size=4),
            max_new_tokens=24,
        )
    )
    record = evaluation.record
    assert record["runtime"]["dtype"] == "float32"
    assert record["system"]["label"].endswith("[float32]")  # not the default (auto): the label says so
    assert set(evaluation.details["stop_reason"]) <= {"eos", "length", "loop"}
    assert record["dataset"]["n_dialogs"] == 3
    summarizer = record["round_trip_summarizer"]
    assert (summarizer["model_sha"], summarizer["adapter_sha"]) == (world.sha["base"], None)
    assert {"round_trip_rougeL", "dialogue_rougeL", "format_valid", "distinct_1", "distinct_2"} <= set(
        record["metrics"]
    )
    assert len(evaluation.details["round_trip_summary"]) == 3
    leaderboard.push(evaluation, repo_name)
    markdown, _ = leaderboard.render_leaderboard(repo_name, task="synthetic-dialogue", output_dir=None)
    assert "Round-trip R-L" in markdown and f"{world.adapter}@v2.0" in markdown


def test_cli_help_and_clear_errors(world, repo_name, capsys):
    completed = processes.run(
        [sys.executable, "-m", "evaluation.leaderboard", "eval", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=True,
    )
    assert "--update_card" in completed.stdout and "--baseline" in completed.stdout

    dataset = ["--dataset", f"{world.dataset}@v1.0", "--embedding_model", "none", "--push", "false"]
    assert leaderboard_cli.main(["eval", "--baseline", "oracle", *dataset]) == 1
    assert "no baseline 'oracle'" in capsys.readouterr().err
    missing_revision = ["--dataset", f"{world.dataset}@v9", "--push", "false"]
    assert leaderboard_cli.main(["eval", "--baseline", "lead", *missing_revision]) == 1
    assert f"dataset {world.dataset} has no revision 'v9'" in capsys.readouterr().err
    assert leaderboard_cli.main(["eval", "--model", world.base, "--baseline", "lead", *dataset]) == 1
    assert "not both" in capsys.readouterr().err
    assert leaderboard_cli.main(["show", "--results_repo", repo_name]) == 1
    assert f"no results repo '{repo_name}'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        leaderboard_cli.main(["eval", "--baseline", "lead", "--update_card", "true"])
    assert "give --adapter" in capsys.readouterr().err
    assert json.loads(json.dumps(provenance.package_versions()))["python"]


def test_a_push_that_races_another_is_retried_on_the_new_head(world, repo_name, hub):
    lead, human = (evaluate(common(world, baseline=name, embedding_model=None)) for name in ("lead", "human"))

    class RacingApi(HfApi):
        """The real client, except that someone else pushes a record just before our first commit lands."""

        raced = False

        def create_commit(self, *args, **kwargs):
            if not self.raced:
                self.raced = True
                results.push_record(human.record, human.details, repo_name, api=HfApi(endpoint=hub.endpoint))
            return super().create_commit(*args, **kwargs)

    api = RacingApi(endpoint=hub.endpoint)
    commit = results.push_record(lead.record, lead.details, repo_name, api=api)
    assert api.raced
    records, sha = results.load_records(repo_name)
    assert sha == commit
    assert sorted(record["system"]["name"] for record in records) == ["human", "lead"]
    assert "## All evaluations (2)" in DatasetCard.load(repo_name, repo_type="dataset").text


def test_a_card_section_is_read_and_replaced_whole():
    from dialoghub.evaluation.model_card import replace_section, section_of

    text = "# Card\n\nIntro.\n\n## Paired comparisons\n\n| a | b |\n\nmore\n\n## Training\n\nsteps\n"
    assert section_of(text, "Paired comparisons") == "| a | b |\n\nmore"
    assert section_of(text, "Missing") is None
    replaced = replace_section(text, "Paired comparisons", "new table")
    assert section_of(replaced, "Paired comparisons") == "new table"
    assert section_of(replaced, "Training") == "steps"
    assert replace_section(replaced, "Paired comparisons", "| a | b |\n\nmore") == text
