"""The demo Space: try the summarizer and the dialogue generator in a browser, next to the current leaderboard.

Everything is loaded by repo id and revision from the Hub that `HF_ENDPOINT` names. `scripts/demo.py` reads its
`DemoConfig` from `spaces/dialoghub-demo/recipe.yaml`; the Space's own `app.py` reads it from the environment
(`DemoConfig.from_env`).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

from dialoghub.core.paths import REPO_ROOT, project_org
from dialoghub.core.provenance import git
from dialoghub.core.recipes import optional_reference
from dialoghub.evaluation.leaderboard import render_leaderboard
from dialoghub.evaluation.results import ResultsRepoError
from dialoghub.evaluation.tasks import TASKS
from dialoghub.hub.client.publish import publish_folder
from dialoghub.hub.client.refs import repo_id_of, split_revision
from dialoghub.models import prompts
from dialoghub.models.generation import GenerationSettings, Generator, load_generator

logger = logging.getLogger(__name__)

DEFAULT_BASE_MODEL = "dialoghub/SmolLM2-135M-Instruct-q4_1"
EXAMPLE_COUNT = 8


@dataclass(frozen=True)
class DemoConfig:
    """Which repos the demo loads; each `ID` or `ID@REV`. Environment variables override the defaults."""

    base_model: str = field(default=DEFAULT_BASE_MODEL, metadata={"help": "Base model ID[@REV]."})
    summarizer_adapter: str | None = field(
        default=f"{project_org()}/summarizer-lora", metadata={"help": "Summarizer adapter ID[@REV], or none."}
    )
    generator_adapter: str | None = field(
        default=f"{project_org()}/dialogue-generator-lora",
        metadata={"help": "Dialogue-generator adapter ID[@REV], or none."},
    )
    dataset: str = field(
        default=f"{project_org()}/tweetsumm-clean", metadata={"help": "Dataset ID[@REV] of the examples."}
    )
    results_repo: str = field(
        default=f"{project_org()}/dialoghub-results", metadata={"help": "Results repo ID[@REV] of the leaderboard."}
    )
    max_new_tokens: int | None = field(
        default=None, metadata={"help": "Answer length (none: each task's, prompts.ANSWER_MAX_NEW_TOKENS)."}
    )

    @classmethod
    def from_env(cls) -> DemoConfig:
        defaults = cls()

        def setting(name: str, default):
            value = os.environ.get(f"DIALOGHUB_DEMO_{name.upper()}")
            if value is None:
                return default
            value = optional_reference(value)
            return type(default)(value) if value is not None and default is not None else value

        return cls(**{name: setting(name, getattr(defaults, name)) for name in cls.__dataclass_fields__})


@dataclass
class LoadedModel:
    generator: Generator
    note: str


def adapter_published(adapter: str) -> bool:
    from huggingface_hub import HfApi

    repo_id, revision = split_revision(adapter)
    api = HfApi()
    return api.repo_exists(repo_id) and (revision is None or api.revision_exists(repo_id, revision))


def load_with_adapter(base_model: str, adapter: str | None, task: str) -> LoadedModel:
    """The base model with the task's adapter, or the zero-shot base model (the UI says so) if it is absent."""
    if adapter and adapter_published(adapter):
        generator = load_generator(base_model, adapter)
        return LoadedModel(generator, f"{task}: `{generator.adapter}` on `{generator.base}`")
    if adapter:
        logger.warning("adapter %s is not on the Hub; %s uses the zero-shot base model", adapter, task)
    generator = load_generator(base_model)
    return LoadedModel(generator, f"{task}: zero-shot `{generator.base}` (no adapter published yet)")


def validation_examples(dataset: str, count: int = EXAMPLE_COUNT) -> dict[str, str]:
    """conversation_id -> rendered dialogue, from the validation split (empty if the dataset is not on the Hub)."""
    from datasets import load_dataset

    repo_id, revision = split_revision(dataset)
    try:
        rows = load_dataset(repo_id, split="validation", revision=revision)
        rows = rows.select(range(min(count, rows.num_rows)))
    except (FileNotFoundError, RepositoryNotFoundError, RevisionNotFoundError, ValueError) as error:
        logger.warning("no validation examples from %s: %s", dataset, error)
        return {}
    return {row["conversation_id"]: prompts.render_dialogue(row["dialogue"], row["conversation_id"]) for row in rows}


ALL_TASKS = "all tasks"
HUB_RANK = "the Hub's rank"


def leaderboard_view(
    results_repo: str, dataset: str | None = None, task: str = ALL_TASKS, sort_by: str = HUB_RANK
) -> tuple[str, str | None]:
    """The leaderboard tab: markdown and the PNG chart, ranked by the benchmark's `get_dataset_leaderboard` (as
    `leaderboard show` is), filtered to one task and sorted by any metric if asked."""
    try:
        markdown, chart = render_leaderboard(
            results_repo,
            task=None if task == ALL_TASKS else task,
            dataset=repo_id_of(dataset) if dataset else None,
            sort_by=None if sort_by == HUB_RANK else sort_by,
        )
    except (ResultsRepoError, RepositoryNotFoundError, RevisionNotFoundError, ValueError) as error:
        return f"No leaderboard yet: {error}", None
    return markdown, str(chart)


def sort_choices() -> list[str]:
    metrics = [metric for task in TASKS.values() for metric in task.leaderboard_metrics]
    return [HUB_RANK, *dict.fromkeys(metrics)]


def answer(loaded: LoadedModel, messages: list[dict[str, str]], max_new_tokens: int) -> str:
    settings = GenerationSettings(max_new_tokens=max_new_tokens, batch_size=1)
    return loaded.generator.generate([messages], settings, progress=False)[0].text.strip()


