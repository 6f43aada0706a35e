"""Where each experiment lives: name -> module that registers it.

The command line imports a module only when one of its experiments is listed
or run, so ``sciprob --help`` stays instant. Adding an experiment means adding
its line here; ``tests/sciprob/test_catalog.py`` checks every line registers
exactly the names it claims.
"""

CATALOG: dict[str, str] = {
    "fem-poisson-convergence": "sciprob.physics.experiments",
    "pddlvm-poisson-1d": "sciprob.physics.pddlvm_experiments",
    "pddlvm-nonlinear-poisson-1d": "sciprob.physics.pddlvm_experiments",
    "pddlvm-poisson-2d": "sciprob.physics.pddlvm_experiments",
    "gpide-tracking": "sciprob.control.experiments",
    "iterative-linearisation": "sciprob.theory.linearisation.experiments",
    "teacher-student": "sciprob.theory.teacher_student.experiments",
    "relora-lm": "sciprob.learning.lowrank.experiments",
    "tsc": "sciprob.learning.tsc.experiments",
    "update-rules": "sciprob.learning.optim.experiments",
    "sparsity": "sciprob.learning.sparse.experiments",
    "famus-noisy-labels": "sciprob.learning.reweighting.experiments",
    "relora-scaling": "sciprob.learning.lowrank.experiments",
    "gpide-locomotion": "sciprob.control.experiments",
    "multitask-features": "sciprob.theory.multitask.experiments",
    "exsum": "sciprob.theory.exsum.experiments",
    "pddlvm-pinn-heat": "sciprob.physics.pinn_experiments",
    "pddlvm-inverse-data": "sciprob.physics.inverse_experiments",
    "pddlvm-shell-3d": "sciprob.physics.shell_experiments",
}
