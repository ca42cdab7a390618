"""Every stage is a recipe and an entry point: each recipe in the repo parses through its stage's parser and rejects
an unknown key, every entry point answers --help, and the pipeline runs exactly those entry points with those recipes
(end to end for the data stage, against the test Hub)."""

import importlib.util
import os
import shlex
import signal
import subprocess
import sys

import pytest
import yaml
from huggingface_hub import HfApi

from dialoghub.core import processes
from dialoghub.core.paths import REPO_ROOT
from dialoghub.hub.client import free_loopback_port, hub_is_up
from dialoghub.sft.training import parse_args as parse_training_args
from evaluation import leaderboard as leaderboard_cli

PIPELINE = REPO_ROOT / "scripts" / "pipeline.yaml"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_with(entry_point: list[str], arguments: list[str]):
    """Parse `arguments` as `entry_point` does (`scripts/x.py [command]` or `-m evaluation.leaderboard command`)."""
    if entry_point[0] == "-m":
        assert entry_point[1] == "evaluation.leaderboard"
        return leaderboard_cli.parse_args([*entry_point[2:], *arguments])
    name = entry_point[0].removeprefix("scripts/").removesuffix(".py")
    if name == "train_adapter":
        return parse_training_args(arguments)
    return load_script(name).parse_args([*entry_point[1:], *arguments])


# Every recipe of the repo, and the entry point that reads it (GPU recipes on this CPU need --use_cpu, see
# test_training_recipes.py)
RECIPES = {
    "datasets_repo/tweetsumm-clean/recipe.yaml": (["scripts/build_tweetsumm.py"], []),
    "datasets_repo/synthetic-dialogues/recipe.yaml": (["scripts/generate_dialogues.py"], []),
    "models_repo/SmolLM2-135M-Instruct-q4_1/recipe.yaml": (["scripts/prepare_base_models.py", "publish"], []),
    "models_repo/summarizer-lora/recipe.yaml": (["scripts/train_adapter.py"], []),
    "models_repo/summarizer-lora/recipe-gpu.yaml": (["scripts/train_adapter.py"], ["--use_cpu", "true"]),
    "models_repo/dialogue-generator-lora/recipe.yaml": (["scripts/train_adapter.py"], []),
    "models_repo/dialogue-generator-lora/recipe-gpu.yaml": (["scripts/train_adapter.py"], ["--use_cpu", "true"]),
    "evaluation/recipes/leaderboard.yaml": (["-m", "evaluation.leaderboard", "eval"], []),
    "spaces/dialoghub-demo/recipe.yaml": (["scripts/demo.py"], []),
    "datasets_repo/tweetsumm-provocation/recipe.yaml": (["scripts/build_provocation.py"], []),
    "models_repo/summarizer-grpo-lora/recipe.yaml": (["scripts/reward_tune.py"], []),
    "models_repo/summarizer-grpo-lora/recipe-gpu.yaml": (["scripts/reward_tune.py"], ["--use_cpu", "true"]),
    "scripts/pipeline.yaml": (["scripts/pipeline.py"], []),
}
# Not recipes of ours: accelerate's own launcher configs, and the provocation split's abuse list (data)
NOT_RECIPES = {"models_repo/accelerate", "datasets_repo/tweetsumm-provocation/abuse_phrases.yaml"}


def test_the_recipe_table_names_every_recipe_in_the_repo():
    found = {
        path.relative_to(REPO_ROOT).as_posix()
        for folder in ("datasets_repo", "models_repo", "evaluation", "spaces", "scripts")
        for path in (REPO_ROOT / folder).rglob("*.yaml")
        if not any(path.relative_to(REPO_ROOT).as_posix().startswith(prefix) for prefix in NOT_RECIPES)
    }
    assert found == set(RECIPES)


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_parses_and_an_unknown_key_is_rejected(recipe, tmp_path):
    entry_point, extra = RECIPES[recipe]
    assert parse_with(entry_point, ["--config", str(REPO_ROOT / recipe), *extra])

    values = yaml.safe_load((REPO_ROOT / recipe).read_text())
    broken = tmp_path / "recipe.yaml"
    broken.write_text(yaml.safe_dump(values | {"not_a_field": 1}))
    with pytest.raises(ValueError, match="not_a_field"):
        parse_with(entry_point, ["--config", str(broken), *extra])


