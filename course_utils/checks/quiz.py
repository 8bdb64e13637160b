""""Check your understanding": multiple-choice questions with immediate feedback.

Every lesson ends with three to five questions.  In JupyterLab each one is a set of
buttons: a click shows at once whether the choice is right and why (the explanation is
written for the wrong choices too).  Nothing is graded and nothing is stored.

::

    cu.checks.quiz(
        "Which operator is shift invariant, with kernel 1/r?",
        ["the backprojection A^T", "A^T A: project, then backproject", "the ramp filter"],
        answer=1,
        explain="Backprojecting the projections of a point gives a 1/r blur around it: "
                "that is A^T A applied to a delta.  A^T alone maps sinograms to images "
                "and has no kernel in the image plane.")

The widgets never use an Output widget (whose capture is what hangs headless runs,
jupyter/nbclient#312): feedback is written into an HTML widget's value.  Outside a
notebook (plain Python, a grader) the question and its choices are printed, without the
answer.
"""

from __future__ import annotations

import html

__all__ = ["quiz", "Question"]


class Question:
    """One multiple-choice question: its text, choices, the right one and why.

    Parameters
    ----------
    text : str
        The question (Markdown-free plain text; ``$...$`` is shown as written).
    choices : list of str
        At least two possible answers.
    answer : int
        Index of the right choice in ``choices``.
    explain : str
        Why the right choice is right (shown after any click).
    wrong : dict of int to str, optional
        A specific hint for some wrong choices, shown when that choice is clicked.
    """

    def __init__(self, text: str, choices, answer: int, explain: str, wrong=None):
        choices = [str(c) for c in choices]
        if len(choices) < 2:
            raise ValueError("a question needs at least two choices")
        if isinstance(answer, bool) or not isinstance(answer, int) \
                or not 0 <= answer < len(choices):
            raise ValueError(f"answer must be the index of a choice, 0 to {len(choices) - 1}, "
                             f"got {answer!r}")
        wrong = dict(wrong or {})
        if answer in wrong or not set(wrong) <= set(range(len(choices))):
            raise ValueError("wrong hints must be keyed by indices of wrong choices")
        self.text, self.choices, self.answer = str(text), choices, answer
        self.explain, self.wrong = str(explain), wrong

    def feedback(self, choice: int) -> tuple[bool, str]:
        """Whether ``choice`` is right, and the sentence to show for it."""
        if choice == self.answer:
            return True, f"✅ Right. {self.explain}"
        hint = self.wrong.get(choice, "Not quite: think again before you look below.")
        return False, f"❌ {hint}"

    def __repr__(self) -> str:
        lines = [self.text] + [f"  {chr(97 + i)}) {c}" for i, c in enumerate(self.choices)]
        return "\n".join(lines)


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def quiz(text: str, choices, answer: int, explain: str, wrong=None) -> Question:
    """Show one "check your understanding" question with immediate feedback.

    Parameters are those of :class:`Question`.  In a notebook, the choices are buttons
    and a click shows ✅ or ❌ with the explanation; elsewhere the question is printed.
    Used at the end of every lesson.

    Returns
    -------
    Question
        The question (its ``_ipython_display_`` shows nothing more, so a cell that ends
        with ``cu.checks.quiz(...)`` shows the question once).
    """
    question = Question(text, choices, answer, explain, wrong)
    if not _in_notebook():
        print(repr(question))
        return question
    import ipywidgets as widgets
    from IPython.display import display

    feedback = widgets.HTML(value="")
    buttons = []

    def on_click(button):
        right, sentence = question.feedback(button.index)
        for b in buttons:
            b.button_style = ""
        button.button_style = "success" if right else "danger"
        feedback.value = html.escape(sentence)

    for index, choice in enumerate(question.choices):
        button = widgets.Button(description=f"{chr(97 + index)}) {choice}",
                                layout=widgets.Layout(width="auto"),
                                tooltip=choice)
        button.index = index
        button.on_click(on_click)
        buttons.append(button)
    title = widgets.HTML(value=f"<b>{html.escape(question.text)}</b>")
    display(widgets.VBox([title, *buttons, feedback]))
    question._ipython_display_ = lambda: None
    return question
