"""Summaries that need no model, over rows of `org/tweetsumm-clean` (`dialogue`: list of {role, text}).

- `lead`: the first customer turn, then the first agent turn.
- `templated-lead`: the same two turns inside the words TweetSumm's annotators open their summaries with:
  `TEMPLATED_LEAD`. In the train split the most frequent opening words are "Customer is complaining about/that"
  (861 of 2,629 summaries) and agent sentences mostly start with "Agent ..."; such template words alone earn a
  large share of ROUGE on this data, so every model must be shown beside this row.
"""

from collections.abc import Callable, Iterable, Mapping

from dialoghub.data.records import AGENT, CUSTOMER

TEMPLATED_LEAD = "Customer is complaining that {customer} Agent {agent}"


def _first_turn_text(row: Mapping, role: str, row_id: str) -> str | None:
    for index, turn in enumerate(row["dialogue"]):
        if (
            not isinstance(turn, Mapping)
            or not isinstance(turn.get("role"), str)
            or not isinstance(turn.get("text"), str)
        ):
            raise ValueError(f"{row_id}: dialogue turn {index} is not a {{role, text}} mapping of strings: {turn!r}")
        if turn["role"] == role:
            return turn["text"].strip()
    return None


def _first_turns(row: Mapping) -> tuple[str, str | None]:
    row_id = row.get("conversation_id", "<no conversation_id>")
    if not row.get("dialogue"):
        raise ValueError(f"{row_id}: the row has no dialogue turns")
    customer = _first_turn_text(row, CUSTOMER, row_id)
    if customer is None:
        raise ValueError(f"{row_id}: the dialogue has no {CUSTOMER} turn")
    return customer, _first_turn_text(row, AGENT, row_id)


def lead(row: Mapping) -> str:
    """The first customer turn and the first agent turn (if any), joined by a space."""
    customer, agent = _first_turns(row)
    return customer if agent is None else f"{customer} {agent}"


def templated_lead(row: Mapping) -> str:
    """`TEMPLATED_LEAD` filled with the first customer and agent turns (an empty agent part if there is none)."""
    customer, agent = _first_turns(row)
    return TEMPLATED_LEAD.format(customer=customer, agent=agent or "").strip()


BASELINES: dict[str, Callable[[Mapping], str]] = {"lead": lead, "templated-lead": templated_lead}


def baseline_predictions(name: str, rows: Iterable[Mapping]) -> list[str]:
    """The predictions of baseline `name` ("lead" or "templated-lead") for each row."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; expected one of {sorted(BASELINES)}")
    return [BASELINES[name](row) for row in rows]
