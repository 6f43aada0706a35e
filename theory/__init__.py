"""Theory: linearised training, multi-task features, teacher-student limits, ExSum.

Each method lives in its own sub-package (:mod:`sciprob.theory.linearisation`,
:mod:`sciprob.theory.teacher_student`); import from there.
"""

__all__: list[str] = []
