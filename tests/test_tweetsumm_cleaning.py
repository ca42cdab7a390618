"""Each cleaning rule on the cases it is meant for, and on the ones it must leave alone."""

import pytest

from dialoghub.data.cleaning import (
    Cleaner,
    CleaningOptions,
    drop_empty_turns,
    lowercase,
    normalize_whitespace,
    remove_agent_signoffs,
    remove_handles,
    remove_user_ids,
    replace_urls,
    strip_special_characters,
    unescape_html_entities,
)
from dialoghub.data.records import AGENT, CUSTOMER, Dialog, Location, Turn


@pytest.mark.parametrize(
    ("text", "expected", "changes"),
    [
        ("fish &amp; chips &gt;&gt; &#39;ok&#x21;", "fish & chips >> 'ok!", 5),
        ("reconnect &amp then retry", "reconnect & then retry", 1),
        ("AT&T and R&D stay", "AT&T and R&D stay", 0),
        ("&notanentity; stays", "&notanentity; stays", 0),
    ],
)
def test_unescape_html_entities(text, expected, changes):
    assert unescape_html_entities(text) == (expected, changes)


@pytest.mark.parametrize(
    ("text", "expected", "changes"),
    [
        ("see https://t.co/m9DPQbkftD.", "see [URL].", 1),
        ("(http://example.com/a?b=1) and www.shop.com/x", "([URL]) and [URL]", 2),
        ("no link: t.co is just text", "no link: t.co is just text", 0),
    ],
)
def test_replace_urls(text, expected, changes):
    assert replace_urls(text) == (expected, changes)


@pytest.mark.parametrize(
    ("text", "expected", "changes"),
    [
        ("@135060 Let's look into this.", "Let's look into this.", 1),
        ("Hello @799161, thank you", "Hello, thank you", 1),
        ("@AmazonHelp @115821 Wow", "@AmazonHelp Wow", 1),
        ("call 0800 123 or mail a@123.com", "call 0800 123 or mail a@123.com", 0),
        ("@AppleSupport hi", "@AppleSupport hi", 0),
    ],
)
def test_remove_user_ids(text, expected, changes):
    assert remove_user_ids(text) == (expected, changes)


@pytest.mark.parametrize(
    ("text", "expected", "changes"),
    [
        ("@AppleSupport @Apple My watch is on 4.1.", "My watch is on 4.1.", 2),
        ("the @Tesco website tab", "the website tab", 1),
        ("mail me at jo@example.com", "mail me at jo@example.com", 0),
    ],
)
def test_remove_handles(text, expected, changes):
    assert remove_handles(text) == (expected, changes)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Keep us posted, Dave! ^SM", "Keep us posted, Dave!"),
        ("Happy to help. ^Beth S. 2/2", "Happy to help. 2/2"),
        ("Sorry for the delay. *TCC", "Sorry for the delay."),
        ("We can dig in *DanKing", "We can dig in"),
        ("Keep us posted /TF [URL]", "Keep us posted [URL]"),
        ("please DM me! -MP", "please DM me!"),
        ("always here for you! –EK", "always here for you!"),
        ("Is it a modem? ~AT", "Is it a modem?"),
        ("for the call centre ~ Olly", "for the call centre"),
        ("Thanks - Emma", "Thanks"),
        ("Thanks - Ross. Hello again", "Thanks. Hello again"),
        ("Have a good day - Laura :)", "Have a good day :)"),
    ],
)
def test_remove_agent_signoffs(text, expected):
    cleaned, changes = remove_agent_signoffs(text)
    assert (cleaned, changes) == (expected, 1)


@pytest.mark.parametrize(
    "text",
    [
        "Hi there Len - If you send us a DM we will help",
        "Sorry to see this - I'll report it",
        "open Mon - Fri, 8am - 6pm",
        "available 24/7 and/or by phone",
        "the B-Team and x-ray",
    ],
)
def test_remove_agent_signoffs_keeps_dashes_and_slashes(text):
    assert remove_agent_signoffs(text) == (text, 0)


def test_normalize_whitespace_counts_each_run():
    assert normalize_whitespace("  a\n\nb\tc\u00a0d  e ") == ("a b c d e", 6)
    assert normalize_whitespace("already clean") == ("already clean", 0)


def test_opt_in_rules():
    assert lowercase("DM Us") == ("dm us", 1)
    assert lowercase("dm us") == ("dm us", 0)
    assert strip_special_characters("Thanks 😊👍 £5 – ok") == ("Thanks  £5 – ok", 2)


def test_drop_empty_turns_merges_the_neighbours():
    turns = [Turn(CUSTOMER, "hi"), Turn(AGENT, ""), Turn(CUSTOMER, "anyone?"), Turn(AGENT, "yes")]
    assert drop_empty_turns(turns) == ([Turn(CUSTOMER, "hi anyone?"), Turn(AGENT, "yes")], 1)


def _dialog():
    return Dialog(
        conversation_id="c1",
        split="train",
        dialogue=[
            Turn(CUSTOMER, "@AcmeHelp my order &amp; invoice are missing 😞 https://t.co/x"),
            Turn(AGENT, "@123456 Sorry! Please DM us. ^JK"),
            Turn(CUSTOMER, "@AcmeHelp @654321"),
            Turn(AGENT, "Thanks for waiting. Fixed now. -MP"),
        ],
        summaries=["Customer  reports a missing order at @AcmeHelp &amp invoice.", "Agent fixes it."],
        extractive_summaries=[[Turn(AGENT, "Sorry! Please DM us. ^JK")]],
        location=Location("train.jsonl", 1),
    )


def test_cleaner_keeps_case_and_emoji_and_spares_summary_mentions():
    cleaned, counts = Cleaner().clean_dialog(_dialog())
    assert cleaned.dialogue == [
        Turn(CUSTOMER, "my order & invoice are missing 😞 [URL]"),
        Turn(AGENT, "Sorry! Please DM us. Thanks for waiting. Fixed now."),
    ]
    # Annotators' summaries only get the formatting rules: their "@AcmeHelp" is part of what they wrote.
    assert cleaned.summaries == ["Customer reports a missing order at @AcmeHelp & invoice.", "Agent fixes it."]
    assert cleaned.extractive_summaries == [[Turn(AGENT, "Sorry! Please DM us.")]]
    assert counts["remove_customer_handles"] == 2
    assert counts["remove_user_ids"] == 2
    assert counts["remove_agent_signoffs"] == 3
    assert counts["drop_empty_turns"] == 1
    assert counts["lowercase"] == 0 and "lowercase" not in {step["name"] for step in Cleaner().describe()}


def test_cleaner_opt_in_normalisation_applies_to_every_text():
    options = CleaningOptions(lowercase=True, strip_special_characters=True)
    cleaned, counts = Cleaner(options).clean_dialog(_dialog())
    assert cleaned.dialogue[0] == Turn(CUSTOMER, "my order & invoice are missing [URL]")
    assert cleaned.summaries[1] == "agent fixes it."
    assert counts["strip_special_characters"] == 1
    assert [step["name"] for step in Cleaner(options).describe()][-3:] == [
        "strip_special_characters",
        "normalize_whitespace",
        "drop_empty_turns",
    ]
