"""Semantic similarity: cosine similarity of sentence-transformers embeddings between a prediction and the closest of
its references. A thin `evaluate` wrapper of `dialoghub.metrics.semantic`; the default embedding model is the
MiniLM model served by the dialoghub Hub."""

from statistics import fmean

import datasets
import evaluate

from dialoghub.metrics import semantic  # From: dialoghub

_DESCRIPTION = __doc__

_KWARGS_DESCRIPTION = f"""
Args:
    predictions: list of str.
    references: list of lists of str; the number of references may differ between predictions.
    model: sentence-transformers model id on the Hub, or a local folder (default {semantic.DEFAULT_EMBEDDING_MODEL!r}).
    revision: the model's revision (default: main).
    use_aggregator: if True (default) the mean over predictions, else one score per prediction.
Returns:
    semantic_similarity: cosine similarity in percent (-100 to 100).
"""

_CITATION = """
@inproceedings{reimers-2019-sentence-bert,
    title = "Sentence-{BERT}: Sentence Embeddings using {S}iamese {BERT}-Networks",
    author = "Reimers, Nils and Gurevych, Iryna",
    booktitle = "Proceedings of EMNLP-IJCNLP 2019",
    year = "2019",
    url = "https://arxiv.org/abs/1908.10084",
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class DialoghubSemanticSimilarity(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
            ),
            codebase_urls=["https://github.com/UKPLab/sentence-transformers"],
        )

    def _compute(
        self, predictions, references, model=semantic.DEFAULT_EMBEDDING_MODEL, revision=None, use_aggregator=True
    ):
        # Keep the loaded model between compute() calls with the same model.
        loaded = getattr(self, "_similarity", None)
        if loaded is None or (loaded.model_name, loaded.revision) != (model, revision):
            self._similarity = semantic.SemanticSimilarity(model, revision=revision)
        scores = [100 * score for score in self._similarity(predictions, references)]
        return {"semantic_similarity": fmean(scores) if use_aggregator else scores}
