"""The reply parser: responses survive, and echoes, meta lines, tags, errors and descriptions are dropped and counted."""

from __future__ import annotations

import pytest
from conftest import REPO

from synthmix.data.rubric import load_rubric
from synthmix.steps.generate import build_messages
from synthmix.steps.parsing import parse_reply

RUBRIC = load_rubric(REPO / "src/synthmix/data/default_data/tutor_error_feedback/rubric.yaml")


def prompt_echo_lines(label: int) -> tuple[str, ...]:
    """What generation passes as ``echo_lines``: the question, the prompt's lines, the other label's examples."""
    messages = build_messages(RUBRIC, label, 10)
    return (RUBRIC.question, *messages[1]["content"].splitlines(), *RUBRIC.examples(1 - label))


@pytest.mark.parametrize("reply, expected", [
    ("1. Can you show me how you added them?\n2) What does the 4 stand for here?\n3 - Draw both fractions first please",
     ["Can you show me how you added them?", "What does the 4 stand for here?", "Draw both fractions first please"]),
    ("- Walk me through your steps\n* Is 4/6 bigger than 3/4?\n\u2022 Try a pizza picture for this",
     ["Walk me through your steps", "Is 4/6 bigger than 3/4?", "Try a pizza picture for this"]),
    ('"Tell me how you got 4/6."\n\u201cWhy did you add the bottoms?\u201d\n1. "Check the parts are the same size"',
     ["Tell me how you got 4/6.", "Why did you add the bottoms?", "Check the parts are the same size"]),
    ("[1] What is 3/4 of a pizza?\n[2] How big is each piece?\nA positive response: Show me your steps",
     ["What is 3/4 of a pizza?", "How big is each piece?", "Show me your steps"]),
    ("Response 4: Okay, so how did you land on 4/6?", ["Okay, so how did you land on 4/6?"]),
    ("", []),
    ("\n\n   \n", []),
    ("1. Explain your first step to me 2. Are the pieces the same size? 3. What would a picture show?",
     ["Explain your first step to me", "Are the pieces the same size?", "What would a picture show?"]),
    ("Here are 3 positive responses:\nHow did you get the 6 at the bottom?\nOk\nSure! Let's see.\nPositive responses:",
     ["How did you get the 6 at the bottom?"]),
])
def test_parse_reply_handles_awkward_replies(reply, expected):
    responses, _ = parse_reply(reply)
    assert responses == expected


def test_parse_reply_counts_rejects_by_reason():
    prompt_line = "Draft 3 positive responses to the question, one per line, no numbering."
    responses, rejects = parse_reply(f"{prompt_line}\n\nHere are some:\nNo\nWhat did you do with the denominators?",
                                     echo_lines=(prompt_line,))
    assert responses == ["What did you do with the denominators?"]
    assert dict(rejects) == {"restates_instruction": 1, "blank": 1, "meta": 1, "too_short": 1}


@pytest.mark.parametrize("line", [
    "Draft 14 negative responses to the question, one per line.",
    "Draft 7 positive responses to the question: 12",
    "Write 5 more positive responses, no numbering",
    "Generate ten negative answers for the tutor.",
    "3 negative responses to the question, one per line",
    "Draft 25, 30, 40, 50, 6, 7, 8, 9, 10",  # the request's verb and counts, seen in a t = 0.7 pool
    "Draft 50-word paragraphs of responses to this type of sentence using bold text and no headings",
])
def test_restated_instructions_are_dropped(line):
    responses, rejects = parse_reply(f"{line}\nHow would you check whether 4/6 is bigger than 3/4?", prompt_echo_lines(0))
    assert responses == ["How would you check whether 4/6 is bigger than 3/4?"]
    assert dict(rejects) == {"restates_instruction": 1}


@pytest.mark.parametrize("line", [
    "Write 3/4 as 6/8 first, then add the two fractions.",  # the request's verb, but a response to Maya
    "Write down both fractions with the same bottom number.",
])
def test_responses_that_start_with_a_request_verb_are_kept(line):
    responses, rejects = parse_reply(line, prompt_echo_lines(0))
    assert responses == [line] and not rejects