def summarize(loaded: LoadedModel, dialogue_text: str, max_new_tokens: int | None) -> str:
    import gradio as gr

    try:
        messages = prompts.summarize_messages(prompts.parse_dialogue(dialogue_text))
    except prompts.PromptFormatError as error:
        raise gr.Error(f"Write the dialogue as 'Customer: ...' / 'Agent: ...' lines ({error})") from error
    return answer(loaded, messages, max_new_tokens or prompts.ANSWER_MAX_NEW_TOKENS[prompts.SUMMARIZE])


def generate_dialogue(loaded: LoadedModel, summary: str, max_new_tokens: int | None) -> str:
    import gradio as gr

    if not summary.strip():
        raise gr.Error("Write a summary first")
    messages = prompts.generate_messages(summary)
    return answer(loaded, messages, max_new_tokens or prompts.ANSWER_MAX_NEW_TOKENS[prompts.GENERATE])


def build_demo(config: DemoConfig):
    import gradio as gr

    summarizer = load_with_adapter(config.base_model, config.summarizer_adapter, "Summarize")
    dialogue_writer = load_with_adapter(config.base_model, config.generator_adapter, "Generate")
    examples = validation_examples(config.dataset)

    with gr.Blocks(title="dialoghub demo") as demo:
        gr.Markdown("# dialoghub\nCustomer-support dialogue summarization and generation, loaded from the Hub.")
        with gr.Tab("Summarize", id="summarize"):
            gr.Markdown(summarizer.note)
            dialogue_box = gr.Textbox(
                lines=10, label="Dialogue ('Customer: ...' / 'Agent: ...' lines)", elem_id="dialogue-input"
            )
            if examples:
                gr.Examples(
                    [[text] for text in examples.values()],
                    inputs=[dialogue_box],
                    label="Validation examples (click one)",
                    example_labels=list(examples),
                    elem_id="validation-examples",
                )
            summarize_button = gr.Button("Summarize", variant="primary", elem_id="summarize-button")
            summary_output = gr.Textbox(label="Summary", elem_id="summary-output", interactive=False)
            summarize_button.click(
                lambda text: summarize(summarizer, text, config.max_new_tokens), dialogue_box, summary_output
            )
        with gr.Tab("Generate", id="generate"):
            gr.Markdown(dialogue_writer.note)
            summary_box = gr.Textbox(lines=3, label="Summary", elem_id="summary-input")
            generate_button = gr.Button("Generate", variant="primary", elem_id="generate-button")
            dialogue_output = gr.Textbox(lines=12, label="Dialogue", elem_id="dialogue-output", interactive=False)
            generate_button.click(
                lambda text: generate_dialogue(dialogue_writer, text, config.max_new_tokens),
                summary_box,
                dialogue_output,
            )
        with gr.Tab("Leaderboard", id="leaderboard"):
            with gr.Row():
                task_choice = gr.Dropdown(
                    [ALL_TASKS, *TASKS], value=ALL_TASKS, label="Task", elem_id="leaderboard-task"
                )
                sort_choice = gr.Dropdown(sort_choices(), value=HUB_RANK, label="Sort by", elem_id="leaderboard-sort")
            markdown, chart = leaderboard_view(config.results_repo, config.dataset)
            board = gr.Markdown(markdown, elem_id="leaderboard-table")
            chart_image = gr.Image(chart, label="Headline metric", elem_id="leaderboard-chart", interactive=False)

            def refresh(task: str, sort_by: str):
                return leaderboard_view(config.results_repo, config.dataset, task, sort_by)

            for trigger in (task_choice.change, sort_choice.change):
                trigger(refresh, [task_choice, sort_choice], [board, chart_image])
            gr.Button("Refresh", elem_id="leaderboard-refresh").click(
                refresh, [task_choice, sort_choice], [board, chart_image]
            )
    return demo


SPACE_DIR = REPO_ROOT / "spaces" / "dialoghub-demo"
BUNDLED_PACKAGES = ("dialoghub", "evaluation")


def space_card(config: DemoConfig):
    from huggingface_hub import SpaceCard, SpaceCardData

    card_data = SpaceCardData(
        title="dialoghub demo",
        sdk="gradio",
        sdk_version=importlib.metadata.version("gradio"),
        app_file="app.py",
        license="apache-2.0",
        models=[
            repo_id_of(repo)
            for repo in (config.base_model, config.summarizer_adapter, config.generator_adapter)
            if repo
        ],
        datasets=[repo_id_of(config.dataset), repo_id_of(config.results_repo)],
        tags=["customer-support", "dialogue", "summarization"],
    )
    return SpaceCard.from_template(
        card_data, template_path=str(SPACE_DIR / "README.md.j2"), code_version=code_version(), **asdict(config)
    )


def code_version() -> str:
    return git("rev-parse", "--short", "HEAD") or "(not a git checkout)"


def publish_space(api, repo_id: str, config: DemoConfig, tag: str | None = None) -> str:
    """Publish the demo as a Gradio Space repo: app.py, its card, the pinned requirements and the bundled packages."""
    with tempfile.TemporaryDirectory(prefix="dialoghub-space-") as staging:
        staging = Path(staging)
        shutil.copy(SPACE_DIR / "app.py", staging / "app.py")
        shutil.copy(REPO_ROOT / "requirements.txt", staging / "requirements.txt")
        for package in BUNDLED_PACKAGES:
            shutil.copytree(
                REPO_ROOT / package, staging / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        space_card(config).save(staging / "README.md")
        return publish_folder(
            api, staging, repo_id, repo_type="space", space_sdk="gradio", tag=tag,
            commit_message=f"dialoghub demo Space ({code_version()})",
        ).commit  # fmt: skip