def test_none_and_mappings_read_the_same_from_a_recipe_and_the_command_line(tmp_path):
    script = load_script("generate_dialogues")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("adapter: none\nsummarizer: null\nsplits: {train: 2}\nfew_shot_max_words: NONE\n")
    from_recipe = script.parse_args(["--config", str(recipe)])
    from_flags = script.parse_args(
        ["--adapter", "none", "--summarizer", "none", "--splits", "train=2", "--few_shot_max_words", "none"]
    )
    for config in (from_recipe, from_flags):
        assert (config.adapter, config.summarizer, config.few_shot_max_words) == (None, None, None)
        assert config.splits == {"train": 2}
    # The run's seed is its sampler's seed too, from a recipe as from a flag
    assert script.parse_args(["--seed", "7"]).generation.seed == 7


ENTRY_POINTS = [
    ["scripts/build_tweetsumm.py"],
    ["scripts/generate_dialogues.py"],
    ["scripts/prepare_base_models.py", "publish"],
    ["scripts/prepare_base_models.py", "convert"],
    ["scripts/train_adapter.py"],
    ["scripts/push_adapter.py"],
    ["scripts/demo.py"],
    ["scripts/pipeline.py"],
    ["scripts/build_provocation.py"],
    ["scripts/reward_tune.py"],
    ["-m", "evaluation.leaderboard", "eval"],
    ["-m", "evaluation.leaderboard", "show"],
]


