"""Every rule carries its code, name, documentation sections and examples."""

from __future__ import annotations

import re

import pytest

from qlint.lint.registry import all_rules

# The committed names (RULES.md): a code never changes meaning.
COMMITTED = {
    "QLT101": "task-unbounded-runtime",
    "QLT102": "soft-limit-not-below-hard",
    "QLT201": "task-unbounded-retries",
    "QLT202": "retry-without-backoff",
    "QLT203": "retry-on-any-exception",
    "QLT204": "retry-without-bind",
    "QLT205": "retry-loses-exception",
    "QLT501": "pickle-serializer-enabled",
    "QLT001": "unused-noqa",
    "QLT402": "concurrency-defaults-to-host-cpus",
    "QLT701": "worker-without-resource-limits",
    "QLT702": "shutdown-grace-too-short",
    "QLT703": "scheduler-replicated",
    "QLT503": "broker-credentials-in-code",
    "QLT505": "task-input-unvalidated",
    "QLT506": "model-argument-not-validated",
    "QLT507": "rate-limit-per-worker",
    "QLT508": "unauthenticated-messages",
    "QLT704": "sigterm-interrupts-tasks",
    "QLT706": "worker-without-autoscaling",
    "QLT707": "burst-worker-overlap",
    "QLT801": "queue-without-dead-letter",
    "QLT802": "dead-letter-after-too-many-receives",
    "QLT803": "visibility-timeout-below-consumer",
    "QLT804": "dead-letter-retention-shorter",
    "QLT805": "cloud-tasks-unbounded-retries",
    "QLT806": "cloud-tasks-retry-without-backoff",
    "QLT807": "sidekiq-shutdown-grace-too-short",
    "QLT808": "sidekiq-concurrency-exceeds-db-pool",
    "QLT403": "worker-pool-oversized",
    "QLT410": "memory-budget-inconsistent",
    "QLT504": "broker-credentials-in-manifest",
    "QLT705": "worker-without-liveness-probe",
    "QLT602": "enqueue-in-transaction",
    "QLT603": "orm-object-as-task-argument",
    "QLT604": "enqueue-in-loop",
    "QLT607": "unused-task-result",
    "QLT608": "priority-ignored",
    "QLT609": "periodic-task-without-expiry",
    "QLT401": "worker-without-child-recycling",
    "QLT404": "prefetch-with-long-tasks",
    "QLT405": "recycling-ignored-by-pool",
    "QLT406": "eager-mode-outside-tests",
    "QLT407": "broker-pool-disabled",
    "QLT408": "visibility-timeout-exceeded",
    "QLT409": "consumer-timeout-exceeded",
    "QLT301": "no-dead-letter-path",
    "QLT302": "reject-without-acks-late",
    "QLT303": "dead-letter-exchange-unreachable",
    "QLT304": "redelivery-loop-on-worker-lost",
    "QLT305": "task-failure-swallowed",
    "QLT206": "implicit-retry-policy",
    "QLT207": "retry-never-scheduled",
    "QLT502": "pickle-serializer-by-default",
    "QLT103": "time-limit-not-enforced",
    "QLT104": "suspicious-duration-unit",
    "QLT107": "invalid-timeout-value",
    "QLT306": "unknown-failure-handler",
    "QLT106": "blocking-io-without-timeout",
    "QLT605": "blocking-call-in-async-task",
    "QLT105": "timeout-exception-swallowed",
    "QLT601": "blocking-wait-in-task",
    "QLT606": "async-task-unsupported",
}
SECTIONS = ["## What it does", "## Why is this bad?", "## Example", "Use instead:", "## Fix safety", "## References"]


def test_committed_codes_are_implemented_with_their_names():
    rules = {r.code: r.name for r in all_rules()}
    assert set(rules) == set(COMMITTED), "every rule is one RULES.md commits to, and every committed code exists"
    for code, name in COMMITTED.items():
        assert rules.get(code) == name


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.code)
def test_rule_documentation(rule):
    doc = rule.explanation()
    positions = [doc.find(s) for s in SECTIONS]
    assert all(p >= 0 for p in positions), f"{rule.code} lacks a section: {SECTIONS}"
    assert positions == sorted(positions), "sections out of ruff's order"
    assert re.fullmatch(r"QLT\d{3}", rule.code)
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", rule.name)
    assert rule.summary and not rule.summary.endswith(".")


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.code)
def test_rule_examples_exist(rule):
    assert len(rule.VALID) >= 3, "near-miss negatives"
    assert len(rule.INVALID) >= 3
    assert all(case.expect for case in rule.INVALID)
    if rule.fix_availability != "None":
        assert any(case.fixed is not None for case in rule.INVALID), "a fix without a fix example"
    else:
        assert all(case.fixed is None for case in rule.INVALID)


def test_opt_in_rules_need_their_exact_code():
    """As ruff's preview rules: a prefix (`QLT`, `QLT6`, `ALL`) never enables an opt-in rule."""
    from qlint.lint.registry import select_rules

    opt_in = {r.code for r in all_rules() if r.opt_in}
    assert opt_in >= {"QLT604", "QLT705"}
    for selector in (["QLT"], ["QLT6"], ["ALL"], ["QLT60"]):
        chosen = {r.code for r in select_rules(selector, (), ())}
        assert not chosen & opt_in, selector
        assert chosen, selector  # the prefix still enables the rules that are on by default
    assert "QLT604" in {r.code for r in select_rules(["QLT1"], ["QLT604"], ())}
    assert "QLT604" in {r.code for r in select_rules(["QLT604", "QLT1"], (), ())}
    assert "QLT604" not in {r.code for r in select_rules(None, ["QLT6"], ())}
    assert "QLT604" in {r.code for r in select_rules(["QLT604"], (), ["QLT6"])}  # the more specific selector wins
    assert "QLT604" not in {r.code for r in select_rules(["QLT604"], (), ["QLT604"])}  # a tie goes to ignore


def test_rule_page_says_how_to_enable_an_opt_in_rule():
    from qlint.commands.rule import markdown
    from qlint.lint.registry import get_rule

    assert "Default: opt-in (enabled only by its exact code: `--extend-select QLT604`)" in markdown(get_rule("QLT604"))
    assert "Default: on." in markdown(get_rule("QLT101"))
