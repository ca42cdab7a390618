"""Perplexity of texts (the references) under a causal language model and its tokenizer, passed in as objects so a
base model with a LoRA adapter works as well as a plain model.

Each text is tokenised on its own with the tokenizer's default special tokens (e.g. a BOS token) and every token after
the first is predicted, as in the model's own `labels=input_ids` loss. Corpus perplexity is exp of the mean negative
log-likelihood over all predicted tokens of all texts (token-weighted), not the mean of per-text perplexities.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PerplexityResult:
    perplexity: float
    per_text: list[float]
    num_predicted_tokens: int


def perplexity(
    model, tokenizer, texts: Sequence[str], batch_size: int = 8, max_length: int | None = None
) -> PerplexityResult:
    """`PerplexityResult` of `texts`; batches are right-padded and padding is masked out of the loss."""
    import torch
    import torch.nn.functional as F
    from torch.nn.utils.rnn import pad_sequence

    if not texts:
        raise ValueError("no texts to score")
    token_ids = [
        torch.tensor(tokenizer(text, truncation=max_length is not None, max_length=max_length)["input_ids"])
        for text in texts
    ]
    for index, ids in enumerate(token_ids):
        if len(ids) < 2:
            raise ValueError(f"text {index} ({texts[index]!r}) has {len(ids)} token(s); perplexity needs at least 2")

    was_training = model.training
    model.eval()
    total_nll_per_text = []
    try:
        with torch.no_grad():
            for start in range(0, len(token_ids), batch_size):
                batch = token_ids[start : start + batch_size]
                input_ids = pad_sequence(batch, batch_first=True, padding_value=0).to(model.device)
                attention_mask = pad_sequence(
                    [torch.ones_like(ids) for ids in batch], batch_first=True, padding_value=0
                ).to(model.device)
                logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()
                token_nll = F.cross_entropy(logits.transpose(1, 2), input_ids[:, 1:], reduction="none")
                total_nll_per_text.extend((token_nll * attention_mask[:, 1:]).sum(dim=1).tolist())
    finally:
        model.train(was_training)

    predicted_tokens = [len(ids) - 1 for ids in token_ids]
    num_predicted_tokens = sum(predicted_tokens)
    return PerplexityResult(
        perplexity=math.exp(sum(total_nll_per_text) / num_predicted_tokens),
        per_text=[math.exp(nll / count) for nll, count in zip(total_nll_per_text, predicted_tokens, strict=True)],
        num_predicted_tokens=num_predicted_tokens,
    )
