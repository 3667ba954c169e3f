from __future__ import annotations

import os

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.facts import FileFacts
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.manifests.sidekiq import database_pool


@register
class SidekiqConcurrencyExceedsDbPool(Rule):
    """## What it does
    Checks for a Sidekiq process whose concurrency (`-c`/`--concurrency`, else the config
    file's `concurrency`, else Sidekiq's default of 5) is above the `pool` of its environment's
    entry in `config/database.yml`. The environment is `-e`/`--environment`, else the
    container's `RAILS_ENV`, `RACK_ENV` or `APP_ENV`; without one the process is not judged.

    ## Why is this bad?
    Each Sidekiq thread that touches the database checks a connection out of the Active Record
    pool. With more threads than connections, the extra threads wait for one, and after
    `checkout_timeout` (5 s) their jobs fail with
    `ActiveRecord::ConnectionTimeoutError: could not obtain a connection from the pool` — under
    load, when the jobs matter most, and as retries that make the queue longer.

    ## Example
    ```yaml
    # config/database.yml
    production:
      adapter: postgresql
      pool: 5
    ```
    ```yaml
    # the container
    command: ["bundle", "exec", "sidekiq", "-c", "20"]
    ```

    Use instead:
    ```yaml
    production:
      adapter: postgresql
      pool: 20
    ```

    ## Known problems
    A `pool` written with ERB (`<%= ENV.fetch("RAILS_MAX_THREADS") { 5 } %>`, Rails' own
    template) is unknown, and the process is not judged: set the variable for the Sidekiq
    container to its concurrency.

    ## Fix safety
    There is no fix: the database must accept the extra connections of every process.

    ## References
    - [Sidekiq: Advanced Options, concurrency and the database pool](https://github.com/sidekiq/sidekiq/wiki/Advanced-Options#concurrency)
    - [Rails: Configuring a database, pool](https://guides.rubyonrails.org/configuring.html#database-pooling)
    """

    code = "QLT808"
    name = "sidekiq-concurrency-exceeds-db-pool"
    summary = "Sidekiq runs more threads than its database pool has connections"
    severity = Severity.WARNING
    fix_availability = "None"
    frameworks = ("sidekiq",)

    DATABASE = """
default: &default
  adapter: postgresql
  pool: 10
production:
  <<: *default
  database: app
"""
    VALID = [
        Valid({"k8s/sidekiq.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sidekiq
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 60
      containers:
        - name: sidekiq
          command: ["bundle", "exec", "sidekiq", "-c", "10"]
          env:
            - name: RAILS_ENV
              value: production
""", "config/database.yml": DATABASE}, note="the pool (through a merge key) matches"),
        Valid({"k8s/sidekiq.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sidekiq
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 60
      containers:
        - name: sidekiq
          command: ["bundle", "exec", "sidekiq", "-c", "25"]
""", "config/database.yml": DATABASE}, note="no environment: which entry applies is unknown"),
        Valid({"k8s/sidekiq.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sidekiq
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 60
      containers:
        - name: sidekiq
          command: ["bundle", "exec", "sidekiq", "-c", "25", "-e", "production"]
""", "config/database.yml": """
production:
  adapter: postgresql
  pool: <%= ENV.fetch("RAILS_MAX_THREADS") { 5 } %>
"""}, note="an ERB pool: unknown"),
    ]
    INVALID = [
        Invalid({"k8s/sidekiq.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sidekiq
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 60
      containers:
        - name: sidekiq
          command: ["bundle", "exec", "sidekiq", "-c", "25"]
          env:
            - name: RAILS_ENV
              value: production
""", "config/database.yml": DATABASE}, expect=[("k8s/sidekiq.yaml", 11)], message="25 threads"),
        Invalid({"docker-compose.yml": """
services:
  sidekiq:
    image: app
    command: bundle exec sidekiq -C config/sidekiq.yml
    stop_grace_period: 60s
    environment:
      RAILS_ENV: production
""", "config/sidekiq.yml": """
:concurrency: 15
""", "config/database.yml": DATABASE}, expect=[("config/sidekiq.yml", 1)], message="`concurrency` in config/sidekiq.yml",
            note="compose; the concurrency of the config file"),
        Invalid({"k8s/sidekiq.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sidekiq
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 60
      containers:
        - name: sidekiq
          command: ["bundle", "exec", "sidekiq", "-e", "production"]
""", "config/database.yml": """
production:
  adapter: postgresql
  pool: 2
"""}, expect=[("k8s/sidekiq.yaml", 2)], message="Sidekiq's default of 5", note="the default concurrency"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for process in ctx.project.sidekiq:
            workload = process.workload
            if process.environment is None or "$" in process.environment or workload.development:
                continue
            threads = process.concurrency.value
            if threads is None:
                continue
            pool, _, path = database_pool(ctx.project.databases, process.environment)
            if pool is None or threads <= pool:
                continue
            setting = process.concurrency
            if setting.source == "default":
                where, span, file = "Sidekiq's default of 5", workload.anchor, workload.file
            else:
                where = setting.source
                span, file = setting.span, FileFacts(path=setting.path or workload.path, module="")
            database = os.path.relpath(path, ctx.settings.root) if path else "config/database.yml"
            ctx.report(file, span,
                       f"Sidekiq in {workload.kind} `{workload.name}` runs {threads:g} threads ({where}) but the "
                       f"`{process.environment}` database pool has {pool:g} connections ({database}): the threads "
                       "beyond the pool wait for a connection and their jobs fail with "
                       "`ActiveRecord::ConnectionTimeoutError` under load; raise `pool` to the concurrency or lower "
                       "the concurrency")
