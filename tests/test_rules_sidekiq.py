"""Sidekiq (QLT807, QLT808) on a Rails application's files as they are usually written."""

from __future__ import annotations

from tests.helpers import findings, write_project

COMPOSE = """
x-app: &app
  image: registry.example/app:latest
  environment: &env
    RAILS_ENV: production
    DATABASE_URL: postgres://db/app

services:
  web:
    <<: *app
    command: bundle exec puma -C config/puma.rb
  sidekiq:
    <<: *app
    command: bundle exec sidekiq -C config/sidekiq.yml
"""

SIDEKIQ = """
---
:concurrency: <%= ENV.fetch("SIDEKIQ_CONCURRENCY", 10) %>
:timeout: 25
:queues:
  - critical
  - default
production:
  :concurrency: 20
"""

DATABASE = """
default: &default
  adapter: postgresql
  encoding: unicode
  pool: <%= ENV.fetch("RAILS_MAX_THREADS") { 5 } %>

development:
  <<: *default
  database: app_development

production:
  <<: *default
  pool: 10
"""


def test_a_rails_compose_stack(tmp_path):
    write_project(tmp_path, {"docker-compose.yml": COMPOSE, "config/sidekiq.yml": SIDEKIQ,
                             "config/database.yml": DATABASE})
    got = sorted((path, row, code) for path, row, code, _ in findings(tmp_path, ["QLT807", "QLT808"]))
    # compose gives 10 s to a 25 s timeout; production runs 20 threads against a pool of 10
    assert got == [("config/sidekiq.yml", 8, "QLT808"), ("docker-compose.yml", 11, "QLT807")]


def test_erb_values_and_unknown_environments_judge_nothing(tmp_path):
    write_project(tmp_path, {
        "docker-compose.yml": COMPOSE.replace("RAILS_ENV: production", "RAILS_ENV: ${RAILS_ENV}"),
        "config/sidekiq.yml": SIDEKIQ.replace(":timeout: 25", ":timeout: <%= ENV['SIDEKIQ_TIMEOUT'] %>"),
        "config/database.yml": DATABASE,
    })
    assert findings(tmp_path, ["QLT807", "QLT808"]) == []
