"""A Fixit rule equivalent to QLT101 (a Celery task decorator without ``time_limit``), for the benchmark.

It is written the way Fixit rules usually are (QualifiedNameProvider), so the benchmark
compares qlint with a libcst-based peer doing comparable work.
"""

import libcst as cst
from fixit import Invalid, LintRule, Valid
from libcst.metadata import QualifiedNameProvider


class CeleryTaskWithoutTimeLimit(LintRule):
    METADATA_DEPENDENCIES = (QualifiedNameProvider,)
    VALID = [Valid("from celery import shared_task\n@shared_task(time_limit=60)\ndef f(): pass\n")]
    INVALID = [Invalid("from celery import shared_task\n@shared_task\ndef f(): pass\n")]

    def visit_Decorator(self, node: cst.Decorator) -> None:
        expr = node.decorator
        func = expr.func if isinstance(expr, cst.Call) else expr
        names = {q.name for q in self.get_metadata(QualifiedNameProvider, func, set())}
        is_task = any(n == "celery.shared_task" or n.endswith(".task") for n in names)
        if not is_task:
            return
        if isinstance(expr, cst.Call) and any(a.keyword and a.keyword.value == "time_limit" for a in expr.args):
            return
        self.report(node, "Celery task without time_limit")
