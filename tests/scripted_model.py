"""A tiny Llama whose next token is scripted: it writes whole dialogue lines, so generation tests get valid (or
deliberately broken) dialogues from a real model, a real tokenizer and real `generate` calls in milliseconds.

How: every attention and MLP block writes zeros into the residual stream, so the last hidden state is the current
token's embedding. Each scripted token's embedding is its own one-hot "state"; the untied LM head gives the
successors of a state equal, large logits. Greedy decoding takes the first successor; sampling picks uniformly.
The script's lines are added tokens (one token per line), so they decode to exactly their text.
"""

from __future__ import annotations

from pathlib import Path

from dialoghub.models import prompts
from tests.tiny_models import tiny_tokenizer

START = "<start>"
"""The state of the last prompt token (the chat template's assistant header ends every prompt the same way)."""
EOS = "<|im_end|>"
LOGIT = 8.0

CUSTOMER_OPENERS = [
    "Customer: My parcel from last week still has not arrived, can you check it?",
    "Customer: I was charged twice for the same order this morning.",
    "Customer: The app keeps crashing whenever I open my account page.",
    "Customer: My flight was cancelled and nobody told me what to do next.",
    "Customer: I cannot log in since I reset my password yesterday.",
    "Customer: The router you sent me does not connect to anything.",
]
AGENT_REPLIES = [
    "\nAgent: Sorry about that! Please send us a DM with your order number and we will look into it.",
    "\nAgent: We are sorry for the trouble. Could you tell us which device and version you are using?",
    "\nAgent: Thanks for letting us know. We have refunded the duplicate charge, it takes 3 to 5 days.",
    "\nAgent: That is not the experience we want for you. Our team will call you within the hour.",
    "\nAgent: Please try restarting it once; if that does not help, we will send a replacement.",
    "\nAgent: We can rebook you on the next available flight. Shall we go ahead?",
]
CUSTOMER_FOLLOW_UPS = [
    "\nCustomer: Done, I just sent you the details in a DM.",
    "\nCustomer: Thank you, that would be great.",
    "\nCustomer: I tried that already and it did not work.",
    "\nCustomer: Okay, I will wait for the call then.",
]
AGENT_CLOSINGS = [
    "\nAgent: Got it, we will reply there shortly.",
    "\nAgent: You are welcome, have a nice day!",
    "\nAgent: Understood, we have escalated it to our specialists.",
]
FILLER = " la"


def dialogue_script(loop_after_closing: bool = False) -> dict[str, list[str]]:
    """Four-turn dialogues (6 x 6 x 4 x 3 of them). With `loop_after_closing`, half of them do not end after the
    closing turn but repeat FILLER until max_new_tokens (or the loop detector) stops them."""
    script = {START: CUSTOMER_OPENERS}
    script |= {line: AGENT_REPLIES for line in CUSTOMER_OPENERS}
    script |= {line: CUSTOMER_FOLLOW_UPS for line in AGENT_REPLIES}
    script |= {line: AGENT_CLOSINGS for line in CUSTOMER_FOLLOW_UPS}
    script |= {line: [EOS, FILLER] if loop_after_closing else [EOS] for line in AGENT_CLOSINGS}
    if loop_after_closing:
        script[FILLER] = [FILLER]
    return script


def scripted_text(*lines: str) -> str:
    return "".join(lines)


def save_scripted_model(folder: Path, script: dict[str, list[str]]) -> Path:
    """Tokenizer (tiny BPE + the script's lines as tokens, our ChatML template) and the scripted Llama."""
    import torch
    from tokenizers import AddedToken
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer()
    lines = sorted({line for key, successors in script.items() for line in [key, *successors]} - {START, EOS})
    tokenizer.add_tokens([AddedToken(line, normalized=False, special=False) for line in lines])
    prompts.ensure_chat_template(tokenizer)
    probe = prompts.render_prompt(tokenizer, prompts.generate_messages("a summary"))
    start_id = tokenizer(probe, add_special_tokens=False)["input_ids"][-1]

    def token_id(content: str) -> int:
        return start_id if content == START else tokenizer.convert_tokens_to_ids(content)

    states = list(script)
    hidden = max(16, -(-(len(states) + 1) // 4) * 4)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    default_state = len(states)  # any token the script does not know leads to the end of the turn
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embeddings = torch.zeros(len(tokenizer), hidden)
        embeddings[:, default_state] = 1.0
        head = torch.zeros(len(tokenizer), hidden)
        head[tokenizer.eos_token_id, default_state] = LOGIT
        for state, content in enumerate(states):
            embeddings[token_id(content)] = 0.0
            embeddings[token_id(content), state] = 1.0
            for successor in script[content]:
                head[token_id(successor), state] = LOGIT
        model.model.embed_tokens.weight.copy_(embeddings)
        model.lm_head.weight.copy_(head)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