@pytest.mark.parametrize("line", [
    "What would you say to Maya next?",  # the question
    "Question: What would you say to Maya next? Write exactly what you would say to her.",
    "She added the numerators (3 + 1) and the denominators (4 + 2).",  # the scenario
    "Good job Maya, that looks right! Let's try the next one.",  # the other label's example (asked for 1)
])
def test_echoes_of_the_prompt_are_dropped(line):
    responses, rejects = parse_reply(f"{line}\nWhat do the 4 and the 2 stand for in your fractions?", prompt_echo_lines(1))
    assert responses == ["What do the 4 and the 2 stand for in your fractions?"]
    assert dict(rejects) == {"echo_of_prompt": 1}


@pytest.mark.parametrize("line", [
    "Here are 10 responses:",
    "Here are ten negative responses a trainee might give",
    "Sure, here you go",
    "Certainly! I can help with that.",
    "I hope these help with your training materials.",
    "Let me know if you need more examples.",
    "Note: each line stands alone",
    "These responses vary in how careful the tutor is.",
    "Below are several drafts for the negative case.",
])
def test_meta_lines_are_dropped(line):
    responses, rejects = parse_reply(f"{line}\nNice try, now what is one half of a pizza plus three quarters?")
    assert responses == ["Nice try, now what is one half of a pizza plus three quarters?"]
    assert dict(rejects) == {"meta": 1}


@pytest.mark.parametrize("line", [
    "A negative response:", "A negative response: 10.", "Negative responses", "Positive response 3:",
    "4. A positive response - 2", "**Negative response**",
])
def test_label_tags_without_a_response_are_dropped(line):
    responses, rejects = parse_reply(f"{line}\nWhy did you add the bottom numbers together?")
    assert responses == ["Why did you add the bottom numbers together?"]
    assert dict(rejects) == {"label_tag": 1}


@pytest.mark.parametrize("line", [
    "This response asks Maya to explain her thinking without giving the answer.",
    "The response would be coded 0 because it hands over the procedure.",
    "In this response the tutor uses a number line.",
    "The tutor praises the effort and then asks about the pieces.",
    "Asks the student to compare the fraction with one whole.",
    "Ask her what the denominator tells us about the pieces.",
    "This is a good example of a constructive response.",
    "She added the tops and the bottoms, which is the classic slip.",
    "The student wrote 4/6 because she added straight across.",
    "Score: 1",
])
def test_lines_not_in_the_voice_asked_for_are_dropped(line):
    responses, rejects = parse_reply(f"{line}\nHold on, is 4/6 more or less than the 3/4 you started with?")
    assert responses == ["Hold on, is 4/6 more or less than the 3/4 you started with?"]
    assert dict(rejects) == {"not_in_voice": 1}


def test_error_text_inside_a_reply_never_becomes_a_response():
    reply = "Can you draw 3/4 and 1/2 as bars?\nError: rate limit exceeded. Please retry after 20s."
    responses, rejects = parse_reply(reply)
    assert responses == ["Can you draw 3/4 and 1/2 as bars?"] and dict(rejects) == {"error_text": 1}


@pytest.mark.parametrize("response", [
    "Okay Maya, what do you think the 4 in 3/4 tells us?",
    "Here's a hint: are fourths and halves the same size?",
    "I'm sorry, but 4/6 can't be right, can you check it with a drawing?",
    "The answer is 5/4, you have to find a common denominator first.",
    "Good effort! Tell me how you got the 6 on the bottom.",
    "Let me know what you think the bottom number means.",
    "Sorry Maya, that is wrong, the answer is 1 1/4.",
])
def test_real_responses_are_kept(response):
    responses, rejects = parse_reply(response, prompt_echo_lines(1))
    assert responses == [response], dict(rejects)


def test_truncated_reply_drops_its_cut_last_line():
    responses, rejects = parse_reply("How did you add these?\nWhat does the bottom number mean in", truncated=True)
    assert responses == ["How did you add these?"] and rejects["truncated"] == 1


def test_one_long_line_without_numbers_stays_one_response():
    line = "Maya, look at step 2. What happens to the denominators when you add? " * 3
    responses, _ = parse_reply(line)
    assert len(responses) == 1
