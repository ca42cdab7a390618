"""Golden cases for the parser and the text filters of synthetic dialogues: crafted model outputs, each with the
exact dialogue and reasons expected. No model is involved."""

import pytest

from dialoghub.models import prompts
from dialoghub.synthetic import filters
from dialoghub.synthetic.filters import DuplicateIndex, FilterConfig, check_dialogue, parse_generated

SUMMARY = (
    "Customer is complaining that the parcel ordered last week has not arrived. "
    "Agent asks the customer to send the order number in a DM so they can track it."
)
GOOD = (
    "Customer: Hi, my parcel from last week still hasn't arrived. Any idea where it is?\n"
    "Agent: Sorry to hear that! Could you DM us your order number so we can check the tracking?\n"
    "Customer: Sent it just now.\n"
    "Agent: Thanks, we can see it is at the local depot and will be delivered tomorrow."
)
CONFIG = FilterConfig()
LENIENT = FilterConfig(allow_continuation_lines=True)


def reasons(text, stop_reason="eos", summary=SUMMARY, examples=()):
    return check_dialogue(text, summary, CONFIG, stop_reason=stop_reason, examples=examples).reasons


def test_a_good_dialogue_parses_and_passes():
    parsed = check_dialogue(GOOD, SUMMARY, CONFIG, stop_reason="eos")
    assert parsed.reasons == []
    assert parsed.dialogue == [
        {"role": "Customer", "text": "Hi, my parcel from last week still hasn't arrived. Any idea where it is?"},
        {
            "role": "Agent",
            "text": "Sorry to hear that! Could you DM us your order number so we can check the tracking?",
        },
        {"role": "Customer", "text": "Sent it just now."},
        {"role": "Agent", "text": "Thanks, we can see it is at the local depot and will be delivered tomorrow."},
    ]


def test_the_dialogue_ends_at_the_first_line_that_is_not_a_turn():
    trailing = GOOD + "\n\nThe customer's answer is to follow up tomorrow.\nCustomer: And another thing."
    parsed = check_dialogue(trailing, SUMMARY, CONFIG, stop_reason="eos")
    assert parsed.reasons == []
    assert parsed.dialogue == check_dialogue(GOOD, SUMMARY, CONFIG).dialogue
    assert parsed.trailing_text == "The customer's answer is to follow up tomorrow.\nCustomer: And another thing."
    # Cut by max_new_tokens after the dialogue ended: the dialogue itself is whole.
    assert reasons(trailing, stop_reason="length") == []
    wrapped = "Customer: My card was charged twice.\nAgent: We are sorry!\nWe have refunded one of the charges."
    assert parse_generated(wrapped).dialogue[1]["text"] == "We are sorry!"
    assert (
        parse_generated(wrapped, LENIENT).dialogue[1]["text"] == "We are sorry! We have refunded one of the charges."
    )
    assert parse_generated(wrapped, LENIENT).trailing_text == ""


def test_quotes_around_turns_and_wrapped_lines_are_normalized():
    text = 'Customer: "My card was charged twice."\n\nAgent: "We are sorry!\nWe have refunded one of the charges."'
    parsed = parse_generated(text, LENIENT)
    assert parsed.reasons == []
    assert parsed.quotes_stripped == 2
    assert parsed.dialogue == [
        {"role": "Customer", "text": "My card was charged twice."},
        {"role": "Agent", "text": "We are sorry! We have refunded one of the charges."},
    ]
    # Quotes inside a turn are the speaker's, not a wrapper.
    assert parse_generated('Customer: "Hi" is all they "said"\nAgent: ok').dialogue[0]["text"] == (
        '"Hi" is all they "said"'
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Here is the conversation:\nCustomer: Hi\nAgent: Hello", [filters.ROLE_PARSE]),
        ("I'm sorry, I can't help with that.", [filters.ROLE_PARSE]),
        ("", [filters.ROLE_PARSE]),
        ("Customer:\nAgent: Hello", [filters.ROLE_PARSE]),
        ('Customer: ""\nAgent: Hello there', [filters.ROLE_PARSE]),
    ],
)
def test_texts_that_are_not_dialogues_fail_the_parse(text, expected):
    parsed = check_dialogue(text, SUMMARY, CONFIG, stop_reason="eos")
    assert parsed.reasons == expected
    assert parsed.dialogue == []
    assert parsed.details[0].startswith("role_parse: ")