@pytest.mark.parametrize("entry_point", ENTRY_POINTS, ids=" ".join)
def test_every_entry_point_answers_help_in_snake_case(entry_point):
    completed = processes.run(
        [sys.executable, *entry_point, "--help"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "--config" in completed.stdout
    # The usage line names each option by its first spelling: the field's name (argparse adds kebab-case aliases)
    usage = completed.stdout.split("\n\n", 1)[0]
    flags = [word.strip("[]").split("=")[0] for word in usage.split() if word.strip("[").startswith("--")]
    assert flags and not [flag for flag in flags if "-" in flag.removeprefix("--")]


def pipeline_stages() -> dict:
    return yaml.safe_load(PIPELINE.read_text())["stages"]


def test_the_pipeline_runs_the_entry_points_with_their_recipes():
    recipe = yaml.safe_load(PIPELINE.read_text())
    assert recipe["run"] == list(recipe["stages"]) == ["base", "data", "train", "reward", "eval", "synth"]
    used = set()
    for name, stage in pipeline_stages().items():
        for command in stage["commands"]:
            argv = shlex.split(command.format(base_dir="/tmp/base"))
            if argv[0] == "-m":
                assert importlib.util.find_spec(argv[1]) is not None
                entry_point, arguments = argv[:3], argv[3:]
            else:
                assert (REPO_ROOT / argv[0]).is_file(), f"{name}: {argv[0]}"
                split = 2 if argv[0] == "scripts/prepare_base_models.py" else 1
                entry_point, arguments = argv[:split], argv[split:]
            if "--config" in arguments:
                config = arguments[arguments.index("--config") + 1]
                assert config in RECIPES and RECIPES[config][0] == entry_point, f"{name}: {config}"
                used.add(config)
            assert parse_with(entry_point, arguments), f"{name}: {command}"
    assert {
        "datasets_repo/tweetsumm-clean/recipe.yaml",
        "datasets_repo/synthetic-dialogues/recipe.yaml",
        "models_repo/SmolLM2-135M-Instruct-q4_1/recipe.yaml",
        "models_repo/summarizer-lora/recipe.yaml",
        "models_repo/dialogue-generator-lora/recipe.yaml",
        "evaluation/recipes/leaderboard.yaml",
        "datasets_repo/tweetsumm-provocation/recipe.yaml",
        "models_repo/summarizer-grpo-lora/recipe.yaml",
    } == used


def write_pipeline(path, stages: dict) -> str:
    path.write_text(yaml.safe_dump({"run": list(stages), "stages": stages}, sort_keys=False))
    return str(path)


def run_pipeline(config: str, **env) -> subprocess.CompletedProcess:
    return processes.run(
        [sys.executable, "scripts/pipeline.py", "--config", config],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=os.environ | env,
        timeout=600,
    )


def test_the_data_stage_end_to_end_logs_its_command_and_a_rerun_makes_no_commit(hub, repo_name, tmp_path):
    data = pipeline_stages()["data"]
    data["commands"] = [f"{data['commands'][0]} --repo_id {repo_name}"]
    config = write_pipeline(tmp_path / "pipeline.yaml", {"data": data})

    first = run_pipeline(config)
    assert first.returncode == 0, first.stderr[-3000:]
    command = shlex.join(
        [sys.executable, "scripts/build_tweetsumm.py", "--config", "datasets_repo/tweetsumm-clean/recipe.yaml",
         "--repo_id", repo_name]
    )  # fmt: skip
    assert f"$ {command}\n" in first.stdout
    assert "(new commit)" in first.stdout and "Tag v1.0: created" in first.stdout
    assert any(line.split()[:2] == ["data", "ok"] and line.endswith("MiB") for line in first.stdout.splitlines())
    api = HfApi(endpoint=hub.endpoint)
    commits = len(api.list_repo_commits(repo_name, repo_type="dataset"))

    again = run_pipeline(config)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "(unchanged, no new commit)" in again.stdout
    assert len(api.list_repo_commits(repo_name, repo_type="dataset")) == commits


def test_a_failing_stage_stops_the_pipeline_with_its_name_and_reason(hub, tmp_path):
    broken = {"description": "a source that is not there", "commands": [
        "scripts/build_tweetsumm.py --config datasets_repo/tweetsumm-clean/recipe.yaml --source /nonexistent/tweetsumm"
    ]}  # fmt: skip
    after = {"description": "never reached", "commands": ["-c 'print(\"reached\")'"]}
    completed = run_pipeline(write_pipeline(tmp_path / "pipeline.yaml", {"broken": broken, "after": after}))
    assert completed.returncode == 1
    assert "pipeline stopped: stage 'broken' failed: exit code 1 from " in completed.stderr
    tail = completed.stderr.split("--- last stderr lines ---", 1)[1]
    assert "error: " in tail and "/nonexistent/tweetsumm" in tail
    assert "reached" not in completed.stdout
    assert "=== after" not in completed.stdout


def test_sigterm_stops_the_running_stage_and_the_embedded_hub(tmp_path):
    stage = {"description": "a long stage", "commands": [
        "-c 'import os, time; print(os.getpid(), flush=True); time.sleep(600)'"
    ]}  # fmt: skip
    endpoint = f"http://127.0.0.1:{free_loopback_port()}"
    with processes.GroupProcess(
        [sys.executable, "scripts/pipeline.py", "--config", write_pipeline(tmp_path / "p.yaml", {"long": stage})],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=os.environ | {"HF_ENDPOINT": endpoint, "DIALOGHUB_BASE_DIR": str(tmp_path / "base")},
    ) as process:
        lines = []
        while not (line := process.stdout.readline()).strip().isdigit():
            assert line, f"the pipeline ended before its stage started: {''.join(lines)}"
            lines.append(line)
        child = int(line)
        assert hub_is_up(endpoint), "the pipeline started its own Hub"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 128 + signal.SIGTERM
        # Checked before the `with` ends the pipeline's process group, which its stage and Hub would be in otherwise.
        with pytest.raises(ProcessLookupError):
            os.kill(child, 0)
        assert not hub_is_up(endpoint)
