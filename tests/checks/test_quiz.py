"""The "check your understanding" questions: ``cu.checks.quiz``."""

import pytest

from course_utils.checks import Question, quiz


def test_feedback_for_right_and_wrong_choices():
    q = Question("2 + 2?", ["3", "4", "5"], answer=1, explain="Count.", wrong={0: "One short."})
    right, text = q.feedback(1)
    assert right and text.startswith("✅") and "Count." in text
    wrong, text = q.feedback(0)
    assert not wrong and "One short." in text and "Count." not in text
    wrong, text = q.feedback(2)
    assert not wrong and text.startswith("❌") and "Count." not in text


@pytest.mark.parametrize("choices, answer, wrong", [
    (["only one"], 0, None),
    (["a", "b"], 2, None),
    (["a", "b"], True, None),
    (["a", "b"], 0, {0: "the right one cannot have a wrong hint"}),
    (["a", "b"], 0, {5: "no such choice"}),
])
def test_bad_questions_are_refused(choices, answer, wrong):
    with pytest.raises(ValueError):
        Question("?", choices, answer, "", wrong)


def test_outside_a_notebook_the_question_is_printed_without_its_answer(capsys):
    q = quiz("Which is even?", ["3", "4"], answer=1, explain="4 = 2 x 2.")
    out = capsys.readouterr().out
    assert "Which is even?" in out and "a) 3" in out and "b) 4" in out
    assert "4 = 2 x 2" not in out and isinstance(q, Question)