def test_continuation_lines_and_links_are_not_speakers():
    text = GOOD + "\nhttps://example.com/track is the link.\nStep 1: open the app, which we think helps."
    assert check_dialogue(text, SUMMARY, LENIENT).reasons == []
    # With continuation lines allowed, another speaker's line would be folded into the turn before it.
    for speaker in ("Client", "The Company"):
        text = f"Customer: My order is late again this week.\n{speaker}: That depends.\nAgent: Sorry, DM us."
        assert check_dialogue(text, SUMMARY, LENIENT).details == [
            f"role_parse: a line starts with the speaker {speaker!r}, not Customer/Agent"
        ]


def test_role_rules():
    same_role_twice = GOOD.replace("Customer: Sent it just now.", "Agent: Sent it just now.")
    assert reasons(same_role_twice) == [filters.ROLES_ALTERNATE]
    customer_only = (
        "Customer: Where is my parcel, it is late again this week?\nCustomer: Hello? Is anybody there at all?"
    )
    assert reasons(customer_only) == [filters.ROLES_ALTERNATE, filters.BOTH_ROLES]
    assert "no Agent turn" in check_dialogue(customer_only, SUMMARY, CONFIG).details[1]


def test_a_text_cut_by_max_new_tokens_is_truncated_even_when_it_parses():
    assert reasons(GOOD, stop_reason="length") == [filters.TRUNCATED]
    assert reasons("Here it is: Customer: hi", stop_reason="length") == [filters.ROLE_PARSE, filters.TRUNCATED]


def test_turn_count_and_length_bounds():
    one_turn = "Customer: My parcel has not arrived and I have been waiting for more than a week now, help."
    assert reasons(one_turn) == [filters.BOTH_ROLES, filters.TURN_COUNT]
    many = "\n".join(
        f"{role}: This is turn number {index} of a very long exchange about parcels."
        for index, role in zip(range(22), ["Customer", "Agent"] * 11, strict=True)
    )
    assert filters.TURN_COUNT in reasons(many)
    rambling = GOOD.replace("Sent it just now.", " ".join(f"word{index}" for index in range(201)))
    assert reasons(rambling) == [filters.TURN_LENGTH]
    assert reasons("Customer: Parcel?\nAgent: DM us.") == [filters.DIALOGUE_LENGTH]
    parsed = check_dialogue(rambling, SUMMARY, CONFIG)
    assert parsed.details == ["turn_length: turns [2] have [201] words"]


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        (GOOD + "<|im_end|>\n<|im_start|>user", "chat-template token"),
        (GOOD + "\nAssistant: Is there anything else I can help you with?", "foreign label 'Assistant:'"),
        ("User: write it\n" + GOOD, None),  # text before the first turn: a parse failure, not leakage
        (GOOD + "\nSummary: the parcel is late.", "foreign label 'Summary:'"),
        (
            GOOD.replace("Sent it just now.", "Write the conversation that this summary describes, please."),
            "repeats the instructions",
        ),
        (
            GOOD.replace(
                "Sent it just now.",
                "Agent asks the customer to send the order number in a DM so they can track it.",
            ),
            "copies the summary sentence",
        ),
        (
            GOOD.replace("Sent it just now.", "The customer is complaining about a late parcel."),
            "narrates like a summary",
        ),
    ],
)
def test_prompt_leakage(text, detail):
    parsed = check_dialogue(text, SUMMARY, LENIENT, stop_reason="eos")
    if detail is None:
        assert parsed.reasons == [filters.ROLE_PARSE]
    else:
        assert parsed.reasons == [filters.PROMPT_LEAKAGE]
        assert detail in parsed.details[0]


def test_chat_scaffolding_after_the_dialogue_is_dropped_with_the_rest():
    parsed = check_dialogue(GOOD + "\nAssistant: Anything else?\n<|im_start|>user", SUMMARY, CONFIG)
    assert (parsed.reasons, parsed.trailing_text) == ([], "Assistant: Anything else?\n<|im_start|>user")
    inside = GOOD.replace("Sent it just now.", "Sent it just now.<|im_end|>")
    assert reasons(inside) == [filters.PROMPT_LEAKAGE]


