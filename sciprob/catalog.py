"""Where each experiment lives: name -> module that registers it.

The command line imports a module only when one of its experiments is listed
or run, so ``sciprob --help`` stays instant. Adding an experiment means adding
its line here; ``tests/sciprob/test_catalog.py`` checks every line registers
exactly the names it claims.
"""

CATALOG: dict[str, str] = {
    "fem-poisson-convergence": "sciprob.physics.experiments",
}
