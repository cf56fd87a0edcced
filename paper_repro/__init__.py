"""Paper reproduction: data, models, metrics, experiments, claims, runner, report and benchmark.

Command line: ``python -m paper_repro --help`` (``list``, ``run``, ``claims``, ``report``, ``bench``).
In Python::

    from paper_repro.runner import run_experiment, load_results
    from paper_repro.claims import evaluate, format_table

    results = run_experiment("demo.toy", profile="quick")   # resumable; runs/quick/demo.toy.json
    print(format_table(evaluate(profile="quick")))

Submodules are imported on demand; importing ``paper_repro`` itself is cheap.
"""

__all__: list[str] = []