def test_copying_a_few_shot_example_is_leakage():
    example = prompts.parse_dialogue(GOOD)
    assert reasons(GOOD, examples=[example]) == [filters.PROMPT_LEAKAGE]
    detail = check_dialogue(GOOD, SUMMARY, CONFIG, examples=[[], example]).details[0]
    assert detail == "prompt_leakage: 100% of its word 5-grams come from few-shot example 1"
    other = [
        {"role": "Customer", "text": "My phone screen cracked after one day."},
        {"role": "Agent", "text": "Oh no!"},
    ]
    assert reasons(GOOD, examples=[other]) == []


@pytest.mark.parametrize(
    ("text", "stop_reason", "detail"),
    [
        (GOOD.replace("Sent it just now.", "Sorry sorry sorry sorry sorry sorry."), "eos", "repeated back to back"),
        # Short turns may repeat ("Thanks a lot!"), longer ones may not.
        (GOOD + "\nCustomer: Thanks a lot!\nAgent: You are welcome!\nCustomer: Thanks a lot!", "eos", None),
        (
            GOOD
            + "\nCustomer: Any news?\nAgent: Sorry to hear that! Could you DM us your order number so we can check "
            "the tracking?",
            "eos",
            "is said twice",
        ),
        (
            "Customer: I'm sorry for the inconvenience but I need help. I'm sorry for the inconvenience but I need "
            "it.\nAgent: I'm sorry for the inconvenience but we need your number. I'm sorry for the inconvenience.",
            "eos",
            "of its word 3-grams are repeats",
        ),
        (GOOD, "loop", "the loop detector stopped the generation"),
    ],
)
def test_repetition(text, stop_reason, detail):
    parsed = check_dialogue(text, SUMMARY, CONFIG, stop_reason=stop_reason)
    if detail is None:
        assert parsed.reasons == []
    else:
        assert parsed.reasons == [filters.REPETITION]
        assert detail in parsed.details[0]


def test_every_failed_filter_is_listed():
    text = 'Customer: "Hi."\nCustomer: Assistant: <|im_start|> la la la la la la la'
    assert reasons(text, stop_reason="length") == [
        filters.ROLES_ALTERNATE,
        filters.BOTH_ROLES,
        filters.TRUNCATED,
        filters.DIALOGUE_LENGTH,
        filters.PROMPT_LEAKAGE,
        filters.REPETITION,
    ]


def test_duplicates_exact_and_near():
    index = DuplicateIndex(jaccard_threshold=0.8)
    original = prompts.parse_dialogue(GOOD)
    assert index.find(original) is None
    index.add("synthetic-1-0", original)
    same_but_for_case = [{**turn, "text": turn["text"].upper().replace(",", "")} for turn in original]
    assert index.find(same_but_for_case) == (filters.EXACT_DUPLICATE, "synthetic-1-0", 1.0)
    one_word_changed = [dict(turn) for turn in original]
    one_word_changed[3]["text"] = one_word_changed[3]["text"].replace("tomorrow", "on Monday")
    reason, other, jaccard = index.find(one_word_changed)
    assert (reason, other) == (filters.NEAR_DUPLICATE, "synthetic-1-0")
    assert 0.8 <= jaccard < 1.0
    different = prompts.parse_dialogue("Customer: My phone screen cracked after a day.\nAgent: Please visit a store.")
    assert index.find(different) is None


def test_human_tweetsumm_dialogues_pass_the_text_filters():
    """The thresholds reject what people do not write: nearly every real dialogue passes."""
    from dialoghub.core.paths import shared_data_dir
    from dialoghub.data.tweetsumm import build

    rows = [row for rows in build(shared_data_dir() / "tweetsumm").rows["default"].values() for row in rows]
    failed = [
        row["conversation_id"]
        for row in rows
        if check_dialogue(
            prompts.render_dialogue(row["dialogue"]), row["summaries"][0], CONFIG, stop_reason="eos"
        ).reasons
    ]
    assert len(rows) == 1099
    assert len(failed) <= 0.01 * len(rows), failed
