"""The demo Space: try the summarizer and the dialogue generator in a browser, next to the current leaderboard.

Everything is loaded by repo id and revision from the Hub that `HF_ENDPOINT` names. `scripts/demo.py` reads its
`DemoConfig` from `spaces/dialoghub-demo/recipe.yaml`; the Space's own `app.py` reads it from the environment
(`DemoConfig.from_env`). With an `inference_url` the models run on that chat-completions endpoint
(`dialoghub.demo.endpoint`) instead of in this process.
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

from dialoghub.core.files import git
from dialoghub.core.paths import REPO_ROOT, project_org
from dialoghub.core.recipes import optional_reference
from dialoghub.demo.endpoint import EndpointError, EndpointModel
from dialoghub.evaluation.leaderboard import render_leaderboard
from dialoghub.evaluation.results import ResultsRepoError
from dialoghub.evaluation.tasks import TASKS
from dialoghub.hub.client import publish_folder, repo_id_of, split_revision
from dialoghub.models import prompts
from dialoghub.models.generation import GenerationSettings, Generator, load_generator

logger = logging.getLogger(__name__)

DEFAULT_BASE_MODEL = "dialoghub/SmolLM2-135M-Instruct-q4_1"
EXAMPLE_COUNT = 8
# DemoConfig fields read from a variable other than DIALOGHUB_DEMO_<FIELD>: the one the Hub's pages read too.
ENVIRONMENT_VARIABLES = {"inference_url": "DIALOGHUB_INFERENCE_URL"}


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
    inference_url: str | None = field(
        default=None,
        metadata={
            "help": "A chat-completions endpoint to run the models on, e.g. http://127.0.0.1:8766 that `make hub` "
            "starts (none: load them in the demo)."
        },
    )

    @classmethod
    def from_env(cls) -> DemoConfig:
        """Each field from `DIALOGHUB_DEMO_<FIELD>`, but `inference_url` from `DIALOGHUB_INFERENCE_URL`, the
        variable that names the endpoint to the Hub's pages too."""
        defaults = cls()

        def setting(name: str, default):
            variable = ENVIRONMENT_VARIABLES.get(name, f"DIALOGHUB_DEMO_{name.upper()}")
            value = os.environ.get(variable)
            if value is None:
                return default
            value = optional_reference(value)
            return type(default)(value) if value is not None and default is not None else value

        return cls(**{name: setting(name, getattr(defaults, name)) for name in cls.__dataclass_fields__})


@dataclass
class LoadedModel:
    generator: Generator
    note: str

    def answer(self, messages: list[dict[str, str]], settings: GenerationSettings) -> str:
        return self.generator.generate([messages], settings, progress=False)[0].text.strip()


def adapter_published(adapter: str) -> bool:
    from huggingface_hub import HfApi

    repo_id, revision = split_revision(adapter)
    api = HfApi()
    return api.repo_exists(repo_id) and (revision is None or api.revision_exists(repo_id, revision))


def load_with_adapter(
    base_model: str, adapter: str | None, task: str, inference_url: str | None = None
) -> LoadedModel | EndpointModel:
    """The base model with the task's adapter, or the zero-shot base model (the UI says so) if it is absent; run by
    the endpoint at `inference_url` if one is given (it loads an adapter on the base model its config names)."""
    published = bool(adapter) and adapter_published(adapter)
    if adapter and not published:
        logger.warning("adapter %s is not on the Hub; %s uses the zero-shot base model", adapter, task)
    if inference_url:
        if published:
            return EndpointModel(inference_url, adapter, f"{task}: `{adapter}` on the endpoint {inference_url}")
        note = f"{task}: zero-shot `{base_model}` on the endpoint {inference_url} (no adapter published yet)"
        return EndpointModel(inference_url, base_model, note)
    if published:
        generator = load_generator(base_model, adapter)
        return LoadedModel(generator, f"{task}: `{generator.adapter}` on `{generator.base}`")
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


def answer(loaded: LoadedModel | EndpointModel, messages: list[dict[str, str]], max_new_tokens: int) -> str:
    import gradio as gr

    settings = GenerationSettings(max_new_tokens=max_new_tokens, batch_size=1)
    try:
        return loaded.answer(messages, settings)
    except EndpointError as error:  # shown in the UI as an error message, not a traceback
        raise gr.Error(str(error)) from error


def summarize(loaded: LoadedModel | EndpointModel, dialogue_text: str, max_new_tokens: int | None) -> str:
    import gradio as gr

    try:
        messages = prompts.summarize_messages(prompts.parse_dialogue(dialogue_text))
    except prompts.PromptFormatError as error:
        raise gr.Error(f"Write the dialogue as 'Customer: ...' / 'Agent: ...' lines ({error})") from error
    return answer(loaded, messages, max_new_tokens or prompts.ANSWER_MAX_NEW_TOKENS[prompts.SUMMARIZE])


def generate_dialogue(loaded: LoadedModel | EndpointModel, summary: str, max_new_tokens: int | None) -> str:
    import gradio as gr

    if not summary.strip():
        raise gr.Error("Write a summary first")
    messages = prompts.generate_messages(summary)
    return answer(loaded, messages, max_new_tokens or prompts.ANSWER_MAX_NEW_TOKENS[prompts.GENERATE])


def build_demo(config: DemoConfig):
    import gradio as gr

    summarizer = load_with_adapter(config.base_model, config.summarizer_adapter, "Summarize", config.inference_url)
    dialogue_writer = load_with_adapter(config.base_model, config.generator_adapter, "Generate", config.inference_url)
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
